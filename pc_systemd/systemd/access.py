"""The developer group's rights on systemd hosts: the polkit rule, and who is a member.

systemd asks polkit before it starts or stops a unit for a caller that is
not root: action ``org.freedesktop.systemd1.manage-units``, with the details
``unit`` (the unit's name) and ``verb`` (``start``, ``stop``, ``restart``,
``kill``, ...), never the job mode: whoever may ``start`` a unit may also
start it with ``--job-mode=flush``, which cancels every queued job on the
host. So the developer group gets no systemd permission at all: its members
ask the broker (:mod:`pc_systemd.broker`), whose user,
``process-control-broker``, our rule lets start and stop the jobs' own
services (``process-control-SLUG.service`` and ``...SLUG.slow-start.service``:
``run``, ``kill``), reference them (``ref``: keeping the unit loaded while
run-job follows it), clear their start limit (``reset-failed``: ``run`` of a
job with ``retry``) and start and stop their timers (``disable-group``,
``enable-group``, ``reset``); never a unit of ours, whose names no job may
take (``model.job.RESERVED_SLUGS``). The broker asks with job mode
``replace`` only. The failure-mail unit's user, ``process-control-monitor``,
may stop a job's timer, nothing else (``stop_after_failures``). The rule
leaves every other question to the rules after it: systemd's default asks
for an administrator.

The package ships the rule as
``/usr/share/polkit-1/rules.d/50-process-control.rules`` (the file in this
repository, ``systemd/polkit/``, is :func:`rule`; a test keeps it so). It names
no group, so ``developer_group`` does not change it: ``run-job reload``
writes it to ``/etc/polkit-1/rules.d/`` only where no package shipped one (a
wheel's install), and removes the rule an earlier version wrote there for
another group (:func:`apply_rule`), which let that group's members start job
units themselves.

A job's output is read with journalctl in the journal namespace of the job
services (``LogNamespace=``), whose files the group may read (the package's
tmpfiles.d lines): never the system journal.
"""

from __future__ import annotations

import grp
import json
import os
import pwd

from pc_systemd.core.atomic import write_atomically
from pc_systemd.model.config import KEYS_BY_NAME, Config
from pc_systemd.model.job import RESERVED_SLUGS
from pc_systemd.model.writers import passwd_entry
from pc_systemd.systemd.units import MONITOR_USER, PREFIX

DEFAULT_GROUP: str = KEYS_BY_NAME["developer_group"].default
BROKER_USER = "process-control-broker"
RULE_NAME = "50-process-control.rules"
SHIPPED_RULE = "/usr/share/polkit-1/rules.d/" + RULE_NAME
LOCAL_RULE = "/etc/polkit-1/rules.d/" + RULE_NAME
# "ref": the broker holds the unit while run-job follows a run (Unit.Ref), or
# a unit that ran successfully would be unloaded with its result before it is
# read. "reset-failed": a run by hand of a job with `retry` first clears the
# start limit that ends a run's attempts (model.retry), so it gets all of its own.
VERBS = ("start", "stop", "ref", "reset-failed")
TIMER_VERBS = ("start", "stop")  # disable-group, enable-group, reset
MONITOR_VERBS = ("stop",)  # the failure-mail unit, after stop_after_failures
MARK = "process-control: written by run-job reload"  # what is ours, in /etc

_RULE = """\
// process-control: the broker's user (process-control-broker), which
// members of the developer group ask, may start and stop the jobs' own
// services (run-job run, kill) and their timers (disable-group,
// enable-group, reset) without a password; the failure-mail unit's user may
// stop a job's timer (stop_after_failures); nothing else. No group is named:
// polkit never sees the job mode, so whoever may start a unit may also
// cancel every queued job (--job-mode=flush); the broker asks with
// "replace" only.
// systemd passes the unit's name and the verb as the details "unit" and "verb".
@MARK@
polkit.addRule(function (action, subject) {
    var broker = @BROKER@;
    var prefix = @PREFIX@;
    var reserved = @RESERVED@;  // names of process-control's own units
    var verbs = {"service": @VERBS@, "timer": @TIMER_VERBS@};
    var monitor = @MONITOR@;
    var monitorVerbs = @MONITOR_VERBS@;  // on timers
    if (action.id != "org.freedesktop.systemd1.manage-units") {
        return polkit.Result.NOT_HANDLED;
    }
    var unit = action.lookup("unit") || "";
    var verb = action.lookup("verb") || "";
    var match = /^([A-Za-z0-9_][A-Za-z0-9_.-]*)\\.(service|timer)$/.exec(
        unit.substr(prefix.length));
    if (unit.indexOf(prefix) != 0 || match === null || reserved.indexOf(match[1]) >= 0) {
        return polkit.Result.NOT_HANDLED;
    }
    if (match[2] == "timer" && subject.user == monitor && monitorVerbs.indexOf(verb) >= 0) {
        return polkit.Result.YES;
    }
    if (subject.user == broker && verbs[match[2]].indexOf(verb) >= 0) {
        return polkit.Result.YES;
    }
    return polkit.Result.NOT_HANDLED;
});
"""


