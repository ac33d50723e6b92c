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
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from dataclasses import dataclass
from types import TracebackType

# How long a run keeps trying before it decides another run holds the lock.
# A status probe (holder()) takes the lock shared for a few microseconds;
# a real run holds it for the whole run, so a short retry tells them apart.
PATIENCE = 0.25


def lock_path(run_directory: str, slug: str) -> str:
    return os.path.join(run_directory, f"{slug}.lock")


class LockHeld(Exception):
    """Another live process holds the lock."""

    def __init__(self, path: str, pid: int | None) -> None:
        self.path = path
        self.pid = pid
        super().__init__(f"{path} is held by {pid if pid is not None else 'another process'}")


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


def _open(path: str) -> int:
    # O_CLOEXEC: a job's processes must not inherit (and so keep holding)
    # the lock after the runner is gone. O_NOFOLLOW: never lock (and
    # truncate) whatever a planted symlink points at.
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def acquire(path: str, patience: float = PATIENCE) -> JobLock:
    """Take the lock and write our PID into it; raise :class:`LockHeld` if
    another process holds it."""
    fd = _open(path)
    deadline = time.monotonic() + patience
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                pid = _read_pid(fd)
                os.close(fd)
                raise LockHeld(path, pid) from None
            time.sleep(0.002)
        except BaseException:
            os.close(fd)
            raise
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except BaseException:
        os.close(fd)
        raise
    return JobLock(path, fd)


def holder(path: str) -> Holder | None:
    """Who holds the lock, or None if nobody does (whatever the file says)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return Holder(_read_pid(fd))
        return None  # we got it, so nobody holds it; closing drops it
    finally:
        os.close(fd)
