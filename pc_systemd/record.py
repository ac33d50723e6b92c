"""systemd's hooks around every run of a job's unit::

    ExecStartPre=-+<python> -I -m pc_systemd.record start SLUG [--config PATH]
    ExecStopPost=-+<python> -I -m pc_systemd.record stop SLUG [--config PATH]

``start`` adds a ``started`` entry (start time, the run's
``$INVOCATION_ID``) to ``<state_directory>/<slug>.yaml``, the history the
direct runner keeps on cron hosts, in the same format (:mod:`.history`).
``stop`` turns it into ``completed`` or ``failed`` with the end time, the
exit status and the reason in the original's words, from what systemd
hands ``ExecStopPost=`` (``$SERVICE_RESULT``, ``$EXIT_CODE``,
``$EXIT_STATUS``); then it rewrites ``metrics_file`` (:mod:`.metrics`) and
mails a failure that is due (:mod:`.mail`).

Why hooks in the unit rather than a wrapper around the command: systemd
runs ``ExecStopPost=`` after every end of a run -- success, failure,
timeout, a kill, ``systemctl stop`` -- so no run goes unrecorded, and
nothing depends on the job's own process, which may be the one that was
killed. They run as root (``+``) so that they can write the state
directory whatever the sandbox, and hand every file they create to the
service user, who reads them for ``run-job --status`` and whose direct
runner must be able to take over the files if the host changes backend.

What may go wrong here must never fail the run (``-`` makes systemd ignore
the exit status anyway) nor print a traceback: each problem is one line on
stderr, which is the journal. The job's ``environment`` is in our
environment too, so ``$PROCESS_CONTROL_CONFIG`` is ignored: a job file must
not choose the configuration that root acts on. ``start`` runs before
every run, so this module imports only what recording needs; mail and
metrics are imported when used.
"""

from __future__ import annotations

import datetime as dt
import os
import pwd
import signal
import stat
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from . import history as hist
from .config import Config, load_config
from .errors import PcError
from .job import SLUG, Job

USAGE = "usage: python -m pc_systemd.record start|stop SLUG [--config PATH]"
EXIT_OK = 0
EXIT_PROBLEM = 1  # something could not be recorded (and was logged)
EXIT_USAGE = 2
NOT_STOP_POST = "$SERVICE_RESULT is not set: 'stop' is run by systemd's ExecStopPost="

Warn = Callable[[str], None]
Owner = tuple[int, int]


class Usage(Exception):
    """Called wrongly (or not by systemd); the message says how."""


@dataclass(frozen=True)
class Result:
    """A run's end, as the history records it."""

    status: str  # completed | failed
    code: int | None  # the exit code, or minus the signal that ended the command
    reason: str | None  # None: success


# -- what systemd tells ExecStopPost= ------------------------------------------------


def _signal_number(text: str) -> int | None:
    """``EXIT_STATUS`` of a killed process: a name without ``SIG`` (``TERM``),
    ``RTMIN+N``, or a number for signals systemd has no name for."""
    if text.isdigit():
        return int(text)
    try:
        return int(signal.Signals["SIG" + text])
    except KeyError:
        pass
    if text.startswith("RTMIN+") and text[6:].isdigit():
        return int(signal.SIGRTMIN) + int(text[6:])
    return None


def result(name: str, timeout: float, env: Mapping[str, str]) -> Result:
    """The run's end from ``$SERVICE_RESULT``, ``$EXIT_CODE``, ``$EXIT_STATUS``.

    ``name`` and ``timeout`` (minutes) are the job's, for the reason.
    """
    from . import unit_result as ur

    service_result = env.get("SERVICE_RESULT", "")
    if not service_result:
        raise Usage(NOT_STOP_POST)
    kind = env.get("EXIT_CODE", "")  # absent when no command ran
    status_text = env.get("EXIT_STATUS", "")
    main_code = ur.CLD_NAMES.get(kind, 0)
    number: int | None = None
    code: int | None = None
    if main_code == ur.CLD_EXITED and status_text.isdigit():
        number = code = int(status_text)
    elif main_code in (ur.CLD_KILLED, ur.CLD_DUMPED):
        number = _signal_number(status_text)
        code = -number if number is not None else None
    if number is None:
        main_code = 0  # nothing we understand: the reason names systemd's result
    outcome = ur.outcome(name, service_result, main_code, number or 0, timeout)
    if outcome.status == "success":
        return Result("completed", code if code is not None else 0, None)
    reason = outcome.reason
    if service_result == "signal" and kind == "killed" and number == signal.SIGTERM:
        # `systemctl stop`, `run-job --kill-job`: the original's words for
        # a run that was told to stop.
        reason = f"{name} was terminated by SIGTERM"
    return Result("failed", code, reason)


# -- files root writes for the service user ----------------------------------------


def service_owner(config: Config) -> Owner | None:
    """(uid, gid) of the service user, when we are root and it exists."""
    if os.geteuid() != 0:
        return None
    try:
        user = config.user
        entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


def _state_directory(config: Config, owner: Owner | None) -> None:
    """Create the state directory if it is missing, for the service user
    (its parents stay root's)."""
    directory = config.state_directory
    if os.path.isdir(directory):
        return
    os.makedirs(os.path.dirname(directory), exist_ok=True)
    try:
        os.mkdir(directory, 0o755)
    except FileExistsError:
        return
    if owner is not None:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            os.fchown(fd, *owner)
        finally:
            os.close(fd)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- start -------------------------------------------------------------------------


def start(config: Config, slug: str, env: Mapping[str, str], warn: Warn) -> int:
    invocation = _invocation(env)
    owner = service_owner(config)
    _state_directory(config, owner)
    now = _now()
    entry = hist.Entry("started", now, start=now, invocation=invocation)
    hist.update(hist.history_path(config.state_directory, slug),
                lambda h: h.started(entry), warn, owner)
    return EXIT_OK


