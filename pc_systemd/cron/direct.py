"""The direct runner: ``run-job --job NAME`` on hosts without systemd (cron hosts).

A run, as the original's: refuse anyone but the service user; take the
job's lock (:mod:`pc_systemd.cron.lock`); record ``started`` in the history
(:mod:`pc_systemd.cron.history`); run each command in turn, its output into the run's log
file (:mod:`pc_systemd.cron.runlog`), until one fails, the timeout passes or run-job is
told to stop; record the outcome; report a failure.

Where it does better than the original:

- every command starts in its own session, so its process group holds
  everything it forks; on timeout, SIGTERM (or SIGINT) to run-job, or when
  the command exits leaving processes behind, the whole group gets SIGTERM
  and, after a grace period, SIGKILL. The original killed only the direct
  child, and a grandchild holding the output pipe kept it waiting forever.
  A command started with ``setsid`` leaves the group and is out of reach:
  only a cgroup (the systemd path) holds everything;
- if run-job itself is killed (SIGKILL, OOM), the kernel kills the direct
  child too (``PR_SET_PDEATHSIG``) and the lock is free for the next run;
- output is logged in blocks, not a line at a time (see :mod:`pc_systemd.cron.runlog`).

The global configuration's ``logging`` key (a ``logging.config.dictConfig``
mapping) gets run-job's own messages, as the original's did, on its
``process-control`` logger: the run's start (INFO ``Running job Name (slug)``,
``Slow starting job ...``), each command and its log file (INFO), the end
(INFO ``Successfully completed slug.``, or the reason at ERROR), a skipped
run (INFO), a command being stopped (WARNING), and every line run-job prints
(ERROR). Without the key they are printed only, as before.

The module runs as ``python -m pc_systemd.cron.direct --job NAME`` for cron
lines until ``run-job --job`` calls :func:`run_job`.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import fcntl
import os
import pwd
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, TextIO

from pc_systemd.core.safe_open import make_dirs, service_uid
from pc_systemd.core.terminal import JobOutput
from pc_systemd.cron import credentials, lock
from pc_systemd.cron import history as hist
from pc_systemd.cron.credentials import CredentialError
from pc_systemd.cron.runlog import ERROR, INFO, Lines, RunLog, newest_log
from pc_systemd.model.config import Config
from pc_systemd.model.fields import Command
from pc_systemd.model.job import SYSTEMD_ONLY, Job
from pc_systemd.systemd.unit_result import minutes

if TYPE_CHECKING:  # the annotation only: logging is imported where the key asks for it
    import logging

EXIT_OK = 0
EXIT_FAILED = 1  # the job failed: a command failed or timed out, or a run held the lock
EXIT_UNUSABLE = 2  # nothing was run: wrong user, no slow_start_command, unusable directories

KILL_GRACE = 5.0  # seconds from SIGTERM to SIGKILL for a command's process group
# Once a command's group is gone, how long its pipes may stay open (held by
# a process that left the group) before the runner stops reading them.
DRAIN = 1.0
POLL = 0.05  # how often a group being stopped is looked at
READ_SIZE = 1 << 20
PIPE_SIZE = 1 << 20  # fewer, larger reads for chatty commands
SMALL_READ = 4096
BATCH_WAIT = 0.001
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class JobState:
    """What ``--status`` shows of one job."""

    running: bool
    pid: int | None  # the running run-job's
    last_status: str  # success | failure | skipped | unknown
    last_start: dt.datetime | None  # of the last run that ran to an end (UTC)
    last_end: dt.datetime | None
    last_duration: float | None  # seconds
    consecutive_failures: int
    last_log: str | None
    problem: str | None = None  # why the history could not be read, if it could not
    last_reason: str | None = None  # why the last run that ran to an end failed
    # why that run's log file misses output (no space left, permission denied)
    log_problem: str | None = None


@dataclass(frozen=True)
class Failure:
    """A failed run, as the failure-mail hook gets it."""

    reason: str
    log: str | None
    consecutive_failures: int
    log_problem: str | None = None  # why the log file misses output, if it does


def on_failure(
    config: Config, job: Job, failure: Failure, warn: Callable[[str], None] | None = None
) -> None:
    """Called once per failed run, after the history is written: mails
    ``Fail Mail (<host>) run-job: <reason>`` to ``job.failmail`` once
    ``consecutive_failures`` has reached ``job.failure_threshold_for_mail``,
    with the end of the run's log file (:mod:`pc_systemd.monitoring.mail`). A mail that cannot be
    sent is one line through ``warn`` (stderr if none), which cron mails.
    """
    from pc_systemd.monitoring import mail  # only failed runs pay for mail's imports (~19 ms)

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    def output() -> mail.RunOutput:
        found = mail.file_output(failure.log)
        if failure.log is None or failure.log_problem is None:
            return found
        # the file ends early: what it holds last is not what the run printed last
        return replace(found, note=f"These are not its last lines: {failure.log_problem}")

    mail.notify(
        config, job, lambda: mail.FailedRun(failure.reason, failure.consecutive_failures,
                                            output()),
        failure.consecutive_failures, lambda line: (warn or say)(f"run-job: {line}"),
    )


def after_run(config: Config, job: Job, warn: Callable[[str], None]) -> None:
    """Called after every run (and every run not started), once the history
    is written: brings ``metrics_file`` up to date, if there is one."""
    if config.metrics_file is None:
        return
    from pc_systemd.cron import metrics  # only hosts with a metrics_file pay for it (~3 ms)

    metrics.update(config, job.slug, lambda line: warn(f"run-job: {line}"),
                   job.stop_after_failures)


# -- run-job's own messages ------------------------------------------------------

OWN_LOGGER = "process-control"  # the original's logger name, which its example configures
# logging's levels, without importing it where no ``logging`` key asks for it.
LOG_INFO, WARNING, LOG_ERROR = 20, 30, 40


class OwnLog:
    """run-job's own messages to the ``process-control`` logger of the
    configuration's ``logging`` mapping; nothing without one."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger

    def __call__(self, level: int, message: str) -> None:
        if self.logger is not None:
            self.logger.log(level, "%s", message)

    @classmethod
    def configure(cls, config: Config, say: Callable[[str], None]) -> OwnLog:
        """Applies ``config.logging``; one that cannot be applied (a handler
        class that does not exist, a file it cannot open) is one line
        through ``say``, and the job runs all the same."""
        if config.logging is None:
            return cls()
        import logging.config  # only hosts whose configuration has the key

        try:
            logging.config.dictConfig(_plain(config.logging))
        except (ValueError, TypeError, AttributeError, ImportError, OSError) as err:
            reason = " ".join(str(err).split()) or type(err).__name__
            say(f"run-job: {config.problem('logging', f'cannot be applied: {reason}')}")
            return cls()
        # A syslog that is down must not put a traceback into cron's mail
        # (the original's did); the lines run-job prints still tell.
        logging.raiseExceptions = False
        return cls(logging.getLogger(OWN_LOGGER))


