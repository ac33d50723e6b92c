"""The systemd generator: every job -> a .service (and a .timer when it has
a schedule), written only into the directory systemd hands over.

It runs at every boot and every daemon-reload, so it stays lean: no click,
no D-Bus, only the modules the job set needs.  One broken job file is
logged with its ``path:line`` and skipped; every other job is generated.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping

from .config import load_config
from .errors import PcError
from .jobset import load_jobs
from .unit_escape import UnitValueError

Log = Callable[[int, str], None]
ERR, WARNING, INFO = 3, 4, 6


def make_log(environ: Mapping[str, str]) -> Log:
    """Where generator messages go.

    systemd runs generators with stdout and stderr on /dev/null, so when it
    runs us (it sets $SYSTEMD_SCOPE) messages go to /dev/kmsg, which the
    journal reads at boot; where there is none (a container) to the syslog
    socket /dev/log, which journald serves after boot; stderr otherwise.
    """
    sink: Callable[[int, str], None] | None = None
    if environ.get("SYSTEMD_SCOPE"):
        sink = _kmsg() or _syslog()

    def log(level: int, message: str) -> None:
        if sink is not None:
            sink(level, message)
        else:
            print(f"process-control-generator: {message}", file=sys.stderr)

    return log


def _kmsg() -> Callable[[int, str], None] | None:
    try:
        # no O_CREAT: where there is no kmsg (a container), never make a file
        fd = os.open("/dev/kmsg", os.O_WRONLY | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError:
        return None

    def write(level: int, message: str) -> None:
        line = f"<{level}>process-control-generator[{os.getpid()}]: {message}\n"
        os.write(fd, line.encode())

    return write


def _syslog() -> Callable[[int, str], None] | None:
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.connect("/dev/log")
    except OSError:
        sock.close()
        return None

    def write(level: int, message: str) -> None:
        # facility daemon (3 << 3) plus the level
        data = f"<{24 + level}>process-control-generator[{os.getpid()}]: {message}"
        try:
            sock.send(data.encode())
        except OSError:
            print(f"process-control-generator: {message}", file=sys.stderr)

    return write


def write_unit(directory: str, name: str, text: str) -> None:
    with open(os.path.join(directory, name), "w", encoding="utf-8") as handle:
        handle.write(text)


def want(directory: str, target: str, name: str) -> None:
    wants = os.path.join(directory, f"{target}.wants")
    os.makedirs(wants, exist_ok=True)
    link = os.path.join(wants, name)
    if not os.path.lexists(link):
        os.symlink(os.path.join(directory, name), link)


def generate(
    normal: str, log: Log, config_path: str | None = None, python: str = sys.executable
) -> int:
    """Write every job's units into ``normal``; returns the exit status."""
    try:
        config = load_config(config_path)
    except PcError as err:
        for problem in err.problems:
            log(ERR, str(problem))
        log(ERR, "no units generated: the global configuration is invalid")
        return 1
    jobset = load_jobs(config)
    for problem in jobset.problems:
        log(ERR, f"{problem} (job skipped)")
    for warning in jobset.warnings:
        log(WARNING, str(warning))
    from .units import Renderer  # after loading: a config error never pays for Jinja2

    renderer = Renderer(config, python)
    os.makedirs(normal, exist_ok=True)
    written = 0
    for job in jobset.jobs:
        try:
            units = renderer.job_units(job)
        except UnitValueError as err:
            log(ERR, f"{job.path}:1: (unit): {err} (job skipped)")
            continue
        for unit in units:
            write_unit(normal, unit.name, unit.text)
            if unit.wanted_by:
                want(normal, unit.wanted_by, unit.name)
        written += 1
    for unit in renderer.reload_units():
        write_unit(normal, unit.name, unit.text)
        if unit.wanted_by:
            want(normal, unit.wanted_by, unit.name)
    log(INFO, f"generated units of {written} job(s), skipped {len(jobset.broken)}")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 3):
        print("usage: process-control-generator NORMAL [EARLY LATE]", file=sys.stderr)
        return 2
    return generate(argv[0], make_log(os.environ))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
