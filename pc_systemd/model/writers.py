"""Whether the service user could change the job directory.

Jobs run as the service user. If that user can add, replace or rename job
files, every job can write new jobs, which the generator (root) then turns
into units: a job could leave its sandbox or outlive its review. So the
job directory, and every directory on the way to it, must be out of the
service user's reach.

Only the classic permission bits are read (no ACLs). The generator's
cached path calls this at every run, so it imports nothing the
interpreter has not loaded already besides ``pwd``.
"""

from __future__ import annotations

import os
import pwd
import stat

_MAX_LINKS = 40  # as the kernel's


def service_user_can_write(directory: str, user: str) -> str | None:
    """Why the service user ``user`` (a name or a uid) could change what
    ``directory`` holds, or None if it cannot.

    It can if it owns (and so may chmod) the directory or any directory
    consulted on the way to it (symlinks followed), or may write to one
    through the group or others bits; a sticky directory on the way is
    safe unless the user owns it (it may then rename only its own
    entries, which are checked in turn). A user that does not exist
    cannot write; root can write anything, but jobs of a root service
    user (``allow_root``) have every power already, so it is not refused.
    """
    return can_write(directory, user, identity(user))


def can_write(directory: str, user: str, who: tuple[int, frozenset[int]] | None,
              ) -> str | None:
    """:func:`service_user_can_write` for a user already looked up
    (:func:`identity`): the generator asks about two directories, and each
    look-up may go through NSS (LDAP, sssd) at boot."""
    if who is None:
        return None
    uid, groups = who
    if uid == 0:
        return None
    try:
        chain = directories(directory)
    except OSError:
        return None  # a directory that cannot be looked up: listing it reports why
    last = len(chain) - 1
    for index, (path, st) in enumerate(chain):
        why = _writable(st, uid, groups, final=index == last)
        if why:
            what = "the job directory" if index == last else "a directory on its path,"
            return f"{what} {path} is {why}, so the service user {user} could add jobs"
    return None


def passwd_entry(user: str) -> pwd.struct_passwd | None:
    """The user's passwd entry (``user``: a name or a uid), None if there is none."""
    try:
        return pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except (KeyError, OverflowError, ValueError):
        return None


def identity(user: str) -> tuple[int, frozenset[int]] | None:
    """(uid, every group id) of the user, None if there is no such user."""
    entry = passwd_entry(user)
    if entry is None:
        # a uid with no name still owns what it owns; a name with no entry is nobody
        return (int(user), frozenset()) if user.isdigit() and int(user) < 2**32 else None
    try:
        groups = frozenset(os.getgrouplist(entry.pw_name, entry.pw_gid))
    except OSError:
        groups = frozenset({entry.pw_gid})
    return entry.pw_uid, groups


def _writable(st: os.stat_result, uid: int, groups: frozenset[int], final: bool) -> str:
    if st.st_uid == uid:
        return f"owned by uid {uid}"
    if not final and st.st_mode & stat.S_ISVTX:
        return ""  # sticky: only its own entries could be renamed, and those are checked
    if st.st_gid in groups and st.st_mode & stat.S_IWGRP:
        return f"writable by its group (gid {st.st_gid})"
    if st.st_mode & stat.S_IWOTH:
        return "writable by everyone"
    return ""


def directories(path: str) -> list[tuple[str, os.stat_result]]:
    """Every directory whose entries decide what ``path`` names, in order:
    ``/``, each directory it is looked up through (following symlinks, and
    where each symlink's target is looked up), and the directory it names.
    """
    pending = [part for part in reversed(path.split("/")) if part]
    current = "/"
    chain = [(current, os.stat(current))]
    links = 0
    while pending:
        part = pending.pop()
        if part == ".":
            continue
        if part == "..":
            current = os.path.dirname(current)  # current never holds a symlink
            continue
        following = os.path.join(current, part)
        st = os.lstat(following)
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > _MAX_LINKS:
                raise OSError(40, "Too many levels of symbolic links", following)
            target = os.readlink(following)
            if target.startswith("/"):
                current = "/"
            pending.extend(part for part in reversed(target.split("/")) if part)
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise NotADirectoryError(20, "Not a directory", following)
        current = following
        chain.append((current, st))
    return chain