def rule(mark: str = "") -> str:
    """The polkit rule; every value is a JSON literal."""
    values = {
        "@MARK@": f"// {mark}" if mark else "// (shipped with the package)",
        "@BROKER@": json.dumps(BROKER_USER),
        "@PREFIX@": json.dumps(PREFIX),
        "@RESERVED@": json.dumps(sorted(RESERVED_SLUGS)),
        "@VERBS@": json.dumps(list(VERBS)),
        "@TIMER_VERBS@": json.dumps(list(TIMER_VERBS)),
        "@MONITOR@": json.dumps(MONITOR_USER),
        "@MONITOR_VERBS@": json.dumps(list(MONITOR_VERBS)),
    }
    text = _RULE
    for key, value in values.items():
        text = text.replace(key, value)
    return text


def apply_rule(config: Config, shipped: str | None = None, local: str | None = None) -> str | None:
    """Make polkit's rule the broker's (root, at ``run-job reload``): what
    was done, or None. The rule goes to /etc only when no package shipped
    one (a wheel's install); ours is removed from /etc when the shipped one
    is there, whatever group an earlier version wrote it for."""
    shipped = shipped or SHIPPED_RULE
    local = local or LOCAL_RULE
    wanted = None if os.path.exists(shipped) else rule(MARK)
    if wanted is not None and not os.path.isdir(os.path.dirname(local)):
        return None  # no polkit here: nobody to tell
    done, _foreign = _keep_ours(local, wanted, config.developer_group,
                                f"for the broker ({BROKER_USER})")
    return done


def _keep_ours(path: str, wanted: str | None, group: str,
               for_whom: str) -> tuple[str | None, bool]:
    """Make ``path``, a file of ours in /etc (it holds MARK), say ``wanted``,
    or remove it where ``wanted`` is None; a file there that is not ours is
    left alone. What was done (or why not), and whether it was not ours."""
    current = _read(path)
    if wanted is None:
        if current is not None and MARK in current:
            os.unlink(path)
            return f"removed {path}", False
        return None, False
    if current == wanted:
        return None, False
    if current is not None and MARK not in current:
        return f"{path} exists and is not ours: left alone (developer_group {group!r})", True
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    write_atomically(path, wanted, mode=0o644)
    return f"wrote {path} {for_whom}", False


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def is_member(group: str) -> bool:
    """Whether this process may use the group's rights: root, or a member:
    by this process's groups, or by the group database, which is what polkit
    asks (a user just added has it before a new login)."""
    if os.geteuid() == 0:
        return True
    try:
        entry = grp.getgrnam(group)
    except KeyError:
        return False
    if entry.gr_gid == os.getegid() or entry.gr_gid in os.getgroups():
        return True
    try:
        me = pwd.getpwuid(os.geteuid())
    except KeyError:
        return False
    return me.pw_gid == entry.gr_gid or me.pw_name in entry.gr_mem


def refusal(group: str, what: str) -> str:
    """The one line for a user who may not: which group is needed."""
    try:
        grp.getgrnam(group)
        missing = ""
    except KeyError:
        missing = " (no such group on this host)"
    return f"{what} needs root or membership in group {group!r}{missing}"


def ensure_output_directory(config: Config) -> str | None:
    """``output_directory`` as the package's tmpfiles.d line makes the
    default one (root, at ``run-job reload``): created if missing, owned by
    the service user, group the developer group, mode 2750 (setgid: each
    job's directory and file inherits the group, so members read
    ``logging: file`` output and others do not). What was done, or why the
    group cannot read it; None when all is well."""
    path = config.output_directory
    group = config.developer_group
    try:
        gid: int | None = grp.getgrnam(group).gr_gid
    except KeyError:
        gid = None  # no such group here: the service user's own
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return _create(path, config.user, gid, group)
    if gid is None:
        return None
    if not os.path.isdir(path) or st.st_gid != gid or not st.st_mode & 0o2000:
        return (f"output_directory {path} is not a setgid directory of group {group!r}: "
                "the developer group cannot read `logging: file` output (see "
                "docs/security.md)")
    adopted = _adopt_job_directories(path, st.st_uid, gid)
    return f"gave {adopted} job directories in {path} group {group!r}" if adopted else None


MAX_JOB_DIRECTORIES = 100_000  # more entries than jobs could make: stop looking


