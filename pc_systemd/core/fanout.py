"""Spread independent work over the machine's CPUs with fork().

The generator and cron-generate read every job file at every boot or
deploy; reading and checking a job is pure Python and CPU-bound, so with
many jobs each CPU takes a share.  A share's result comes back as bytes
through a pipe.  Small job sets stay in one process: a fork costs more
than a few jobs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
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


def run(parts: list[list[T]], work: Callable[[list[T]], bytes]) -> list[bytes | None]:
    """``work(part)`` for each part, all but the first in forked children;
    results in order, None for a child that died without one."""
    children: list[tuple[int, int]] = []
    for part in parts[1:]:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child, reported through the pipe
            os.close(read_end)
            status = 1
            try:
                data = memoryview(work(part))
                while data:
                    data = data[os.write(write_end, data) :]
                status = 0
            except BaseException:
                import traceback

                traceback.print_exc()  # the parent reports that this share failed
            finally:
                os._exit(status)
        os.close(write_end)
        children.append((pid, read_end))
    results: list[bytes | None] = [work(parts[0])] if parts else []
    for pid, read_end in children:
        chunks = []
        while chunk := os.read(read_end, 1 << 16):
            chunks.append(chunk)
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        ok = code == 0
        if not ok:  # (negative: the signal that ended it)
            print(f"process-control: worker {pid} ended with status {code}", file=sys.stderr)
        results.append(b"".join(chunks) if ok else None)
    return results
