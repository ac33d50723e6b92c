"""``run-job --job``, ``--kill-job`` and ``--logs`` on systemd hosts: the
job runs as its generated unit, started and watched over D-Bus
(:mod:`pc_systemd.systemd.bus`), its output followed in the journal
(:mod:`pc_systemd.systemd.journal`).

The unit's state and result come from systemd itself (``ActiveState``,
``Result``, ``ExecMainCode``, ``ExecMainStatus``), never from parsing
``systemctl`` text.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from types import FrameType
from typing import Any

from pc_systemd.model.errors import PcError, Problem
from pc_systemd.model.job import Job
from pc_systemd.systemd import journal, presence
from pc_systemd.systemd.bus import SERVICE_IFACE, UNIT_IFACE, Systemd, systemd
from pc_systemd.systemd.unit_result import CLD_NAMES, EXIT_FAILED, RUNNING, outcome
from pc_systemd.systemd.units import service_name, slow_start_name

EXIT_OK = 0
POLL = 0.1  # seconds between looks at the unit while it runs
STOP_WAIT = 120.0  # longest wait for a stopped unit to be gone (TimeoutStopSec= plus cleanup)
# How long `logs` waits for journald to store the last run's output
# (seconds); `run` and `logs --follow`, which show its lines as they come,
# as long as a new line came within that time, up to FOLLOW_LIMIT.
SETTLE_BOUND = 20.0
FOLLOW_LIMIT = 120.0
SETTLE_WITHIN = 600.0  # ... the last run's, if it ended less than this long ago

Say = Callable[[str], None]


class RunError(PcError):
    """run-job cannot do what was asked; one line, exit status 2."""

    def __init__(self, message: str) -> None:
        super().__init__([Problem("run-job", 0, "job", message)])

    def __str__(self) -> str:
        return self.problems[0].message


def unit_of(job: Job, slow_start: bool) -> str:
    if not slow_start:
        return service_name(job.slug)
    if job.slow_start_command is None:
        raise RunError(f"{job.slug}: the job has no slow_start_command")
    return slow_start_name(job.slug)


def not_generated(unit: str) -> RunError:
    if presence.installed() is not None:  # the package's, or run-job --install-generator's
        how = "run `run-job --reload` to generate them"
    else:
        how = "install the generator with `run-job --install-generator`"
    return RunError(f"systemd has no unit {unit} (units not generated yet): {how}")


def _loaded_path(sd: Systemd, unit: str) -> bytes:
    path = sd.load_unit(unit)
    if sd.get(path, UNIT_IFACE, b"LoadState", b"s") != b"loaded":
        raise not_generated(unit)
    return path


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class _Look:
    """The unit, as seen at one moment."""

    active: str
    job_id: int
    started: int  # InactiveExitTimestamp: when the current or last run started (usec)

    @classmethod
    def take(cls, sd: Systemd, path: bytes) -> _Look:
        job_id, _job_path = sd.get(path, UNIT_IFACE, b"Job", b"(uo)")
        return cls(
            _text(sd.get(path, UNIT_IFACE, b"ActiveState", b"s")),
            int(job_id),
            int(sd.get(path, UNIT_IFACE, b"InactiveExitTimestamp", b"t")),
        )

    @property
    def running(self) -> bool:
        return self.active in RUNNING

    @property
    def done(self) -> bool:
        return self.job_id == 0 and not self.running


def _invocation(sd: Systemd, path: bytes) -> str | None:
    raw = sd.get(path, UNIT_IFACE, b"InvocationID", b"ay")
    return bytes(raw).hex() if raw else None


def _busy(job: Job, sd: Systemd, path: bytes, say: Say) -> int:
    """Another run is going: skipped under allow_overtime, else failed (as the original)."""
    pid = int(sd.get(path, SERVICE_IFACE, b"MainPID", b"u")) or int(
        sd.get(path, SERVICE_IFACE, b"ControlPID", b"u"))
    who = f"pid {pid}" if pid else "another run"
    if job.allow_overtime:
        say(f"{job.name} skipped: the previous run ({who}) is still running")
        return EXIT_OK
    say(f"{job.name} not started: the previous run ({who}) is still running")
    return EXIT_FAILED


class _Interrupts:
    """SIGINT/SIGTERM while following a run stop the unit (as they stopped
    the original's job), instead of leaving it running unwatched."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _Interrupts:
        with contextlib.suppress(ValueError):  # not the main thread: leave handling alone
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = signum

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def brokered() -> bool:
    """Whether systemd is asked through the broker (everyone but root: the
    developer group has no systemd permission of its own)."""
    return os.geteuid() != 0


class _Control:
    """What run-job asks systemd to do to a unit it follows. Root: systemd
    itself, over the connection that reads the unit."""

    def __init__(self, sd: Systemd, path: bytes, job: Job, slow_start: bool) -> None:
        self.sd = sd
        self.path = path
        self.job = job
        self.unit = unit_of(job, slow_start)

    def hold(self) -> None:
        """Keep systemd from forgetting the unit (and its result) while it
        is followed: an unreferenced unit that ran successfully is
        unloaded at once."""
        self.sd.ref_unit(self.path)

    def start(self) -> None:
        self.hold()
        if self.job.retry is not None:
            # The start limit ends the attempts (model.retry.StartLimit): a
            # run by hand gets all of its own, whatever runs came before.
            self.sd.reset_failed(self.unit)
        self.sd.start_unit(self.unit)

    def stop(self) -> None:
        self.sd.stop_unit(self.unit)

    def close(self) -> None:
        """The reference ends with the connection."""


class _Brokered(_Control):
    """A member: the broker references, starts and stops the unit, and holds
    its reference while the connection to it lasts (pc_systemd.broker)."""

    def __init__(self, sd: Systemd, path: bytes, job: Job, slow_start: bool,
                 early: Any = None) -> None:
        super().__init__(sd, path, job, slow_start)
        self.slow_start = slow_start
        self.connection: Any = early

    def _ask(self, op: str) -> None:
        from pc_systemd.systemd.broker_client import Connection  # members only
        from pc_systemd.systemd.broker_protocol import Request

        if self.connection is None:
            self.connection = Connection()
        self.connection.send(Request(op, job=self.job.slug, slow_start=self.slow_start))
        self.connection.ready()

    def hold(self) -> None:
        self._ask("watch")

    def start(self) -> None:
        self._ask("run")

    def stop(self) -> None:
        if self.connection is not None:
            self.connection.stop()

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


def _control(sd: Systemd, path: bytes, job: Job, slow_start: bool,
             early: Any = None) -> _Control:
    if brokered():
        return _Brokered(sd, path, job, slow_start, early)
    return _Control(sd, path, job, slow_start)


def _early() -> Any:
    """A member's connection to the broker, made first: systemd starts the
    broker's process while run-job looks at the unit and starts following
    its journal (the request goes once the run may start)."""
    if not brokered():
        return None
    from pc_systemd.systemd.broker_client import Connection  # members only

    return Connection()


def run(job: Job, *, slow_start: bool, show: Say, say: Say) -> int:
    """Start the job's unit, show its output as it runs, return its exit status.

    ``show`` gets the job's output lines, ``say`` run-job's own messages
    (the one-line reason of a failure). Raises RunError and BusError.
    """
    unit = unit_of(job, slow_start)
    early = _early()
    with systemd() as sd:
        try:
            path = _loaded_path(sd, unit)
            busy = _Look.take(sd, path).running
        except BaseException:
            if early is not None:
                early.close()  # no request: the broker ends without one
            raise
        if busy:
            if early is not None:
                early.close()
            # A start of a running oneshot would wait for it, silently.
            return _busy(job, sd, path, say)
        control = _control(sd, path, job, slow_start, early)
        try:  # the reference lasts until the run's end is read
            asked = time.time_ns() // 1000
            follower = journal.Follower(unit, asked)
            attempts = _Attempts(job, say)
            try:
                with _Interrupts() as interrupts:
                    control.start()
                    look, others = _follow(sd, path, follower, show, interrupts, control,
                                           asked, attempts)
                _finish(follower, job, slow_start, look.started >= asked, show, say)
                attempts.printed(follower)  # the last lines may name the last attempt
            finally:
                follower.close()
            if look.started < asked:
                if others:
                    # Another run began between our look and our start, and the
                    # start merged into it: it was not this run.
                    return _busy_after(job, say)
                say(f"run-job: systemd did not start {unit} (see journalctl -u {unit})")
                return EXIT_FAILED
            result, code, status = _ended(sd, path)
            main_start = int(sd.get(path, SERVICE_IFACE, b"ExecMainStartTimestamp", b"t"))
        finally:
            control.close()
    if main_start < asked and result == "success":
        # Stopped before its main process started (while systemd set the
        # unit up): systemd calls a requested stop a success, but the job's
        # command never ran.
        say(f"{job.name} was stopped before its command started")
        return EXIT_FAILED
    return _said(job, result, code, status, say)


def _ended(sd: Systemd, path: bytes) -> tuple[str, int, int]:
    """How the unit's last run ended: systemd's Result, ExecMainCode, ExecMainStatus."""
    return (_text(sd.get(path, SERVICE_IFACE, b"Result", b"s")),
            int(sd.get(path, SERVICE_IFACE, b"ExecMainCode", b"i")),
            int(sd.get(path, SERVICE_IFACE, b"ExecMainStatus", b"i")))


def _said(job: Job, result: str, code: int, status: int, say: Say) -> int:
    """The run's exit status, its one-line reason said if it failed."""
    done = outcome(job.name, result, code, status, job.timeout)
    if done.reason is not None:
        say(done.reason)
    return done.exit_status


def _busy_after(job: Job, say: Say) -> int:
    if job.allow_overtime:
        say(f"{job.name} skipped: another run started at the same moment")
        return EXIT_OK
    say(f"{job.name} not started: another run started at the same moment")
    return EXIT_FAILED


class _Attempts:
    """The attempts of a job with ``retry``: systemd starts each anew
    (``Restart=``), under a new invocation ID, and the unit stays
    activating in between; each new one is announced, seen as the unit's
    invocation when run-job looks, or on the lines it printed (an attempt
    may begin and end between two looks)."""

    def __init__(self, job: Job, say: Say) -> None:
        self.job = job
        self.say = say
        self.seen: list[str] = []

    def printed(self, follower: journal.Follower) -> None:
        for tag in follower.tags:
            self.invocation(tag)

    def invocation(self, invocation: str | None) -> None:
        if self.job.retry is None or invocation is None or invocation in self.seen:
            return
        self.seen.append(invocation)
        if len(self.seen) > 1:
            total = self.job.retry.attempts + 1
            self.say(f"{self.job.name}: attempt {len(self.seen)} of {total}")


def _follow(
    sd: Systemd, path: bytes, follower: journal.Follower, show: Say,
    interrupts: _Interrupts, control: _Control, asked: int, attempts: _Attempts,
) -> tuple[_Look, bool]:
    """Show the output until the start job is done and, with ``retry``,
    until no attempt is left (the unit is no longer activating); the last
    look, and whether a run that began before ``asked`` (someone else's)
    was seen. With ``retry`` every attempt's output is shown: the follower
    takes every line of the unit since ``asked`` (runs never overlap, and
    none was running)."""
    stopping = False
    others = False
    while True:
        for line in follower.read(POLL):
            show(line)
        attempts.printed(follower)
        if interrupts.received is not None and not stopping:
            stopping = True
            control.stop()
        look = _Look.take(sd, path)
        if look.running and look.started < asked:
            others = True
        if look.running and attempts.job.retry is not None:
            attempts.invocation(_invocation(sd, path))
        elif follower.invocation is None and look.running:
            follower.invocation = _invocation(sd, path)
        if look.done:
            return look, others


def _finish(follower: journal.Follower, job: Job, slow_start: bool, ours: bool,
            show: Say, say: Say) -> None:
    """Show the rest of a run's output, once it has ended, waiting for
    journald to store it (for as long as lines come, up to FOLLOW_LIMIT);
    say so where the wait ended first. Not ``ours`` (another run began):
    no wait, as what the unit logs now is the other run's."""
    waiting = time.monotonic()
    if not follower.finish(show, SETTLE_BOUND if ours else 0.0, FOLLOW_LIMIT) and ours:
        then = f"run-job logs {job.slug}" + (" -w" if slow_start else "")
        say(still_arriving(then, time.monotonic() - waiting))


def stop(job: Job, say: Say, direct: bool = False) -> int:
    """``--kill-job``: stop the job's running unit(s), the whole control
    group (KillMode=control-group), and wait until they are gone. A member
    asks the broker, unless ``direct`` (the broker itself)."""
    if brokered() and not direct:
        from pc_systemd.systemd import broker_client as client  # members: the broker stops it
        from pc_systemd.systemd.broker_protocol import Request

        lines, code = client.ask(Request("kill", job=job.slug))
        for _error, line in lines:
            say(line)
        return code
    units = [service_name(job.slug)]
    if job.slow_start_command is not None:
        units.append(slow_start_name(job.slug))
    with systemd() as sd:
        rows = [row for row in sd.list_units(*units) if row.active_state in RUNNING]
        if not rows:
            say(f"{job.name} ({job.slug}) is not running")
            return EXIT_FAILED
        for row in rows:
            pid = int(sd.get(row.path, SERVICE_IFACE, b"MainPID", b"u"))
            sd.stop_unit(row.name)
            deadline = time.monotonic() + STOP_WAIT
            while not _Look.take(sd, row.path).done:
                if time.monotonic() > deadline:
                    say(f"{job.name} ({job.slug}): {row.name} is still stopping")
                    return EXIT_FAILED
                time.sleep(POLL)
            what = f" (pid {pid})" if pid else ""
            say(f"{job.name} ({job.slug}): stopped {row.name}{what}")
    return EXIT_OK


def is_running(job: Job, slow_start: bool) -> bool:
    unit = unit_of(job, slow_start)
    with systemd() as sd:
        return _Look.take(sd, _loaded_path(sd, unit)).running


def follow(job: Job, *, slow_start: bool, show: Say, say: Say) -> int | None:
    """``logs --follow``: the running run's output from its start, as it
    is logged, until the run ends; its exit status then, as :func:`run`
    gives it. None when the unit is not running (the caller shows the
    last run). An interrupt stops following, never the run."""
    unit = unit_of(job, slow_start)
    with systemd() as sd:
        path = _loaded_path(sd, unit)
        look = _Look.take(sd, path)
        if not look.running:
            return None
        control = _control(sd, path, job, slow_start)
        try:  # the reference lasts until the run's end is read
            control.hold()
            follower = journal.Follower(unit, look.started)
            follower.invocation = _invocation(sd, path)
            started = look.started
            try:
                with _Interrupts() as interrupts:
                    while interrupts.received is None:
                        for line in follower.read(POLL):
                            show(line)
                        look = _Look.take(sd, path)
                        if look.done or look.started != started:
                            break
                    if interrupts.received is not None:
                        return 128 + interrupts.received
                _finish(follower, job, slow_start, look.started == started, show, say)
            finally:
                follower.close()
            if look.started != started:
                say(f"{job.name}: another run has begun")
                return EXIT_OK
            result, code, status = _ended(sd, path)
        finally:
            control.close()
    return _said(job, result, code, status, say)


# -- logs ------------------------------------------------------------------------


@dataclass(frozen=True)
class RunLog:
    number: int  # 1 = the oldest run in the journal
    count: int
    run: journal.Run
    lines: Iterator[str]
    arriving: bool = False  # journald was still storing its output when we gave up waiting
    deleted: bool = False  # it began before the oldest output journald still keeps


def logs(job: Job, *, slow_start: bool, which: int) -> RunLog:
    """The output of one run: ``which`` -1 is the last (or the running
    one), -2 the one before; 1 the oldest the journal still has."""
    unit = unit_of(job, slow_start)
    found = journal.runs(unit, restarts=job.retry is not None)
    if not found:
        raise RunError(f"{job.slug}: {unit} has no runs in the journal")
    index = which - 1 if which > 0 else len(found) + which
    if which == 0 or not 0 <= index < len(found):
        raise RunError(
            f"{job.slug}: no run {which}: the journal has {len(found)} run(s) of {unit} "
            f"(use 1..{len(found)}, or -1 for the last)"
        )
    run_ = found[index]
    if run_.result is None and index == len(found) - 1:
        run_ = _ended_by_bus(unit, run_)
    following = found[index + 1] if index + 1 < len(found) else None
    end = following.start if following is not None else None
    # A run of several attempts (retry) is all of their output: every line
    # of the unit from the first attempt's start to the next run's.
    invocation = run_.invocation if run_.attempts == 1 else None
    arriving = False
    if following is None and run_.result is not None and _recent(run_.end):
        arriving = not journal.settle(unit, run_.start, run_.end, SETTLE_BOUND)
    return RunLog(index + 1, len(found), run_, journal.output(unit, invocation, run_.start, end),
                  arriving, journal.output_deleted(run_))


def _recent(end: int | None) -> bool:
    """Whether a run ended so lately that journald may still be storing its
    output (``end`` microseconds; None: not known)."""
    return end is None or time.time() - end / 1_000_000 < SETTLE_WITHIN


def _ended_by_bus(unit: str, run_: journal.Run) -> journal.Run:
    """The last run, known from its output only (a reader of the jobs'
    namespace but not of systemd's records, such as the developer group),
    with its end from systemd when it is over: a unit that failed keeps its
    result loaded; one that succeeded is unloaded, and loads again as
    ``success``."""
    with systemd() as sd:
        path = sd.load_unit(unit)
        if _Look.take(sd, path).running:
            return run_
        result, code, status = _ended(sd, path)
    names = {number: name for name, number in CLD_NAMES.items()}
    return replace(run_, result=result, exit_code=names.get(code), exit_status=status)


def describe_gaps(log: RunLog, shown: int) -> list[str]:
    """Lines for ``--logs`` after a run's output, where it is not all there:
    deleted by journald's retention, or still being stored."""
    notes = []
    if log.deleted:
        what = "its output (if it printed any)" if shown == 0 else "its first lines"
        notes.append(f"-- {what}: deleted from the journal (journald's retention, "
                     "/usr/lib/systemd/journald@process-control.conf.d)")
    if log.arriving:
        notes.append(still_arriving("run-job logs again"))
    return notes


def still_arriving(then: str, waited: float = SETTLE_BOUND) -> str:
    """The line that says journald had not stored all of a run's output
    when the wait for it ended, ``waited`` seconds after the run; ``then``:
    what shows the rest."""
    return (f"-- output still arriving: journald had not stored all of it "
            f"{waited:.0f} s after the run; {then} for the rest")


def describe_run(job: Job, log: RunLog) -> str:
    """A header for ``--logs``: which run, when, and how it ended."""
    last = log.run.last_run(job.name, job.timeout)
    start = last.start.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z") if last.start else "?"
    if last.status == "unknown":
        how = "running" if log.number == log.count else "end not recorded"
    else:
        how = last.reason or "success"
    tries = f" ({log.run.attempts} attempts)" if log.run.attempts > 1 else ""
    return f"-- run {log.number} of {log.count} of {log.run.unit}, started {start}: {how}{tries}"

