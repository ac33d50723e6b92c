"""``check-jobs-icinga``: the state of every job, as a Nagios/Icinga plugin.

As the original: ``JOBS OK`` and exit 0, or ``FAILING JOBS: a, b`` and
exit 2 (CRITICAL) for the jobs whose last run failed. Beyond it, where the
original only left a comment that it should:

- a job file that does not load, or a history file that cannot be read,
  makes the job ``invalid``; a scheduled job whose last successful run is
  older than ``stale_after`` hours is ``stale``; either is a WARNING
  (exit 1): ``WARNING: invalid: a; stale: b``. CRITICAL outranks WARNING
  and then keeps the warnings after the failing jobs:
  ``FAILING JOBS: a; invalid: b; stale: c``.
- Nagios performance data after ``|``: ``ok=3 failing=1 running=0
  invalid=0 stale=0``. ``ok``, ``failing``, ``invalid`` and ``stale`` are
  exclusive (each job file in one of them, ``failing`` before ``stale``);
  ``running`` counts valid jobs running now, whatever their last run.
- a configuration or job directory that cannot be read is UNKNOWN (exit 3):
  ``UNKNOWN: <the problem>``.

A job is stale when ``stale_after`` is set, it is scheduled (not disabled),
and the time since its last successful run is longer. With no success in
its history the age counts from the oldest entry kept (a success, if
there was one, came before it), and with no history at all from when its
job file was last changed, so a job deployed a minute ago is not stale.

On cron hosts it reads only files: the history files and the direct
runner's lock files. On systemd hosts it asks systemd what
``run-job --status`` asks (the units over D-Bus, which any user may read;
the journal for units systemd has forgotten, where the caller may read
it), so it runs as an unprivileged monitoring user on both.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from pc_systemd.core.safe_open import service_uid
from pc_systemd.cron import history as hist
from pc_systemd.cron import lock
from pc_systemd.model import backend
from pc_systemd.model.config import Config, load_config
from pc_systemd.model.config_file import job_file_name
from pc_systemd.model.errors import PcError
from pc_systemd.model.job import Job
from pc_systemd.model.jobinfo import LastRun, State, Summary
from pc_systemd.model.jobset import job_files, load_jobs
from pc_systemd.systemd.units import service_name, slow_start_name
from pc_systemd.views.holding import Holds
from pc_systemd.views.listing import systemd_listing

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
SYSTEMD_UNITS = "/run/systemd/units"


@dataclass(frozen=True)
class Report:
    ok: tuple[str, ...] = ()
    failing: tuple[str, ...] = ()
    invalid: tuple[str, ...] = ()
    stale: tuple[str, ...] = ()
    running: tuple[str, ...] = ()
    stopped: tuple[str, ...] = ()  # by stop_after_failures: CRITICAL until reset
    # why invalid jobs do not run, where it is one line each: what the
    # generator refused (`path:line: key: problem`, as run-job validate says)
    reasons: tuple[str, ...] = ()

    @property
    def code(self) -> int:
        if self.failing or self.stopped:
            return CRITICAL
        return WARNING if self.invalid or self.stale else OK

    def perfdata(self) -> str:
        counts = (("ok", self.ok), ("failing", self.failing), ("running", self.running),
                  ("invalid", self.invalid), ("stale", self.stale))
        text = " ".join(f"{label}={len(slugs)}" for label, slugs in counts)
        return text + (f" stopped={len(self.stopped)}" if self.stopped else "")

    def line(self) -> str:
        warnings = [f"{label}: {', '.join(slugs)}"
                    for label, slugs in (("invalid", self.invalid), ("stale", self.stale))
                    if slugs]
        if self.reasons:
            warnings.insert(1, "refused by the generator: " + "; ".join(self.reasons))
        stopped = ([f"stopped after repeated failures: {', '.join(self.stopped)}"]
                   if self.stopped else [])
        if self.failing:
            text = "; ".join([f"FAILING JOBS: {', '.join(self.failing)}", *stopped, *warnings])
        elif stopped:
            text = "; ".join(["STOPPED JOBS: " + ", ".join(self.stopped), *warnings])
        elif warnings:
            text = "WARNING: " + "; ".join(warnings)
        else:
            text = "JOBS OK"
        return f"{text} | {self.perfdata()}"


def running(config: Config, slug: str) -> bool:
    """Whether a run of the job is going on, under either backend."""
    try:
        if lock.holder(lock.lock_path(config.run_directory, slug)) is not None:
            return True
    except OSError:
        pass
    return any(os.path.lexists(os.path.join(SYSTEMD_UNITS, f"invocation:{unit}"))
               for unit in (service_name(slug), slow_start_name(slug)))


def _stale(config: Config, job: Job, history: hist.History, now: dt.datetime) -> bool:
    if config.stale_after is None or not job.scheduled:
        return False
    success = next((e for e in reversed(history.entries) if e.status == "completed"), None)
    if success is not None:
        since = success.end or success.time
    elif history.entries:
        first = history.entries[0]
        since = first.start or first.time
    else:
        try:
            since = dt.datetime.fromtimestamp(os.stat(job.path).st_mtime, dt.UTC)
        except OSError:
            return False
    return now - since > dt.timedelta(hours=config.stale_after)


def check(config: Config, now: dt.datetime | None = None) -> Report:
    """Every job's state; raises OSError if the job directory cannot be read."""
    now = now or dt.datetime.now(dt.UTC)
    jobs = load_jobs(config, job_files(config), listed=True)
    ok: list[str] = []
    failing: list[str] = []
    stale: list[str] = []
    active: list[str] = []
    invalid = list(jobs.broken)
    stopped: list[str] = []
    owner = service_uid(config.user)  # a history of anyone else's is not read
    found = Holds.read(config)
    for job in jobs.jobs:
        try:
            history = hist.load(hist.history_path(config.state_directory, job.slug), owner)
        except hist.HistoryError:
            invalid.append(job.slug)
            continue
        if found.stop_count(Summary.of(job), history.consecutive_failures) is not None:
            stopped.append(job.slug)
        if running(config, job.slug):
            active.append(job.slug)
        if history.last_completion_status == "failure":
            failing.append(job.slug)
        elif _stale(config, job, history, now):
            stale.append(job.slug)
        else:
            ok.append(job.slug)
    return Report(tuple(ok), tuple(failing), tuple(sorted(invalid)), tuple(stale),
                  tuple(active), tuple(stopped))


