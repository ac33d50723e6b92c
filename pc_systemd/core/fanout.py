"""Spread independent work over the machine's CPUs with fork().

The generator and cron-generate read every job file at every boot or
deploy; reading and checking a job is pure Python and CPU-bound, so with
many jobs each CPU takes a share.  A share's result comes back as bytes
through a pipe (:class:`Child`, also used to read the journal while
``--status`` asks systemd).  Small job sets stay in one process: a fork
costs more than a few jobs.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")
PER_WORKER = 200  # fewer jobs than this per CPU are not worth a fork


def workers_for(count: int) -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, count // PER_WORKER))


def shares(items: Sequence[T], workers: int) -> list[list[T]]:
    """Contiguous shares, so each keeps the items' order."""
    size, extra = divmod(len(items), workers)
    out, start = [], 0
    for n in range(workers):
        end = start + size + (1 if n < extra else 0)
        out.append(list(items[start:end]))
        start = end
    return out


class Child:
    """``work()`` run in a forked child process; the bytes it returns come
    back through a pipe (:meth:`collect`). A child that is not collected,
    because the parent failed or no longer needs it, is killed (:meth:`kill`):
    it must not outlive the parent's interest in it."""

    def __init__(self, work: Callable[[], bytes]) -> None:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child, reported through the pipe
            os.close(read_end)
            status = 1
            try:
                data = memoryview(work())
                while data:
                    data = data[os.write(write_end, data) :]
                status = 0
            except BaseException:
                import traceback  # only a failing child pays for it (~2 ms of imports)

                traceback.print_exc()  # the parent reports that this child failed
            finally:
                os._exit(status)
        os.close(write_end)
        self.pid = pid
        self.exit_code: int | None = None  # once collected (negative: the signal that ended it)
        self._read: int | None = read_end

    def collect(self) -> bytes | None:
        """What the child returned, once it has ended; None if it failed."""
        assert self._read is not None, "collected or killed already"
        chunks = []
        while chunk := os.read(self._read, 1 << 16):
            chunks.append(chunk)
        self._close()
        _, status = os.waitpid(self.pid, 0)
        self.exit_code = os.waitstatus_to_exitcode(status)
        return b"".join(chunks) if self.exit_code == 0 else None

    def kill(self) -> None:
        """End the child now and reap it, unless it was collected."""
        if self._read is None:
            return
        self._close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)  # not reaped yet: the PID is still this child's
        _, status = os.waitpid(self.pid, 0)
        self.exit_code = os.waitstatus_to_exitcode(status)

    def _close(self) -> None:
        if self._read is not None:
            os.close(self._read)
            self._read = None


@contextlib.contextmanager
def forked(works: Sequence[Callable[[], bytes]]) -> Iterator[list[Child]]:
    """A child per work; those not collected when the block is left are killed."""
    children: list[Child] = []
    try:
        for work in works:
            children.append(Child(work))
        yield children
    finally:
        for child in children:
            child.kill()


def run(parts: list[list[T]], work: Callable[[list[T]], bytes]) -> list[bytes | None]:
    """``work(part)`` for each part, all but the first in forked children;
    results in order, None for a child that died without one. If the
    parent's own part fails, the children are killed."""
    with forked([functools.partial(work, part) for part in parts[1:]]) as children:
        results: list[bytes | None] = [work(parts[0])] if parts else []
        for child in children:
            result = child.collect()
            if result is None:
                print(f"process-control: worker {child.pid} ended with status {child.exit_code}",
                      file=sys.stderr)
            results.append(result)
    return results
