"""``run-job --status`` on systemd hosts: each job's state, last and next
run, from systemd.

Asked in as few round trips as the data allows, since a host may have a
thousand jobs: one ``ListUnitsByPatterns`` gives every loaded unit's state;
then single properties only where they say something (the start and end of
units that have run, the PID of running ones, the reason of failed ones,
the next elapse of active timers). systemd forgets a unit that is
inactive, unreferenced and did not fail (a job without a timer, after a
successful run); the last run of those, and of running ones (whose
``Result`` is reset at start), comes from the journal in one reading.

Which units exist at all is read from the generator's output directory:
``ListUnitFilesByPatterns`` would say the same, but systemd works out
every unit file's enablement for it (half a second for 2,000 units).

What systemd said that cannot have changed is remembered between calls
(:mod:`pc_systemd.systemd.status_memo`): timers' next elapse, and when an inactive service's
last run ended.  Running and failed units are always asked about.
"""

from __future__ import annotations

import datetime as dt
import os
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pc_systemd.model.jobinfo import JobInfo, LastRun, State, Summary, timestamp
from pc_systemd.systemd.bus import (
    SERVICE_IFACE,
    TIMER_IFACE,
    UNIT_IFACE,
    Request,
    UnitRow,
    get_many,
    systemd,
)
from pc_systemd.systemd.status_memo import (
    GENERATED,
    PREFIX,
    SLOW,
    StatusMemo,
    generated_restarts,
)
from pc_systemd.systemd.unit_result import RUNNING, outcome

if TYPE_CHECKING:  # the annotation only: journal is imported where it is read
    from pc_systemd.systemd import journal

PATTERN = PREFIX + "*"
# Where systemd has the generator write (systemd.generator(7): the "normal" directory).


@dataclass(frozen=True)
class UnitState:
    """What systemd holds about one service unit of a job."""

    name: str
    loaded: bool
    active: str = "inactive"
    pid: int | None = None
    started: int = 0  # InactiveExitTimestamp, usec
    ended: int = 0  # InactiveEnterTimestamp, usec (of the last run, once it ended)
    result: str | None = None  # Result, read for failed units only
    main_code: int = 0
    main_status: int = 0

    @property
    def running(self) -> bool:
        return self.active in RUNNING


@dataclass(frozen=True)
class View:
    """systemd's side of the listing, by unit name."""

    services: dict[str, UnitState] = field(default_factory=dict)
    files: frozenset[str] = frozenset()  # units with a unit file (generated ones)
    next_elapse: dict[str, int] = field(default_factory=dict)  # timer -> usec
    journal_runs: dict[str, journal.Run] = field(default_factory=dict)
    journal_problem: str | None = None


_EXIT = (UNIT_IFACE, b"InactiveExitTimestamp", b"t")
_ENTER = (UNIT_IFACE, b"InactiveEnterTimestamp", b"t")
_PID = (SERVICE_IFACE, b"MainPID", b"u")
# Between commands of a list, or while systemd stops a run, there may be
# no main process: the control process's PID is the run's.
_CONTROL_PID = (SERVICE_IFACE, b"ControlPID", b"u")
_FAILURE = ((SERVICE_IFACE, b"Result", b"s"), (SERVICE_IFACE, b"ExecMainCode", b"i"),
            (SERVICE_IFACE, b"ExecMainStatus", b"i"))
_NEXT = (TIMER_IFACE, b"NextElapseUSecRealtime", b"t")


def _requests(row: UnitRow) -> list[Request]:
    """First round: what to read of one loaded unit."""
    if row.name.endswith(".timer"):
        return [(row.path, *_NEXT)] if row.active_state == "active" else []
    if row.active_state in RUNNING:
        return [(row.path, *_EXIT), (row.path, *_PID), (row.path, *_CONTROL_PID)]
    if row.active_state == "failed":
        return [(row.path, *_EXIT), (row.path, *_ENTER), *((row.path, *f) for f in _FAILURE)]
    return [(row.path, *_EXIT)]  # its end only if it has run: a second round


def _generated() -> frozenset[str]:
    try:
        return frozenset(n for n in os.listdir(GENERATED) if n.startswith(PREFIX))
    except OSError:
        return frozenset()


def _ours(name: str) -> bool:
    """A job's unit: not our reload units, nor our templates and their
    instances (mail, file check: a slug has no ``@``)."""
    return (name.endswith((".service", ".timer")) and not name.startswith(PREFIX + "reload")
            and "@" not in name)