def _plain(value: Any) -> Any:
    """A fresh copy of plain dicts and lists: dictConfig changes what it is given."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


# -- the service user ------------------------------------------------------------


# Where an operator enables the shipped sudoers example
# (examples/sudoers.d/process-control), which lets developer_group become
# the service user on a cron host.
SUDOERS_FILE = "/etc/sudoers.d/process-control"


def how_to_become(config: Config) -> str:
    """The way a developer runs run-job as the service user."""
    return (f"use `sudo -u {config.user} run-job ...` (members of group "
            f"{config.developer_group}, once the operator enabled {SUDOERS_FILE})")


def wrong_user(config: Config, also_root: bool = False) -> str | None:
    """Why this process may not run (or, ``also_root``, stop) jobs, or None
    if it is the service user (or root)."""
    wanted = config.user
    uid = service_uid(wanted)
    if uid is None:
        return f"the service user {wanted!r} does not exist"
    me = os.geteuid()
    if uid != me and not (also_root and me == 0):
        return (f"jobs run as user {wanted!r} (uid {uid}), not as uid {me}: "
                f"{how_to_become(config)}")
    return None


def _home() -> str:
    """Where a job's commands start: the service user's home, as under cron
    and systemd (``WorkingDirectory=-~``), or / without one. Never the
    caller's directory: through sudo that is the developer's choice, and a
    job's relative arguments would name the developer's files."""
    try:
        home = pwd.getpwuid(os.geteuid()).pw_dir
    except KeyError:
        return "/"
    return home if os.path.isdir(home) else "/"


# -- signals to run-job ----------------------------------------------------------


class _Signals:
    """SIGTERM and SIGINT during a run: remembered, and the runner's wait
    for output woken through a pipe (``signal.set_wakeup_fd``)."""

    HANDLED = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self.wakeup: int | None = None  # read end, for the selector
        self._write: int | None = None
        self._old_fd = -1
        self._old: dict[signal.Signals, Any] = {}  # whatever signal.signal returned

    def __enter__(self) -> _Signals:
        # Handlers can only be set from the main thread; elsewhere (a library
        # caller's thread) the caller's own handling stays.
        if threading.current_thread() is threading.main_thread():
            self.wakeup, self._write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            self._old_fd = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
            self._old = {sig: signal.signal(sig, self._handle) for sig in self.HANDLED}
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signal.Signals(signum)

    def drain(self) -> None:
        if self.wakeup is not None:
            with contextlib.suppress(BlockingIOError):
                os.read(self.wakeup, 512)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.wakeup is None or self._write is None:
            return
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(self._old_fd)
        os.close(self.wakeup)
        os.close(self._write)


# -- process groups --------------------------------------------------------------


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``."""
    members = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue  # gone meanwhile
        # Fields after the command name, which is in parentheses and may hold ") ".
        fields = stat[stat.rindex(b")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != b"Z":
            members.append(int(name))
    return members


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _preexec(*steps: Callable[[], None] | None) -> Callable[[], None]:
    """One preexec function running ``steps`` in order."""
    todo = [step for step in steps if step is not None]
    if len(todo) == 1:
        return todo[0]

    def preexec() -> None:
        for step in todo:
            step()

    return preexec


def _die_with_runner() -> Callable[[], None]:
    """A preexec function: the command gets SIGKILL if run-job dies, so a
    killed runner never leaves its command running without the lock."""
    libc = ctypes.CDLL(None, use_errno=True)
    runner = os.getpid()

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != runner:  # run-job died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


# -- a command's priority ----------------------------------------------------------

_IOPRIO_WHO_PROCESS = 1
_IOPRIO_CLASS_SHIFT = 13
_IOPRIO_CLASS = {"best-effort": 2, "idle": 3}  # the kernel's IOPRIO_CLASS_*
# The level systemd gives IOSchedulingClass=best-effort (its default
# IOSchedulingPriority=), so a job gets the same on both backends.
BEST_EFFORT_LEVEL = 4
# ioprio_set(2) has no libc wrapper: its number per architecture (asm/unistd.h).
_IOPRIO_SET = {"x86_64": 251, "aarch64": 30, "riscv64": 30, "ppc64le": 273, "s390x": 282,
               "i686": 289, "armv7l": 314}


def ioprio(io_class: str) -> int:
    """The ioprio_set(2) value of an ``io_class``."""
    level = BEST_EFFORT_LEVEL if io_class == "best-effort" else 0
    return (_IOPRIO_CLASS[io_class] << _IOPRIO_CLASS_SHIFT) | level


def priority_refusal(job: Job) -> str | None:
    """Why the direct runner will not run ``job``, or None: limits it cannot
    enforce (they need systemd's control group), and a priority above its
    own, which the service user may not raise (EPERM) and which the runner
    will not take as a privilege even where it could."""
    for key in SYSTEMD_ONLY:
        if getattr(job, key) is not None:
            return str(job.problem(key, "is enforced only on systemd hosts (a control group "
                                        "limit): not run by the direct runner"))
    if job.nice is not None:
        own = os.getpriority(os.PRIO_PROCESS, 0)
        if job.nice < own:
            return str(job.problem("nice", f"{job.nice} is a higher priority than run-job's own "
                                           f"(nice {own}), which the direct runner never gives: "
                                           "not run"))
    if job.io_class is not None and os.uname().machine not in _IOPRIO_SET:
        return str(job.problem("io_class", f"not supported by the direct runner on "
                                           f"{os.uname().machine}: not run"))
    return None


def _set_priority(job: Job) -> Callable[[], None] | None:
    """A preexec step that gives the command the job's nice and I/O class
    (absolute values, as systemd's Nice= and IOSchedulingClass=)."""
    if job.nice is None and job.io_class is None:
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    number = _IOPRIO_SET.get(os.uname().machine)
    nice, io_class = job.nice, job.io_class

    def apply() -> None:
        if nice is not None:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
        if io_class is not None and number is not None and libc.syscall(
            number, _IOPRIO_WHO_PROCESS, 0, ioprio(io_class)
        ) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))

    return apply