def check_systemd(config: Config, now: dt.datetime | None = None) -> Report:
    """Every job's state on a systemd host, from systemd itself (the units
    over D-Bus, which any user may read, and the journal where systemd has
    forgotten a unit and the caller may read it): what ``run-job --status``
    shows. Raises BusError (a PcError) when systemd cannot be asked."""
    now = now or dt.datetime.now(dt.UTC)
    report: dict[str, list[str]] = {"ok": [], "failing": [], "invalid": [], "stale": [],
                                    "running": [], "stopped": []}
    reasons: list[str] = []
    for info in systemd_listing(config).infos:
        summary = info.summary
        if info.state in (State.INVALID, State.NOT_GENERATED, State.REFUSED):
            report["invalid"].append(info.slug)
            if info.state is State.REFUSED:
                reasons += info.problems
            continue
        if info.state is State.RUNNING:
            report["running"].append(info.slug)
        if info.stopped:
            report["stopped"].append(info.slug)
        last = info.last_run
        if last is not None and last.status == "failure":
            report["failing"].append(info.slug)
        elif _stale_since(config, summary.scheduled, summary.slug, last, now):
            report["stale"].append(info.slug)
        else:
            report["ok"].append(info.slug)
    return Report(**{k: tuple(v) for k, v in report.items()}, reasons=tuple(reasons))


def _stale_since(config: Config, scheduled: bool, slug: str, last: LastRun | None,
                 now: dt.datetime) -> bool:
    """Stale by systemd's last run: its end when it succeeded, else (never
    run since systemd last knew) the job file's last change."""
    if config.stale_after is None or not scheduled:
        return False
    if last is not None and last.status == "success" and last.end is not None:
        since = last.end
    else:
        try:
            path = os.path.join(config.job_directory, job_file_name(slug))
            since = dt.datetime.fromtimestamp(os.stat(path).st_mtime, dt.UTC)
        except OSError:
            return False
    return now - since > dt.timedelta(hours=config.stale_after)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="check-jobs-icinga",
        description="Report the state of every process-control job as an Icinga/Nagios "
                    "check: exit 0 OK, 1 WARNING (invalid or stale jobs), 2 CRITICAL "
                    "(failing jobs), 3 UNKNOWN.",
    )
    parser.add_argument("--config", metavar="PATH",
                        help="global configuration (default: $PROCESS_CONTROL_CONFIG, "
                             "/etc/process-control.yaml, else built-in defaults)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        report = check_systemd(config) if backend.choose(config) == backend.SYSTEMD \
            else check(config)
    except PcError as err:
        more = len(err.problems) - 1
        print(f"UNKNOWN: {err.problems[0]}" + (f" (and {more} more)" if more > 0 else ""))
        return UNKNOWN
    except OSError as err:
        where = f"{err.filename}: " if err.filename else ""
        print(f"UNKNOWN: {where}{err.strerror or err}")
        return UNKNOWN
    print(report.line())
    return report.code


if __name__ == "__main__":
    sys.exit(main())
