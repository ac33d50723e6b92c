"""``run-job --list-jobs`` and ``--status``: every job file (:mod:`pc_systemd.views.catalog`)
joined with what the backend knows of it (:mod:`pc_systemd.systemd.status` or the
direct runner's lock and history), as :class:`~.jobinfo.JobInfo`."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pc_systemd.model.config import Config
from pc_systemd.model.jobinfo import JobInfo, LastRun, State, Summary
from pc_systemd.views.catalog import Catalog, read_catalog
from pc_systemd.views.holding import Holds, with_holds

if TYPE_CHECKING:  # the annotation only: systemd hosts never import the direct runner
    from pc_systemd.cron.direct import JobState


@dataclass(frozen=True)
class Listing:
    backend: str
    catalog: Catalog
    infos: tuple[JobInfo, ...]


def names(config: Config) -> Catalog:
    """Only the job files (``--list-jobs`` without ``--only-running``)."""
    catalog, _ = read_catalog(config, lambda: None)
    return catalog


def systemd_listing(config: Config) -> Listing:
    """Raises BusError when systemd cannot be asked."""
    from pc_systemd.systemd import status as systemd_status  # not on cron hosts (~13 ms of imports)

    catalog, view = read_catalog(config, lambda: systemd_status.collect())
    infos = with_holds(_with_file_notes([systemd_status.job_info(s, view)
                                         for s in catalog.summaries]), Holds.read(config))
    return Listing("systemd", catalog, infos)


def _with_file_notes(infos: list[JobInfo]) -> list[JobInfo]:
    """A failed ``logging: file`` job's note says what its last run recorded
    about its file (:mod:`pc_systemd.systemd.filelog_notes`): why it could
    not be made, or that its file system was full, which only the job saw."""
    runs = {i.last_run.unit: i.last_run.start for i in infos
            if i.state is State.FAILED and i.summary.logging == "file" and i.last_run
            and i.last_run.unit and i.last_run.start}
    if not runs:
        return infos
    from pc_systemd.systemd import filelog_notes, journal  # failed file-logged jobs only
    from pc_systemd.systemd.units import filecheck_name

    starts = {unit: filelog_notes.usec(start) for unit, start in runs.items()}
    checks = {unit: filecheck_name(i.summary.slug) for i in infos
              if i.last_run is not None and (unit := i.last_run.unit) in starts}
    try:
        notes = filelog_notes.read(sorted({*starts, *checks.values()}), min(starts.values()))
    except journal.JournalError:
        return infos  # status says what systemd says; the journal is a detail
    out = []
    for info in infos:
        unit = info.last_run.unit if info.last_run is not None else None
        said = (filelog_notes.of_run(notes, {unit, checks[unit]}, starts[unit])[-3:]
                if unit is not None and unit in starts else [])
        if said:
            note = "; ".join([*([info.note] if info.note else []), *said])
            info = dataclasses.replace(info, note=note)
        out.append(info)
    return out


def direct_listing(config: Config) -> Listing:
    from pc_systemd.cron import direct  # not on systemd hosts (~20 ms of imports)

    catalog, _ = read_catalog(config, lambda: None)
    now = dt.datetime.now(dt.UTC)
    local: list[dt.tzinfo] = []  # the host's zone, read once if a job needs it
    infos = []
    failures: dict[str, int] = {}
    for summary in catalog.summaries:
        if not summary.valid:
            infos.append(JobInfo(summary, State.INVALID))
            continue
        state = direct.job_state(config, summary.slug)
        failures[summary.slug] = state.consecutive_failures
        info = _direct_info(summary, state)
        infos.append(dataclasses.replace(info, next_run=next_cron_run(summary, now, local)))
    held = with_holds(infos, Holds.read(config), failures)
    # a held job's cron line still fires, but the runner skips it: no next run
    held = tuple(dataclasses.replace(i, next_run=None) if i.hold else i for i in held)
    return Listing("direct", catalog, held)


def next_cron_run(
    summary: Summary, now: dt.datetime, local: list[dt.tzinfo] | None = None
) -> dt.datetime | None:
    """When cron next starts the job (None: unscheduled or disabled): its
    schedule with Debian cron's rules, DST changes included, in the host's
    local time zone (kept in ``local`` once read). Not in the job's
    ``timezone:``: the cron file has no zone (it stays the original's,
    byte for byte), so cron reads every schedule in the host's."""
    if not summary.scheduled or summary.schedule is None:
        return None
    from pc_systemd.model.schedule import ScheduleError, next_fire, parse_schedule

    local = local if local is not None else []
    if not local:
        local.append(_zone(None))
    zone = local[0]
    try:
        return next_fire(parse_schedule(summary.schedule), now, zone)
    except ScheduleError:  # a summary is from a validated file; this only guards a stale cache
        return None


def _zone(name: str | None) -> dt.tzinfo:
    """``name``, or the zone local times are in: ``TZ`` or ``/etc/localtime``
    (UTC without either, as the C library has it)."""
    import zoneinfo  # only cron hosts with scheduled jobs (~2 ms)

    name = name or os.environ.get("TZ", "").lstrip(":")
    try:
        if name:
            return zoneinfo.ZoneInfo(name)
        with open("/etc/localtime", "rb") as handle:
            return zoneinfo.ZoneInfo.from_file(handle, key="localtime")
    except (OSError, ValueError, zoneinfo.ZoneInfoNotFoundError):
        return dt.UTC


def _direct_info(summary: Summary, state: JobState) -> JobInfo:
    last = None
    if state.last_status != "unknown" or state.last_start is not None:
        last = LastRun(state.last_status, state.last_start, state.last_end, state.last_reason)
    if state.running:
        kind = State.RUNNING
    elif state.last_status == "failure":
        kind = State.FAILED
    elif summary.disabled:
        kind = State.DISABLED
    else:
        kind = State.IDLE
    notes = [state.problem] if state.problem else []
    # A run whose log file could not be opened says so in its reason already.
    if state.log_problem and state.log_problem not in (state.last_reason or ""):
        notes.append(f"the last run's log file misses output: {state.log_problem}")
    return JobInfo(summary, kind, pid=state.pid if state.running else None, last_run=last,
                   note="; ".join(notes) or None)