# -- one run ---------------------------------------------------------------------


@dataclass(frozen=True)
class RunEnd:
    """How the direct runner's run of a job's commands ended."""

    code: int | None  # exit status of the last command run (negative: its signal)
    reason: str | None  # None: success
    terminated_by: signal.Signals | None = None


class _Run:
    """The commands of one run, supervised; state for that run only."""

    def __init__(
        self, job: Job, signals: _Signals, log: Callable[[], RunLog], grace: float,
        own: OwnLog | None = None, copy_credentials: Callable[[], str] | None = None,
    ) -> None:
        self.job = job
        self._copy_credentials = copy_credentials
        self.credentials: str | None = None  # the run's private copies (cron/credentials.py)
        self.signals = signals
        self.own = own or OwnLog()
        self._open_log = log
        self.log: RunLog | None = None
        self.open_problem: str | None = None  # why the log file could not be opened
        self.grace = grace
        # CREDENTIALS_DIRECTORY: only the run's own (set when it has credentials)
        inherited = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}
        self.env = {**inherited, **dict(job.environment)}
        self.cwd = _home()
        self.preexec = _preexec(_die_with_runner(), _set_priority(job))

    def run(self, commands: Sequence[Command]) -> RunEnd:
        name = self.job.name
        deadline = time.monotonic() + self.job.timeout * 60 if self.job.timeout > 0 else None
        code: int | None = None
        for command in commands:
            if self.signals.received is not None:
                return self.terminated(code)
            if deadline is not None and time.monotonic() >= deadline:
                return RunEnd(code, self._timed_out())
            if self.log is None:
                try:
                    self.log = self._open_log()
                except OSError as err:
                    where = f"{err.filename}: " if err.filename else ""
                    self.open_problem = (f"cannot open its log file: "
                                         f"{where}{err.strerror or err}")
                    return RunEnd(code, f"{name} failed: {self.open_problem}")
                self.own(LOG_INFO, f"Logging to {self.log.path}")
            if self.credentials is None and self._copy_credentials is not None:
                try:
                    self.credentials = self._copy_credentials()
                except (CredentialError, OSError) as err:
                    return RunEnd(code, f"{name} failed: {err}")
                self.env["CREDENTIALS_DIRECTORY"] = self.credentials
            self.own(LOG_INFO, f"Running command: {command.text}")
            code, stop = self._command(command, self.log, deadline)
            if stop == "timeout":
                return RunEnd(code, self._timed_out())
            if stop is not None:
                return self.terminated(code)
            if code != 0:
                return RunEnd(code, f"{name} failed with code {code}")
        if self.signals.received is not None:
            return self.terminated(code)
        return RunEnd(code, None)

    def _timed_out(self) -> str:
        return f"{self.job.name} timed out after {minutes(self.job.timeout)} minutes"

    def terminated(self, code: int | None) -> RunEnd:
        sig = self.signals.received
        assert sig is not None
        return RunEnd(code, f"{self.job.name} was terminated by {sig.name}", sig)

    def _command(
        self, command: Command, log: RunLog, deadline: float | None
    ) -> tuple[int, str | None]:
        """Run one command to its end; its exit status and why it was stopped, if it was."""
        try:
            proc = subprocess.Popen(
                command.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,  # its own process group, to kill as one
                preexec_fn=self.preexec,
                bufsize=0,
            )
        except OSError as err:
            code = 127 if isinstance(err, FileNotFoundError) else 126
            log.header(command.text, "not started")
            log.line(ERROR, f"cannot run {command.argv[0]}: {err.strerror}")
            log.end()
            return code, None
        except subprocess.SubprocessError:
            # the preexec steps failed (the job's priority could not be set)
            log.header(command.text, "not started")
            log.line(ERROR, f"cannot run {command.argv[0]}: its nice or io_class could not be set")
            log.end()
            return 126, None
        assert proc.stdout is not None and proc.stderr is not None
        log.header(command.text, proc.pid)
        try:
            stop = self._supervise(proc.pid, proc.stdout.fileno(), proc.stderr.fileno(), log,
                                   deadline)
        except BaseException:
            _signal_group(proc.pid, signal.SIGKILL)  # a runner bug must not leave it running
            raise
        finally:
            code = proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        log.end()
        return code, stop

    def _supervise(
        self, pgid: int, out_fd: int, err_fd: int, log: RunLog, deadline: float | None
    ) -> str | None:
        """Log the output until the command and its group are gone.

        The leader is not reaped here (``proc.wait`` comes after), so its
        PID, which is the group's ID, cannot be reused while the group is
        signalled.
        """
        streams = {out_fd: Lines(INFO), err_fd: Lines(ERROR)}
        pidfd = os.pidfd_open(pgid)
        selector = selectors.DefaultSelector()
        try:
            for fd in streams:
                with contextlib.suppress(OSError):  # over the user's pipe quota: keep 64 KiB
                    fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
                selector.register(fd, selectors.EVENT_READ)
            selector.register(pidfd, selectors.EVENT_READ)
            if self.signals.wakeup is not None:
                selector.register(self.signals.wakeup, selectors.EVENT_READ)
            return self._loop(selector, pgid, pidfd, streams, log, deadline)
        finally:
            selector.close()
            os.close(pidfd)

    def _loop(
        self,
        selector: selectors.BaseSelector,
        pgid: int,
        pidfd: int,
        streams: dict[int, Lines],
        log: RunLog,
        deadline: float | None,
    ) -> str | None:
        group = _Group(pgid, self.grace)
        stop: str | None = None  # "timeout" or the signal's name
        exited = False  # the command's main process
        drain_until: float | None = None
        trickle = False
        while True:
            now = time.monotonic()
            if not exited and stop is None:
                if self.signals.received is not None:
                    stop = self.signals.received.name
                elif deadline is not None and now >= deadline:
                    stop = "timeout"
                if stop is not None:
                    why = "timeout" if stop == "timeout" else stop
                    self.own(WARNING, f"Stopping the command's process group {pgid} due to {why}")
                    group.terminate(now)
            if exited or stop is not None:
                group.watch(now)
            if exited and group.gone:
                if not streams:
                    break
                if drain_until is None:
                    drain_until = now + DRAIN
                elif now >= drain_until:
                    break
            watching = (exited or stop is not None) and not group.gone
            waits = [group.next_look - now] if watching else []
            if stop is None and not exited and deadline is not None:
                waits.append(deadline - now)
            if drain_until is not None:
                waits.append(drain_until - now)
            if trickle:
                # The last read found only a little: let output gather for a
                # moment, so a command that writes line by line costs a read
                # per millisecond, not one per line.
                time.sleep(BATCH_WAIT)
                trickle = False
            for key, _events in selector.select(max(0.0, min(waits)) if waits else None):
                fd = int(key.fd)
                if fd in streams:
                    data = os.read(fd, READ_SIZE)
                    lines = streams[fd]
                    if data:
                        trickle = len(data) < SMALL_READ
                        block = lines.feed(data, log.clock.stamp())
                    else:
                        block = lines.finish(log.clock.stamp())
                        selector.unregister(fd)
                        del streams[fd]
                    if block:
                        log.write(block)
                elif fd == pidfd:
                    exited = True
                    selector.unregister(pidfd)
                else:
                    self.signals.drain()
        for lines in streams.values():  # held open by a process that left the group
            block = lines.finish(log.clock.stamp())
            if block:
                log.write(block)
        return stop