def _adopt_job_directories(path: str, owner: int, gid: int) -> int:
    """Job directories made before ``output_directory`` was setgid (systemd's
    ``LogsDirectory=`` gave them the service user's group): the group and
    setgid, so the runs' new files are the developer group's. Directories
    only, and only the owner's, each by a descriptor opened without
    following a link: everything here is the service user's, so the jobs'
    (a regular file given setgid by root would be a setgid program)."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    top = os.open(path, flags)
    adopted = 0
    try:
        for count, name in enumerate(os.listdir(top)):
            if count >= MAX_JOB_DIRECTORIES:
                break
            try:
                fd = os.open(name, flags | os.O_NONBLOCK, dir_fd=top)
            except OSError:
                continue  # not a directory, or a link: not touched
            try:
                st = os.fstat(fd)
                if st.st_uid == owner and (st.st_gid != gid or not st.st_mode & 0o2000):
                    os.fchown(fd, -1, gid)
                    os.fchmod(fd, (st.st_mode & 0o750) | 0o2000)
                    adopted += 1
            finally:
                os.close(fd)
    finally:
        os.close(top)
    return adopted


def _create(path: str, user: str, gid: int | None, group: str) -> str | None:
    entry = passwd_entry(user)
    if entry is None:
        return None  # no service user yet: its directory waits too
    uid = entry.pw_uid
    if gid is None:
        gid, group = entry.pw_gid, f"{entry.pw_gid} (no group {group!r} here)"
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    os.mkdir(path, 0o700)
    # by descriptor, without following a link: the parent may be the service user's
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fchown(fd, uid, gid)
        os.fchmod(fd, 0o2750)
    finally:
        os.close(fd)
    return f"created {path} (owner {user}, group {group}, mode 2750)"


def ensure_hold_directory(config: Config) -> str | None:
    """``hold_directory`` as the package's tmpfiles.d line makes the default
    one (root, at ``run-job reload``): root's, group the developer group,
    mode 2775, so members add and remove holds and the service user cannot.
    Created if missing; one of another group is given the developer
    group (its holds stay). What was done, or None."""
    path = config.hold_directory
    try:
        gid = grp.getgrnam(config.developer_group).gr_gid
    except KeyError:
        return None  # no such group here: nobody but root could hold jobs
    created = False
    try:
        os.mkdir(path, 0o700)
        created = True
    except FileExistsError:
        pass
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not created and st.st_uid == 0 and st.st_gid == gid and st.st_mode & 0o7777 == 0o2775:
            return None
        if not created and st.st_uid != 0:
            return f"hold_directory {path} is not root's: left alone (no job is held)"
        os.fchown(fd, 0, gid)
        os.fchmod(fd, 0o2775)
    finally:
        os.close(fd)
    what = "created" if created else "set"
    return f"{what} {path} (owner root, group {config.developer_group}, mode 2775)"


GROUP_TMPFILES = "/etc/tmpfiles.d/process-control-developer-group.conf"
TMPFILES = "systemd-tmpfiles"
JOURNAL_DIRECTORY = "/var/log/journal/%m.process-control"


def apply_journal_acl(config: Config, path: str | None = None) -> str | None:
    """Another ``developer_group`` reads the jobs' journal namespace too: a
    tmpfiles.d line of ours in /etc (the package's gives the default group
    its ACL), applied at once, recursively for the files journald already
    wrote. Back to the default group, the file goes (the ACL entries it
    made stay until removed by hand: ``setfacl -R -x g:GROUP``)."""
    path = path or GROUP_TMPFILES
    group = config.developer_group
    wanted = None if group == DEFAULT_GROUP else (
        f"# {MARK}, for developer_group {group}: its members read the jobs' journal\n"
        f"A+ {JOURNAL_DIRECTORY} - - - - d:group:{group}:r-x,group:{group}:r-x\n")
    done, foreign = _keep_ours(path, wanted, group, f"for developer_group {group!r}")
    if wanted is None or foreign:
        return done
    import subprocess  # reload as root only

    applied = subprocess.run([TMPFILES, "--create", path], capture_output=True,
                             text=True, check=False)
    if applied.returncode != 0:
        return f"systemd-tmpfiles --create {path}: {applied.stderr.strip() or applied.returncode}"
    return done


SOCKET_DROP_IN = "/etc/systemd/system/process-control-broker.socket.d/50-developer-group.conf"


def apply_socket_group(config: Config, drop_in: str | None = None,
                       socket_path: str | None = None) -> str | None:
    """The broker's socket belongs to ``developer_group`` (root, at ``run-job
    reload``): another group gets a drop-in of ours for
    ``process-control-broker.socket`` (the package's unit names the default
    group), and the listening socket is given the group at once (systemd
    applies ``SocketGroup=`` when it makes the socket). Back to the default
    group, the drop-in goes. What was done, or None."""
    from pc_systemd.systemd.broker_protocol import SOCKET

    drop_in = drop_in or SOCKET_DROP_IN
    socket_path = socket_path or SOCKET
    group = config.developer_group
    wanted = None if group == DEFAULT_GROUP else (
        f"# {MARK}, for developer_group {group}\n[Socket]\nSocketGroup={group}\n")
    done, foreign = _keep_ours(drop_in, wanted, group, f"for developer_group {group!r}")
    if foreign:
        return done
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        return done
    try:
        st = os.lstat(socket_path)
    except FileNotFoundError:
        return done
    if st.st_uid == 0 and st.st_gid != gid and (st.st_mode & 0o170000) == 0o140000:
        os.chown(socket_path, 0, gid, follow_symlinks=False)
    return done
