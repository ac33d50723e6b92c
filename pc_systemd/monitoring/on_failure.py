"""Failure mail on systemd hosts: the service ``process-control-mail@<slug>``
that a job's unit starts through ``OnFailure=`` when a run fails::

    ExecStart=<python> -I -m pc_systemd.monitoring.on_failure [--config PATH] SLUG

It runs as ``process-control-monitor`` (allocated by systemd unless the
system has it), never as root nor as the service user, and reads the
journal through the ``systemd-journal`` group. What it acts on comes from
systemd and from files root controls, never from the failed job:

- the failed run is systemd's ``MONITOR_UNIT``, ``MONITOR_INVOCATION_ID``,
  ``MONITOR_SERVICE_RESULT``, ``MONITOR_EXIT_CODE`` and
  ``MONITOR_EXIT_STATUS`` (a job's ``Environment=`` does not reach
  ``OnFailure=`` units: tested on the real systemd);
- the configuration is the one named on the command line (the generator
  writes it; ``$PROCESS_CONTROL_CONFIG`` is ignored), the job its job file;
- the number of failures in a row is counted from systemd's own records of
  the job's runs in the journal.

Then the mail goes out as the original sent it (threshold, subject) with
the run's last lines of output (:mod:`pc_systemd.monitoring.mail`). Every problem is one line
in the journal and exit status 1; nothing here can change the run's result.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from pc_systemd.core import safe_open
from pc_systemd.model import holds
from pc_systemd.model.config import Config, load_config
from pc_systemd.model.errors import PcError
from pc_systemd.model.job import SLUG, Job, log_name_pattern
from pc_systemd.model.jobinfo import timestamp
from pc_systemd.model.jobset import find_job
from pc_systemd.monitoring import mail
from pc_systemd.systemd import bus, filelog, filelog_notes, journal
from pc_systemd.systemd.unit_result import from_exit
from pc_systemd.systemd.units import (
    MONITOR_USER,
    filecheck_name,
    service_name,
    slow_start_name,
    timer_name,
)

# seconds to wait for journald to store the file check's line (journal.settle)
FILE_NOTES_BOUND = 10.0
USAGE = "usage: python -m pc_systemd.monitoring.on_failure [--config PATH] SLUG"
EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2

Warn = Callable[[str], None]


class Usage(Exception):
    """Called wrongly (or not by systemd's OnFailure=); the message says how."""


def _arguments(args: Sequence[str]) -> tuple[str, str | None]:
    rest = list(args)
    config_path = None
    if len(rest) >= 2 and rest[0] == "--config":
        config_path = rest[1]
        del rest[:2]
    if len(rest) != 1 or config_path == "":
        raise Usage(USAGE)
    if not SLUG.match(rest[0]):
        raise Usage(f"bad job name {rest[0]!r}")
    return rest[0], config_path


def _failed_run(job: Job, env: Mapping[str, str]) -> tuple[str, str, str]:
    """(unit, invocation, reason) of the run systemd reports as failed."""
    units = (service_name(job.slug), slow_start_name(job.slug))
    unit = env.get("MONITOR_UNIT", "")
    invocation = env.get("MONITOR_INVOCATION_ID", "")
    result = env.get("MONITOR_SERVICE_RESULT", "")
    if unit not in units or len(invocation) != 32 or not invocation.isalnum() or not result:
        raise Usage("$MONITOR_UNIT, $MONITOR_INVOCATION_ID and $MONITOR_SERVICE_RESULT "
                    f"are not those of a run of {job.slug}: OnFailure= starts this unit")
    done = from_exit(job.name, result, env.get("MONITOR_EXIT_CODE", ""),
                     env.get("MONITOR_EXIT_STATUS", ""), job.timeout)
    reason = done.reason or f"{job.name} failed: systemd reports {result}"
    return unit, invocation, reason


def notify(config: Config, job: Job, env: Mapping[str, str], warn: Warn) -> bool:
    """Stop the job if ``stop_after_failures`` is reached; mail the failed
    run if the job's threshold is reached; True if sent."""
    unit, invocation, reason = _failed_run(job, env)
    if job.failmail is None and job.stop_after_failures is None:
        return False
    try:
        failures, run = journal.streak([service_name(job.slug), slow_start_name(job.slug)],
                                       invocation, restarts=job.retry is not None)
    except journal.JournalError as err:
        warn(f"{err} (counted as the first failure)")
        failures, run = 1, None
    stopped = holds.stops(job.stop_after_failures, failures)
    reset = holds.reset_time(config.hold_directory, job.slug) if stopped else None
    if reset is not None:  # after run-job reset, the failures count from the reset
        try:
            since_reset, _run = journal.streak(
                [service_name(job.slug), slow_start_name(job.slug)], invocation,
                restarts=job.retry is not None, since=reset)
        except journal.JournalError as err:
            warn(f"{err} (counted as the first failure since the reset)")
            since_reset = 1
        stopped = holds.stops(job.stop_after_failures, since_reset)
    if stopped:
        stopped = stop(config, job, failures, warn)
    start = timestamp(run.start) if run is not None else None
    end = timestamp(run.end) if run is not None and run.end is not None else None

    def output() -> mail.RunOutput:
        begun = run.start if run is not None else None
        if job.logging != "file":
            return mail.journal_output(unit, invocation, begun, job.slug)
        found = _file_output(config, job, invocation)
        if found is None:  # no file: the wrapper said why, in the journal
            return mail.journal_output(unit, invocation, begun, job.slug)
        said = _file_notes(job, unit, begun, warn)
        if not said:
            return found
        return replace(found, note="\n".join([*([found.note] if found.note else []), *said]))

    def failed() -> mail.FailedRun:
        return mail.FailedRun(reason, failures, output(), start, end, stopped)

    return mail.notify(config, job, failed, failures, warn)


def stop(config: Config, job: Job, failures: int, warn: Warn) -> bool:
    """Record the stop in the hold directory (the generator then leaves the
    timer out of timers.target.wants) and stop the timer now (polkit lets
    this unit's user stop a job's timer, nothing else). True if recorded."""
    try:
        holds.add(config.hold_directory, holds.stopped_file(job.slug),
                  holds.record(MONITOR_USER, str(failures)))
    except holds.HoldError as err:
        warn(f"{job.slug}: {failures} consecutive failures, but not stopped: {err}")
        return False
    warn(f"{job.slug}: stopped after {failures} consecutive failures "
         f"(stop_after_failures: {job.stop_after_failures}); run-job reset {job.slug}")
    if job.schedule is None:
        return True
    try:
        with bus.systemd() as sd:
            sd.stop_unit(timer_name(job.slug))
    except bus.BusError as err:
        warn(f"{timer_name(job.slug)} not stopped now (it is from the next "
             f"daemon-reload on): {err}")
    return True


def _file_notes(job: Job, unit: str, start: int | None, warn: Warn) -> list[str]:
    """What the run recorded about its file (:mod:`pc_systemd.systemd.filelog_notes`):
    its file system was full when it ended (the file check, started with
    this unit and ordered before it)."""
    units = [unit, filecheck_name(job.slug)]
    try:
        journal.settle(unit, start, None, FILE_NOTES_BOUND, timeout=mail.JOURNAL_TIMEOUT)
        notes = filelog_notes.read(units, start or 0)
    except journal.JournalError as err:
        warn(f"{err} (the run's notes on its log file are not in the mail)")
        return []
    return filelog_notes.of_run(notes, units, start or 0)


def _file_output(config: Config, job: Job, invocation: str) -> mail.RunOutput | None:
    """The tail of the run's own file, found through the wrapper's link
    (:mod:`pc_systemd.systemd.filelog`): only a regular file of the service user's, by a
    plain name in the job's log directory, opened by :mod:`pc_systemd.core.safe_open`.
    None: the run has no file (the wrapper could not make it, or no command started)."""
    directory = os.path.join(config.output_directory, job.slug)
    link = filelog.LINK_PREFIX + invocation
    try:
        dir_fd = safe_open.open_dir(config.output_directory, job.slug)
    except OSError as err:
        return mail.RunOutput((), (directory,), f"{directory}: {err.strerror or err}")
    try:
        try:
            name = os.readlink(link, dir_fd=dir_fd)
        except OSError:
            return None
        path = os.path.join(directory, name)
        if not log_name_pattern(job.slug).match(name):
            return mail.RunOutput((), (path,), f"{path}: not a log file of the job")
        try:
            fd = safe_open.open_at(dir_fd, name, safe_open.service_uid(config.user), path)
            return mail.RunOutput(tuple(mail.tail_fd(fd)), (path,))
        except OSError as err:
            return mail.RunOutput((), (path,), f"{path}: {err.strerror or err}")
    finally:
        os.close(dir_fd)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ

    def warn(line: str) -> None:
        print(f"process-control mail: {line}", file=sys.stderr, flush=True)

    try:
        slug, config_path = _arguments(sys.argv[1:] if argv is None else argv)
        config = load_config(config_path, {})  # never the environment's choice
        job = find_job(config, slug)
        notify(config, job, env, warn)
        return EXIT_OK
    except Usage as err:
        warn(str(err))
        return EXIT_USAGE
    except PcError as err:
        more = len(err.problems) - 1
        warn(str(err.problems[0]) + (f" (and {more} more)" if more > 0 else "")
             + ": no failure mail")
        return EXIT_PROBLEM
    except OSError as err:
        where = f"{err.filename}: " if err.filename else ""
        warn(f"{where}{err.strerror or err}")
        return EXIT_PROBLEM


if __name__ == "__main__":
    sys.exit(main())