class _Group:
    """A command's process group being stopped: SIGTERM, then SIGKILL once
    the grace has passed, until none of it is left."""

    def __init__(self, pgid: int, grace: float) -> None:
        self.pgid = pgid
        self.grace = grace
        self.kill_at: float | None = None  # set once SIGTERM is sent
        self.next_look = 0.0
        self.gone = False

    def terminate(self, now: float) -> None:
        if self.kill_at is None:
            _signal_group(self.pgid, signal.SIGTERM)
            self.kill_at = now + self.grace
            self.next_look = now + POLL / 10  # most processes die at once: look again soon

    def watch(self, now: float) -> None:
        """Look at the group (at most every POLL seconds) and act on what is left.

        Called once the leader has exited (whatever is left was left
        behind, as systemd would stop it at the end of a unit) or once the
        group was told to terminate.
        """
        if self.gone or now < self.next_look:
            return
        self.next_look = now + POLL
        if not group_members(self.pgid):
            self.gone = True
        elif self.kill_at is None:
            self.terminate(now)
        elif now >= self.kill_at:
            _signal_group(self.pgid, signal.SIGKILL)
            self.gone = True


# -- random_delay ----------------------------------------------------------------
#
# On systemd hosts the timer waits (RandomizedDelaySec= with
# FixedRandomDelay=yes). Cron has no such setting, so a run started from the
# cron file (``run-job --job NAME --scheduled``) waits here first. As
# FixedRandomDelay=, the delay is drawn once per host and job, from the
# machine ID and the slug: each host starts a job at its own moment, the
# same moment every time, and a new cron file does not move it.

