"""Run a command with its stdout on a pseudo-terminal of its own, and print
what that terminal received: ``python tests/on_a_pty.py COMMAND [ARG...]``.

stdin is /dev/null and stderr is passed through. The terminal is raw (no
``\\n`` -> ``\\r\\n``), so the bytes printed are the bytes the command wrote.
Exit status: the command's. Used on the host and inside the systemd box,
where run-job's output to a terminal is what the tests look at."""

from __future__ import annotations

import os
import subprocess
import sys
import tty


def on_a_pty(argv: list[str]) -> tuple[int, bytes]:
    controller, terminal = os.openpty()
    tty.setraw(terminal)
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=terminal)
    finally:
        os.close(terminal)
    chunks = []
    try:
        while True:
            try:
                data = os.read(controller, 1 << 16)
            except OSError:  # EIO: every holder of the terminal closed it
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(controller)
    return proc.wait(), b"".join(chunks)


def main() -> None:
    code, output = on_a_pty(sys.argv[1:])
    sys.stdout.buffer.write(output)
    sys.stdout.flush()
    sys.exit(code)


if __name__ == "__main__":
    main()