def _invocation(env: Mapping[str, str]) -> str:
    invocation = env.get("INVOCATION_ID", "")
    if len(invocation) != 32 or not invocation.isalnum():
        raise Usage("$INVOCATION_ID is not set: the hooks are run by systemd")
    return invocation


# -- stop --------------------------------------------------------------------------


def _job(config: Config, slug: str, warn: Warn) -> Job | None:
    from .jobset import find_job

    try:
        return find_job(config, slug)
    except PcError as err:
        # The run happened all the same: record it under the slug.
        warn(f"{_first(err)} (the run is recorded, no mail is sent)")
        return None


def _unit(slug: str) -> str:
    """The unit we run for: the job's service or its slow-start service."""
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as handle:
            path = handle.read().strip().splitlines()[-1].rpartition("::")[2]
    except (OSError, IndexError):
        path = ""
    name = path.rpartition("/")[2]
    prefix = f"process-control-{slug}."
    return name if name.startswith(prefix) and name.endswith(".service") else prefix + "service"


def _run_log(config: Config, job: Job | None, begun: dt.datetime | None) -> str | None:
    """The per-run file of a ``logging: file`` run: the newest file of the
    job, if this run wrote it (runs of a unit never overlap)."""
    if job is None or job.logging != "file":
        return None
    from .runlog import newest_log

    path = newest_log(config.output_directory, job.slug)
    if path is None:
        return None
    try:
        st = os.lstat(path)  # a symlink planted there is not the run's file
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return path if begun is None or st.st_mtime >= begun.timestamp() else None


def stop(config: Config, slug: str, env: Mapping[str, str], warn: Warn) -> int:
    invocation = _invocation(env)
    if not env.get("SERVICE_RESULT"):
        raise Usage(NOT_STOP_POST)
    job = _job(config, slug, warn)
    ended = result(job.name if job else slug, job.timeout if job else 0.0, env)
    owner = service_owner(config)
    now = _now()
    made: list[hist.Entry] = []

    def finish(history: hist.History) -> hist.History:
        begun = next((e for e in reversed(history.entries)
                      if e.status == "started" and e.invocation == invocation), None)
        start_time = begun.start if begun is not None else None
        entry = hist.Entry(ended.status, now, start=start_time, end=now, code=ended.code,
                           reason=ended.reason, log=_run_log(config, job, start_time),
                           invocation=invocation)
        made.append(entry)
        return history.finished(entry)

    problem = EXIT_OK
    path = hist.history_path(config.state_directory, slug)
    try:
        _state_directory(config, owner)
        recorded: hist.History | None = hist.update(path, finish, warn, owner)
    except OSError as err:
        warn(f"cannot write the run history {path}: {err.strerror or err}")
        recorded, problem = None, EXIT_PROBLEM
    if config.metrics_file is not None:
        from . import metrics

        metrics.update(config, slug, warn)
    if ended.status == "failed" and job is not None and ended.reason is not None:
        failures = recorded.consecutive_failures if recorded is not None else 1
        entry = made[-1] if made else None
        _mail(config, job, ended.reason, failures, entry, _unit(slug), invocation, warn)
    return problem


def _mail(
    config: Config, job: Job, reason: str, failures: int, entry: hist.Entry | None,
    unit: str, invocation: str, warn: Warn,
) -> None:
    from . import mail

    begun = entry.start if entry is not None else None

    def run() -> mail.FailedRun:
        if job.logging == "file":
            owner = service_owner(config)
            output = mail.file_output(entry.log if entry is not None else None,
                                      owner=owner[0] if owner is not None else None)
        else:
            output = mail.journal_output(unit, invocation, begun, job.slug)
        return mail.FailedRun(reason, failures, output, begun,
                              entry.end if entry is not None else None)

    mail.notify(config, job, run, failures, warn)


# -- python -m pc_systemd.record -----------------------------------------------------


def _first(err: PcError) -> str:
    more = len(err.problems) - 1
    return str(err.problems[0]) + (f" (and {more} more)" if more > 0 else "")


def _arguments(args: Sequence[str]) -> tuple[str, str, str | None]:
    rest = list(args)
    config_path = None
    for i, arg in enumerate(rest):
        if arg.startswith("--config="):
            config_path = arg.partition("=")[2]
            del rest[i]
            break
        if arg == "--config" and i + 1 < len(rest):
            config_path = rest[i + 1]
            del rest[i : i + 2]
            break
    if len(rest) != 2 or rest[0] not in ("start", "stop") or config_path == "":
        raise Usage(USAGE)
    if not SLUG.match(rest[1]):
        raise Usage(f"bad job name {rest[1]!r}")
    return rest[0], rest[1], config_path


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ

    def warn(line: str) -> None:
        print(f"process-control record: {line}", file=sys.stderr, flush=True)

    try:
        when, slug, config_path = _arguments(sys.argv[1:] if argv is None else argv)
        # Not the environment: it holds the job's own variables (see above).
        config = load_config(config_path, {})
        hook = start if when == "start" else stop
        return hook(config, slug, env, warn)
    except Usage as err:
        warn(str(err))
        return EXIT_USAGE
    except PcError as err:
        warn(_first(err))
        return EXIT_PROBLEM
    except OSError as err:
        where = f"{err.filename}: " if err.filename else ""
        warn(f"{where}{err.strerror or err}")
        return EXIT_PROBLEM
    except Exception as err:
        # A bug here must cost a line in the journal, not the run.
        warn(f"internal error: {type(err).__name__}: {err}")
        return EXIT_PROBLEM


if __name__ == "__main__":
    sys.exit(main())