# Where systemd and D-Bus keep the machine ID; a cron host may have either
# (or neither: a container without one falls back to the host name).
MACHINE_ID_FILES = ("/etc/machine-id", "/var/lib/dbus/machine-id")


def machine_id() -> str:
    for path in MACHINE_ID_FILES:
        try:
            with open(path, encoding="ascii", errors="replace") as handle:
                value = handle.read().strip()
        except OSError:
            continue
        if value:
            return value
    import socket  # only a host without a machine ID

    return socket.gethostname()


def fixed_delay(slug: str, maximum: float, host: str) -> float:
    """Seconds from 0 up to (not including) ``maximum``, the same for the
    same host and job every time; spread evenly over hosts and jobs."""
    if maximum <= 0:
        return 0.0
    import hashlib  # only jobs with a random_delay

    digest = hashlib.sha256(f"process-control random_delay\0{host}\0{slug}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * maximum


def _wait(seconds: float) -> None:
    """A scheduled run's random_delay; SIGTERM ends it as it ends run-job
    (nothing has started, so nothing is recorded)."""
    time.sleep(seconds)


# -- run-job --job ---------------------------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def run_job(
    config: Config,
    job: Job,
    *,
    slow_start: bool = False,
    out: TextIO = sys.stdout,
    kill_grace: float = KILL_GRACE,
    scheduled: bool = False,
    raw: bool = False,
) -> int:
    """Run ``job`` once, here and now; the exit status for run-job.

    ``scheduled``: cron started it (``--scheduled``, written in the cron
    file for jobs with a ``random_delay``), so it first waits the job's
    fixed delay (:func:`fixed_delay`). The wait comes before the
    lock: a run is "overtime" when the previous one still runs at the
    moment this one would start, as without a delay, and a run by hand
    during the wait is not refused by a run that has not started.

    ``out`` gets one line per problem (a failure's reason, an unreadable
    history); a successful or skipped run prints nothing, so cron mails
    only failures. When ``out`` is a terminal it also shows the output,
    control characters shown as ``\\xNN`` unless ``raw``
    (:mod:`pc_systemd.core.terminal`).
    With a ``logging`` key, those lines and the run's progress also go to
    its ``process-control`` logger (see the module's doc).
    """
    own = OwnLog()

    def say(line: str) -> None:
        print(line, file=out, flush=True)
        own(LOG_ERROR, line)

    own = OwnLog.configure(config, say)

    wrong = wrong_user(config)
    if wrong is not None:
        say(f"run-job: {wrong}")
        return EXIT_UNUSABLE
    refused = priority_refusal(job)
    if refused is not None:
        say(f"run-job: {refused}")
        return EXIT_UNUSABLE
    commands = job.command
    if slow_start:
        if job.slow_start_command is None:
            say(f"run-job: {job.slug}: the job has no slow_start_command")
            return EXIT_UNUSABLE
        commands = job.slow_start_command
    if scheduled and job.random_delay > 0:
        seconds = fixed_delay(job.slug, job.random_delay * 60, machine_id())
        own(LOG_INFO, f"Waiting {seconds:.1f} s (random_delay) before job {job.name} ({job.slug})")
        _wait(seconds)
    history_file = hist.history_path(config.state_directory, job.slug)
    try:
        # Only the runner needs the locks; the histories' group may read them.
        make_dirs(config.run_directory, 0o700)
        make_dirs(config.state_directory, 0o750)
        job_lock = lock.acquire(lock.lock_path(config.run_directory, job.slug))
    except lock.LockHeld as held:
        return _not_run(config, job, held, history_file, say, own)
    except OSError as err:
        say(f"run-job: {err.filename}: {err.strerror}")
        return EXIT_UNUSABLE

    start = _now()
    entry = hist.Entry("started", start, start=start, pid=os.getpid())
    mirror = JobOutput.to(out.buffer, raw, True) if out.isatty() else None
    own(LOG_INFO, f"{'Slow starting' if slow_start else 'Running'} job {job.name} ({job.slug})")
    with job_lock, _Signals() as signals:
        _record(history_file, lambda h: h.started(entry), say)
        runner = _Run(
            job,
            signals,
            lambda: RunLog.create(config.output_directory, job.slug, start.timestamp(), mirror),
            kill_grace,
            own,
            (lambda: credentials.prepare(config.credentials_of(job.slug), job.credentials,
                                         config.run_directory, job.slug))
            if job.credentials else None,
        )
        try:
            outcome = _attempts(runner, commands, signals)
        finally:
            if runner.log is not None:
                runner.log.close()
            if runner.credentials is not None:
                credentials.remove(runner.credentials)
        log_path = runner.log.path if runner.log is not None else None
        # A file that could not be written is the log's problem, not the
        # job's: the run's outcome stays the job's own, as the original's.
        written = runner.log.problem if runner.log is not None else None
        log_problem = written or runner.open_problem
        end = _now()
        final = replace(
            entry,
            status="failed" if outcome.reason else "completed",
            time=end,
            end=end,
            code=outcome.code,
            reason=outcome.reason,
            log=log_path,
            log_problem=log_problem[:hist.MAX_TEXT] if log_problem is not None else None,
        )
        recorded = _record(history_file, lambda h: h.finished(final), say)
    after_run(config, job, say)
    if outcome.reason is not None:
        say(outcome.reason)
    if written is not None:  # one line, which cron mails even after a success
        say(f"run-job: {job.slug}: {written}")
    if outcome.reason is None:
        own(LOG_INFO, f"Successfully completed {job.slug}.")
        return EXIT_OK
    failures = recorded.consecutive_failures if recorded is not None else 1
    on_failure(config, job, Failure(outcome.reason, log_path, failures, written), say)
    if outcome.terminated_by is not None:
        return 128 + outcome.terminated_by.value  # as a shell reports a signalled process
    return EXIT_FAILED