def collect() -> View:
    """Ask systemd (and, where it has forgotten, the journal) about the
    units, less what cannot have changed since the last call
    (:mod:`pc_systemd.systemd.status_memo`). Raises BusError."""
    with systemd(private=True) as sd:
        rows = [r for r in sd.list_units(PATTERN) if r.load_state == "loaded" and _ours(r.name)]
    files = _generated()
    memo = StatusMemo(GENERATED)
    # Timers whose next elapse is remembered need no question.
    known = {r.name: memo.get(r.name, "active") for r in rows if _timer_memo(r, files)}
    loaded = {r.name: r for r in rows}
    forgotten = [
        name for name in sorted(files)
        if name.endswith(".service") and _ours(name)
        and (name not in loaded or loaded[name].active_state in RUNNING)
    ]
    reading: journal.LastRuns | nullcontext[None] = nullcontext()
    if forgotten:
        from pc_systemd.systemd.journal import LastRuns  # only then: journal costs ~7 ms of imports

        restarts = generated_restarts()
        reading = LastRuns(forgotten, frozenset(u for u in forgotten if restarts(u)))
    with reading as from_journal:  # its own process, meanwhile
        asked = [(row, _requests(row) if known.get(row.name) is None else []) for row in rows]
        values = iter(get_many([r for _row, requests in asked for r in requests]))
        first = {row.name: [next(values) for _ in requests] for row, requests in asked}
        # An inactive service that has run: when did that run end?
        ends: dict[str, Any] = {}
        ask: list[UnitRow] = []
        for row in rows:
            started = _started(first[row.name])
            if _inactive_service(row) and started:
                remembered = memo.get(row.name, "inactive", started)
                if remembered is not None:
                    (ends[row.name],) = remembered
                else:
                    ask.append(row)
        for row, end in zip(ask, get_many([(r.path, *_ENTER) for r in ask]), strict=True):
            ends[row.name] = end
            memo.put(row.name, "inactive", [end], _started(first[row.name]))
        found, problem = from_journal.result() if from_journal is not None else ({}, None)
    # Loaded but not run since boot (a timer's service after a reboot): the
    # last run is from before, in the persistent journal.
    unrun = [r.name for r in rows if _inactive_service(r) and not _started(first[r.name])
             and r.name not in found]
    if unrun:
        earlier, problem_before = _runs_before_boot(unrun)
        found = {**found, **earlier}
        problem = problem or problem_before
    services: dict[str, UnitState] = {}
    next_elapse: dict[str, int] = {}
    for row in rows:
        name, active = row.name, row.active_state
        if name.endswith(".timer"):
            got = known.get(name) or first[name]
            if known.get(name) is None and got and name in files:
                memo.put(name, "active", got)
            if got:
                (elapse,) = got
                next_elapse[name] = int(elapse)
            continue
        got = first[name]
        if active in RUNNING:
            started, pid, control_pid = map(int, got)
            services[name] = UnitState(name, True, active, pid=pid or control_pid or None,
                                       started=started)
        elif active == "failed":
            started, ended, result, main_code, main_status = got
            services[name] = UnitState(name, True, active, started=int(started),
                                       ended=int(ended), result=str(result),
                                       main_code=int(main_code), main_status=int(main_status))
        elif _started(got):
            services[name] = UnitState(name, True, active, started=_started(got),
                                       ended=int(ends[name]), result="success")
        else:
            services[name] = UnitState(name, True, active)
    memo.save()
    return View(services, files, next_elapse, dict(found), problem)


def _runs_before_boot(units: list[str]) -> tuple[dict[str, journal.Run], str | None]:
    from pc_systemd.systemd import journal  # only then (see collect)

    restarts = generated_restarts()
    try:
        return journal.last_runs(units, frozenset(u for u in units if restarts(u))), None
    except journal.JournalError as err:
        return {}, str(err)


def _timer_memo(row: UnitRow, files: frozenset[str]) -> bool:
    """Whether a row's value may be remembered: an active timer that has a
    generated file."""
    return row.name.endswith(".timer") and row.active_state == "active" and row.name in files


def _started(got: list[Any]) -> int:
    """A service's InactiveExitTimestamp, the first value read of it (0: never ran)."""
    return int(got[0]) if got else 0


def _inactive_service(row: UnitRow) -> bool:
    return row.name.endswith(".service") and row.active_state not in RUNNING | {"failed"}


def _last_from_unit(summary: Summary, state: UnitState) -> LastRun | None:
    if state.running or not state.started or state.result is None:
        return None
    name = summary.name or summary.slug
    done = outcome(name, state.result, state.main_code, state.main_status, summary.timeout)
    return LastRun(done.status, timestamp(state.started), timestamp(state.ended), done.reason,
                   state.name)


def _newest(runs: list[LastRun]) -> LastRun | None:
    known = [r for r in runs if r.start is not None]
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    return max(known, key=lambda r: r.start or epoch, default=None)


def job_info(summary: Summary, view: View) -> JobInfo:
    if not summary.valid:
        return JobInfo(summary, State.INVALID)
    main = PREFIX + summary.slug + ".service"
    slow = PREFIX + summary.slug + SLOW
    timer = PREFIX + summary.slug + ".timer"
    if summary.refused and main not in view.files:
        return JobInfo(summary, State.REFUSED)
    if main not in view.files and main not in view.services:
        return JobInfo(summary, State.NOT_GENERATED,
                       note="no unit yet: run `run-job --reload`")
    name = summary.name or summary.slug
    lasts: list[LastRun] = []
    running: UnitState | None = None
    for unit in (main, slow):
        state = view.services.get(unit)
        if state is not None and state.running:
            running = state
        last = _last_from_unit(summary, state) if state is not None else None
        if last is not None:
            lasts.append(last)
        elif unit in view.journal_runs:
            lasts.append(view.journal_runs[unit].last_run(name, summary.timeout))
    last = _newest(lasts)
    if running is not None:
        state_ = State.RUNNING
    elif last is not None and last.status == "failure":
        state_ = State.FAILED
    elif summary.disabled:
        state_ = State.DISABLED
    else:
        state_ = State.IDLE
    return JobInfo(
        summary, state_,
        pid=running.pid if running is not None else None,
        since=timestamp(running.started) if running is not None else None,
        last_run=last,
        next_run=timestamp(view.next_elapse.get(timer, 0)),
        note=view.journal_problem,
    )
