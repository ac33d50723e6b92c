"""Jobs whose scheduling is held: the hold directory (``hold_directory``).

Two things hold a job's timer (systemd) or its cron runs (the direct
runner), without anyone editing a job file:

- ``run-job disable-group TAG`` (root or the developer group): every job
  tagged TAG, now and later, until ``run-job enable-group TAG``;
- ``stop_after_failures: N``: the job's failure-mail unit, once N runs in a
  row have failed, until ``run-job reset NAME``.

Each hold is one file: ``group.<TAG>`` (the tag encoded: letters, digits,
``_`` and ``-`` as they are, every other UTF-8 byte as ``%XX``) or
``stopped.<SLUG>`` (its text: the number of failures). The names alone say
what is held, so the generator, which runs at every boot and daemon-reload
and must stay lean, lists the directory once and reads no file: it never
follows a symlink to it, reads at most :data:`MAX_ENTRIES` names, and
ignores a directory that anyone but root and its group could change (the
package's is root's, group developer_group, setgid, mode 2775: the service
user, so every job, may not write it). A name that is no hold is ignored.

This module is on the generator's cached path: it imports nothing beyond
``os`` and ``time`` (and what :mod:`.writers` imports).
"""

from __future__ import annotations

import os
import time

from pc_systemd.model.writers import can_write

TYPE_CHECKING = False  # not typing's: see generator.py (the cached path)
if TYPE_CHECKING:
    from collections.abc import Iterable

GROUP = "group."
STOPPED = "stopped."
RESET = "reset."  # when a job was last reset: its failures count from then
# More names than this and the directory is not read (a member could
# otherwise make every boot list millions of files).
MAX_ENTRIES = 10_000
# A file name holds at most 255 bytes; "group." takes 6.
MAX_ENCODED = 255 - len(GROUP)
MAX_TEXT = 4096  # a stop record's text: a number, a time
_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
_REGULAR = 0o100000
_TYPE = 0o170000


class HoldError(Exception):
    """The hold directory cannot be used; the message is one line."""


def encode_tag(tag: str) -> str:
    """The file-name form of a tag: unambiguous, no '/', no leading '.'."""
    return "".join(chr(b) if b in _SAFE else f"%{b:02X}"
                   for b in tag.encode("utf-8", "surrogateescape"))


def group_file(tag: str) -> str:
    encoded = encode_tag(tag)
    if len(encoded) > MAX_ENCODED:
        raise HoldError(f"tag {tag[:40]!r}... is too long to disable as a group")
    return GROUP + encoded


def stopped_file(slug: str) -> str:
    return STOPPED + slug


def reset_file(slug: str) -> str:
    return RESET + slug


def keys(slug: str, tags: Iterable[str]) -> tuple[str, ...]:
    """The names of the files that would hold this job (kept in the
    generator's cache, so its cached path compares names and encodes nothing);
    a tag too long to be a file name cannot be disabled, so it has none."""
    encoded = (GROUP + encode_tag(tag) for tag in tags)
    return (stopped_file(slug), *(name for name in encoded if len(name) <= 255))


def stops(stop_after_failures: int | None, failures: int | None) -> bool:
    """Whether ``failures`` in a row reach the job's ``stop_after_failures``."""
    return stop_after_failures is not None and failures is not None \
        and failures >= stop_after_failures


def held(names: frozenset[str], hold_keys: Iterable[str]) -> bool:
    return not names.isdisjoint(hold_keys)


def list_names(directory: str, user: str, who: tuple[int, frozenset[int]] | None,
               ) -> tuple[frozenset[str], str | None]:
    """The names in the hold directory, and why it was ignored (then no
    names); a missing directory holds nothing and is no problem. ``who``:
    the service user ``user``, looked up (:func:`.writers.identity`)."""
    try:
        fd = os.open(directory, _DIR_FLAGS)
    except FileNotFoundError:
        return frozenset(), None
    except OSError as err:
        return frozenset(), f"{directory}: {err.strerror}: no job is held"
    try:
        why = _untrusted(fd, directory, user, who)
        if why:
            return frozenset(), f"{directory}: {why}: no job is held"
        names: list[str] = []
        with os.scandir(fd) as entries:
            for entry in entries:
                if len(names) == MAX_ENTRIES:
                    return frozenset(), (f"{directory}: more than {MAX_ENTRIES} entries: "
                                         "no job is held")
                names.append(entry.name)
        return frozenset(names), None
    except OSError as err:
        return frozenset(), f"{directory}: {err.strerror}: no job is held"
    finally:
        os.close(fd)


def _untrusted(fd: int, directory: str, user: str,
               who: tuple[int, frozenset[int]] | None) -> str:
    st = os.fstat(fd)
    if st.st_uid not in (0, os.geteuid()):
        return f"owned by uid {st.st_uid}, not root"
    if st.st_mode & 0o002:
        return "writable by everyone"
    return can_write(directory, user, who) or ""


def stop_count(directory: str, slug: str) -> int | None:
    """The failures a stop record names (None: not stopped; 0: unreadable)."""
    try:
        fd = os.open(os.path.join(directory, stopped_file(slug)), _FILE_FLAGS)
    except FileNotFoundError:
        return None
    except OSError:
        return 0  # a symlink, a FIFO, ...: it still holds the job (its name does)
    try:
        if os.fstat(fd).st_mode & _TYPE != _REGULAR:
            return 0
        text = os.read(fd, MAX_TEXT).decode("ascii", "replace").split()
    finally:
        os.close(fd)
    return int(text[0]) if text and text[0].isdigit() and len(text[0]) < 7 else 0


def reset_time(directory: str, slug: str) -> int | None:
    """When the job was last reset (microseconds), from its marker's
    modification time; None: never."""
    try:
        fd = os.open(os.path.join(directory, reset_file(slug)), _FILE_FLAGS)
    except OSError:
        return None
    try:
        return os.fstat(fd).st_mtime_ns // 1000
    finally:
        os.close(fd)


# -- writing: run-job (root or a member) and the failure-mail unit ----------------------


def _dir_fd(directory: str) -> int:
    try:
        return os.open(directory, _DIR_FLAGS)
    except FileNotFoundError:
        raise HoldError(f"{directory} does not exist (the package's tmpfiles.d makes it: "
                        "systemd-tmpfiles --create)") from None
    except OSError as err:
        raise HoldError(f"{directory}: {err.strerror}") from None


def add(directory: str, name: str, text: str) -> bool:
    """Create the hold ``name``; False if it was there already."""
    fd = _dir_fd(directory)
    try:
        try:
            handle = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                             | os.O_CLOEXEC, 0o644, dir_fd=fd)
        except FileExistsError:
            return False
        except OSError as err:
            raise HoldError(f"{os.path.join(directory, name)}: {err.strerror}") from None
        try:
            os.write(handle, text.encode())
        finally:
            os.close(handle)
        return True
    finally:
        os.close(fd)


def remove(directory: str, name: str) -> bool:
    """Remove the hold ``name``; False if there was none."""
    fd = _dir_fd(directory)
    try:
        os.unlink(name, dir_fd=fd)
        return True
    except FileNotFoundError:
        return False
    except OSError as err:
        raise HoldError(f"{os.path.join(directory, name)}: {err.strerror}") from None
    finally:
        os.close(fd)


def record(who: str, what: str = "") -> str:
    """A hold file's text: what, when (UTC) and by whom."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return f"{what}{' ' if what else ''}{stamp} {who}\n"