def _attempts(runner: _Run, commands: Sequence[Command], signals: _Signals) -> RunEnd:
    """The run: its first attempt and, with ``retry``, up to ``attempts``
    more after a failed one (a timeout included; not one stopped by a
    signal), each after its delay, all within the run's lock. Only the
    last attempt's outcome is the run's: nothing is printed for the others
    (cron mails what is printed); the log file and run-job's own log
    mark each attempt."""
    job = runner.job
    outcome = runner.run(commands)
    if job.retry is None:
        return outcome
    total = job.retry.attempts + 1
    for number in range(2, total + 1):
        if outcome.reason is None or outcome.terminated_by is not None:
            break
        wait = job.retry.wait(number - 1)
        _note(runner, f"----------- attempt {number - 1} of {total} failed: {outcome.reason};"
                      f" attempt {number} in {wait:g} s")
        if _sleep(wait, signals):
            return runner.terminated(outcome.code)
        _note(runner, f"----------- attempt {number} of {total}")
        outcome = runner.run(commands)
    return outcome


def _note(runner: _Run, text: str) -> None:
    runner.own(LOG_INFO, text.removeprefix("----------- "))
    if runner.log is not None:
        runner.log.line(INFO, text)


def _sleep(seconds: float, signals: _Signals) -> bool:
    """Wait between attempts; True if SIGTERM or SIGINT came meanwhile."""
    deadline = time.monotonic() + seconds
    while signals.received is None:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if signals.wakeup is not None:
            with selectors.DefaultSelector() as selector:
                selector.register(signals.wakeup, selectors.EVENT_READ)
                selector.select(left)
            signals.drain()
        else:
            time.sleep(min(left, POLL))
    return True


