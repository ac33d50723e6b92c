"""One run at a time per job: ``flock(2)`` on ``<run_directory>/<slug>.lock``.

The original kept a PID file, which races (two runs both find no file) and
trusts a PID the kernel may have handed to another process since. An flock
is taken atomically by one process only and the kernel drops it when that
process dies, however it dies, so a stale lock cannot exist. The file still
holds the holder's PID, but only for ``--status`` and ``--kill-job``, and
only while the lock is really held.

The file is never unlinked: a run that opened it just before another
unlinked it would lock a file nobody else can see, and a third run would
create and lock a new one beside it.

Other local users must not be able to take it: ``flock`` works on a
read-only descriptor, so a lock file anyone can open is a lock anyone can
hold, stalling every run. Lock files (this one, the history's and the
metrics file's, all taken here) are created 0600 and must belong to us. One
found open to others (left by an older version) may already be open in
someone else's process, where a mode change does not reach: it is replaced
by a fresh 0600 file (renamed over it while we hold the old one, or, if
someone holds the old one and it is not a run of ours, at once). Every
locker checks after locking that the path still names the file it locked,
so a replaced file is never a second lock. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from types import TracebackType

from pc_systemd.core.atomic import temporary
from pc_systemd.core.safe_open import Refused

# How long a run keeps trying before it decides another run holds the lock.
# A status probe (holder()) takes the lock shared for a few microseconds;
# a real run holds it for the whole run, so a short retry tells them apart.
PATIENCE = 0.25
# The history's and metrics' locks are held for milliseconds; one held for
# longer than this is not held by a writer of ours doing its work.
SHORT_HOLD = 10.0
MODE = 0o600
_OPEN = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY


def lock_path(run_directory: str, slug: str) -> str:
    return os.path.join(run_directory, f"{slug}.lock")


class LockHeld(OSError):
    """Another live process holds the lock."""

    def __init__(self, path: str, pid: int | None, why: str | None = None) -> None:
        self.pid = pid
        who = f"pid {pid}" if pid is not None else "another process"
        super().__init__(errno.EAGAIN, why or f"held by {who}", path)

    @property
    def path(self) -> str:
        return str(self.filename)

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


@dataclass(frozen=True)
class Holder:
    """The lock is held; ``pid`` is None while the holder is still writing it."""

    pid: int | None


class JobLock:
    """A held lock; release it (or leave the ``with`` block) to let the next run in."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        # Empty the file first, so nobody reads our PID once we are gone.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the last descriptor drops the flock

    def __enter__(self) -> JobLock:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


def _open(path: str, owners: Collection[int]) -> tuple[int, bool]:
    """The lock file, created 0600, and whether others could open it.

    O_CLOEXEC: a job's processes must not inherit (and so keep holding)
    the lock after the runner is gone. O_NOFOLLOW: never lock (and
    truncate) whatever a planted symlink points at. O_NONBLOCK: nor hang
    opening a planted FIFO.
    """
    fd = os.open(path, _OPEN, MODE)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Refused(path, "not a regular file: the lock cannot be protected")
        if st.st_uid not in owners:
            raise Refused(path, f"owned by uid {st.st_uid}, not by uid "
                                f"{' or '.join(map(str, sorted(owners)))}: "
                                "the lock cannot be protected")
    except BaseException:
        os.close(fd)
        raise
    return fd, bool(stat.S_IMODE(st.st_mode) & 0o077)


def _try(fd: int, how: int = fcntl.LOCK_EX) -> bool:
    try:
        fcntl.flock(fd, how | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _current(fd: int, path: str) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (it may have
    been replaced, see the module doc, since we opened it)."""
    try:
        now = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    st = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino)


def _replace(path: str) -> int:
    """A fresh 0600 lock file, locked, renamed over ``path``: whoever holds
    the old one (open to others) no longer holds the lock."""
    fd, tmp = temporary(os.path.dirname(path) or ".")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # nobody else knows it yet
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        os.close(fd)
        raise
    return fd


def _protect(path: str, fd: int) -> int:
    """We hold the exposed lock file ``fd``: hold a fresh one in its place
    instead; where that cannot be done (the directory is not ours to write),
    at least take the others' permissions off this one."""
    try:
        fresh = _replace(path)
    except OSError:
        os.fchmod(fd, MODE)
        return fd
    os.close(fd)
    return fresh


def _ours(pid: int | None) -> bool:
    """Whether ``pid`` is a live process of our user (a run of ours)."""
    if pid is None:
        return False
    try:
        return os.stat(f"/proc/{pid}").st_uid == os.geteuid()
    except OSError:
        return False


def _take(path: str, patience: float, owners: Collection[int] | None) -> int:
    """A descriptor holding ``path`` locked; LockHeld once ``patience`` has passed."""
    owners = frozenset(owners or ()) | {os.geteuid()}
    deadline = time.monotonic() + patience
    # An exposed file's holder may be anyone: waited for at most this long.
    exposed_deadline = time.monotonic() + min(patience, PATIENCE)
    pause = 0.002
    while True:
        fd, exposed = _open(path, owners)
        try:
            if _try(fd):
                if not _current(fd, path):
                    os.close(fd)
                    continue
                if exposed:
                    fd = _protect(path, fd)
                return fd
            now = time.monotonic()
            if exposed and now >= exposed_deadline and not _ours(_read_pid(fd)):
                os.close(fd)
                return _replace(path)
            if now >= deadline:
                pid = _read_pid(fd)
                why = None if patience <= PATIENCE else (
                    f"held by {f'pid {pid}' if pid else 'another process'} "
                    f"for more than {patience:g} s")
                raise LockHeld(path, pid, why)
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
        os.close(fd)
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def acquire(path: str, patience: float = PATIENCE) -> JobLock:
    """Take the lock and write our PID into it; raise :class:`LockHeld` if
    another process holds it, :class:`Refused` (an OSError) if it is not a
    file only we can open."""
    fd = _take(path, patience, None)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except BaseException:
        os.close(fd)
        raise
    return JobLock(path, fd)


@contextlib.contextmanager
def held(path: str, patience: float = SHORT_HOLD) -> Iterator[int]:
    """Hold ``path`` locked for a short read-modify-write (the history's
    and the metrics file's locks); the lock file's descriptor."""
    fd = _take(path, patience, None)
    try:
        yield fd
    finally:
        os.close(fd)


def holder(path: str) -> Holder | None:
    """Who holds the lock, or None if nobody does (whatever the file says)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        if _try(fd, fcntl.LOCK_SH):
            return None  # we got it, so nobody holds it; closing drops it
        return Holder(_read_pid(fd))
    finally:
        os.close(fd)
