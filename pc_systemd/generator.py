"""The systemd generator: every job -> a .service (and a .timer when it has
a schedule), written only into the directory systemd hands over.

It runs at every boot and every daemon-reload, so it stays lean: no click,
no D-Bus, only the modules the job set needs.  One broken job file is
logged with its ``path:line`` and skipped; every other job is generated.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from . import fanout
from .config import Config, load_config
from .errors import PcError, printable
from .jobset import job_files, load_jobs
from .unit_escape import UnitValueError

if TYPE_CHECKING:
    from .units import Renderer

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
    # os-level calls: thousands of files per run, and a file object each
    # costs more than the write
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
    fd = os.open(os.path.join(directory, name), flags, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def want(directory: str, target: str, name: str) -> None:
    """Enable a unit: a symlink in <target>.wants/ (made by generate())."""
    link = os.path.join(directory, f"{target}.wants", name)
    with contextlib.suppress(FileExistsError):
        os.symlink(os.path.join(directory, name), link)


def generate(
    normal: str,
    log: Log,
    config_path: str | None = None,
    python: str = sys.executable,
    workers: int | None = None,
) -> int:
    """Write every job's units into ``normal``; returns the exit status."""
    try:
        config = load_config(config_path)
    except PcError as err:
        for problem in err.problems:
            log(ERR, str(problem))
        log(ERR, "no units generated: the global configuration is invalid")
        return 1
    try:
        paths = job_files(config)
    except OSError as err:
        log(ERR, str(config.problem("job_directory", f"{config.job_directory}: {err.strerror}")))
        paths = []
    from .units import Renderer  # after loading: a config error never pays for it

    renderer = Renderer(config, python)
    os.makedirs(normal, exist_ok=True)
    for target in ("timers.target", "paths.target"):
        os.makedirs(os.path.join(normal, f"{target}.wants"), exist_ok=True)
    parts = fanout.shares(paths, workers or fanout.workers_for(len(paths)))
    results = fanout.run(parts, lambda part: _generate_part(part, config, renderer, normal))
    written = skipped = 0
    status = 0
    for result in results:
        if result is None:
            log(ERR, "a worker process failed; some jobs may have no units")
            status = 1
            continue
        head, _, messages = result.partition("\n")
        counts = head.split()
        written += int(counts[0])
        skipped += int(counts[1])
        for line in messages.split("\n") if messages else ():
            level, _, message = line.partition("\t")
            log(int(level), message)
    try:
        for unit in renderer.reload_units():
            write_unit(normal, unit.name, unit.text)
            if unit.wanted_by:
                want(normal, unit.wanted_by, unit.name)
    except UnitValueError as err:
        log(ERR, f"no reload units: {err}")
        status = 1
    log(INFO, f"generated units of {written} job(s), skipped {skipped}")
    return status


def _generate_part(paths: list[str], config: Config, renderer: Renderer, normal: str) -> str:
    """Units of some jobs; returns "written skipped" and the log lines."""
    jobset = load_jobs(config, paths, listed=True)
    # str(Problem) escapes what does not print, so each message is one line
    messages = [f"{ERR}\t{problem} (job skipped)" for problem in jobset.problems]
    messages += [f"{WARNING}\t{warning}" for warning in jobset.warnings]
    written = 0
    for job in jobset.jobs:
        try:
            units = renderer.job_units(job)
        except UnitValueError as err:
            messages.append(f"{ERR}\t{printable(f'{job.path}:1: (unit): {err}')} (job skipped)")
            continue
        for unit in units:
            write_unit(normal, unit.name, unit.text)
            if unit.wanted_by:
                want(normal, unit.wanted_by, unit.name)
        written += 1
    skipped = len(jobset.broken) + len(jobset.jobs) - written
    # problems are one line each; keep the protocol line-based regardless
    body = "\n".join(m.replace("\n", " ") for m in messages)
    return f"{written} {skipped}\n{body}"


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 3):
        print("usage: process-control-generator NORMAL [EARLY LATE]", file=sys.stderr)
        return 2
    return generate(argv[0], make_log(os.environ))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