def _not_run(
    config: Config, job: Job, held: lock.LockHeld, history_file: str,
    say: Callable[[str], None], own: OwnLog,
) -> int:
    """Another run holds the lock: skipped under allow_overtime, else failed."""
    who = f"pid {held.pid}" if held.pid is not None else "another process"
    now = _now()
    if job.allow_overtime:
        reason = f"{job.name} skipped: the previous run ({who}) is still running"
        entry = hist.Entry("skipped", now, start=now, end=now, pid=os.getpid(), reason=reason)
        _record(history_file, lambda h: h.finished(entry), say)
        after_run(config, job, say)
        own(LOG_INFO, reason)
        return EXIT_OK
    reason = f"{job.name} not started: the previous run ({who}) is still running"
    entry = hist.Entry("failed", now, start=now, end=now, pid=os.getpid(), reason=reason)
    recorded = _record(history_file, lambda h: h.finished(entry), say)
    after_run(config, job, say)
    say(reason)
    failures = recorded.consecutive_failures if recorded is not None else 1
    on_failure(config, job, Failure(reason, None, failures), say)
    return EXIT_FAILED


def _record(
    path: str, change: Callable[[hist.History], hist.History], say: Callable[[str], None]
) -> hist.History | None:
    """Update the history; a history that cannot be written is reported,
    and the job runs (or its outcome counts) all the same."""
    try:
        return hist.update(path, change, lambda message: say(f"run-job: {message}"))
    except OSError as err:
        say(f"run-job: cannot write the run history {path}: {err.strerror or err}")
        return None


