"""``run-job --list-jobs`` and ``--status``: every job file (:mod:`pc_systemd.views.catalog`)
joined with what the backend knows of it (:mod:`pc_systemd.systemd.status` or the
direct runner's lock and history), as :class:`~.jobinfo.JobInfo`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pc_systemd.model.config import Config
from pc_systemd.model.jobinfo import JobInfo, LastRun, State, Summary
from pc_systemd.views.catalog import Catalog, read_catalog

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
    infos = tuple(systemd_status.job_info(s, view) for s in catalog.summaries)
    return Listing("systemd", catalog, infos)


def direct_listing(config: Config) -> Listing:
    from pc_systemd.cron import direct  # not on systemd hosts (~20 ms of imports)

    catalog, _ = read_catalog(config, lambda: None)
    infos = []
    for summary in catalog.summaries:
        if not summary.valid:
            infos.append(JobInfo(summary, State.INVALID))
            continue
        infos.append(_direct_info(summary, direct.job_state(config, summary.slug)))
    return Listing("direct", catalog, tuple(infos))


def _direct_info(summary: Summary, state: JobState) -> JobInfo:
    last = None
    if state.last_status != "unknown" or state.last_start is not None:
        last = LastRun(state.last_status, state.last_start, state.last_end)
    if state.running:
        kind = State.RUNNING
    elif state.last_status == "failure":
        kind = State.FAILED
    elif summary.disabled:
        kind = State.DISABLED
    else:
        kind = State.IDLE
    return JobInfo(summary, kind, pid=state.pid if state.running else None, last_run=last,
                   note=state.problem)
