"""Replacing a file so that no reader ever sees half of it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable


def write_atomically(
    path: str, text: str, mode: int = 0o644, prepare: Callable[[int], None] | None = None
) -> None:
    """Write ``text`` to a new file beside ``path`` and rename it over.

    The temporary name starts with a dot and is made with O_EXCL
    (``mkstemp``): Debian's cron and node_exporter never read such names,
    and no planted file or link is ever written through.  ``prepare`` gets
    the open descriptor before the rename (to hand the file to its owner).
    """
    fd, tmp = tempfile.mkstemp(prefix=".process-control.", dir=os.path.dirname(path) or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            if prepare is not None:
                prepare(handle.fileno())
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