# -- status, kill, logs ----------------------------------------------------------


def last_log(config: Config, job: Job) -> str | None:
    """The newest per-run log file of ``job``."""
    return newest_log(config.output_directory, job.slug)


def job_state(config: Config, slug: str) -> JobState:
    try:
        held = lock.holder(lock.lock_path(config.run_directory, slug))
    except OSError:
        held = None
    problem = None
    try:
        history = hist.load(hist.history_path(config.state_directory, slug),
                            service_uid(config.user))
    except hist.HistoryError as err:
        problem = f"unreadable run history: {err}"
        history = hist.History()
    last = history.last_finished()
    return JobState(
        running=held is not None,
        pid=held.pid if held is not None else None,
        last_status=history.last_completion_status,
        last_start=last.start if last is not None else None,
        last_end=last.end if last is not None else None,
        last_duration=last.duration if last is not None else None,
        consecutive_failures=history.consecutive_failures,
        last_log=newest_log(config.output_directory, slug),
        problem=problem,
        last_reason=last.reason if last is not None else None,
        log_problem=last.log_problem if last is not None else None,
    )


def log_notes(config: Config, slug: str, shown: str | None, newest: bool) -> list[str]:
    """What the run history says of the log file ``shown`` (None: there is
    none to show): why it misses output; and with ``newest``, when the last
    run has no file of its own, why (a file shown then is an older run's)."""
    try:
        history = hist.load(hist.history_path(config.state_directory, slug),
                            service_uid(config.user))
    except hist.HistoryError:
        return []  # status says why
    notes = []
    for entry in reversed(history.entries) if shown is not None else ():
        if entry.log == shown:
            if entry.log_problem:
                notes.append(entry.log_problem)
            break
    last = history.last_finished()
    if newest and last is not None and last.log is None and last.log_problem:
        started = (f" (started {last.start.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC)"
                   if last.start is not None else "")
        notes.append(f"the last run{started}: {last.log_problem}")
    return notes


def kill_job(config: Config, job: Job) -> tuple[int, str]:
    """SIGTERM the running run-job of ``job``, which stops its command's
    process group and records the run as terminated."""
    # Root may stop any run; anyone else would only meet a permission
    # error on the run directory (0700): say instead how to do it.
    wrong = wrong_user(config, also_root=True)
    if wrong is not None:
        return EXIT_UNUSABLE, f"run-job: {wrong}"
    path = lock.lock_path(config.run_directory, job.slug)
    not_running = (EXIT_FAILED, f"{job.name} ({job.slug}) is not running")
    try:
        held = lock.holder(path)
    except OSError as err:
        return EXIT_UNUSABLE, f"run-job: {path}: {err.strerror}"
    if held is None:
        return not_running
    if held.pid is None:
        return EXIT_FAILED, f"{job.name} ({job.slug}) is just starting; try again"
    try:
        pidfd = os.pidfd_open(held.pid)
    except ProcessLookupError:
        return not_running
    try:
        # The pidfd pins the process: if the lock is still held by that PID
        # now, the signal reaches the run, never a process that got its PID.
        again = lock.holder(path)
        if again is None or again.pid != held.pid:
            return not_running
        signal.pidfd_send_signal(pidfd, signal.SIGTERM)
    except ProcessLookupError:
        return not_running
    except PermissionError:
        return EXIT_UNUSABLE, f"run-job: not allowed to signal pid {held.pid} of {job.slug}"
    finally:
        os.close(pidfd)
    return EXIT_OK, f"{job.name} ({job.slug}): sent SIGTERM to run-job (pid {held.pid})"
