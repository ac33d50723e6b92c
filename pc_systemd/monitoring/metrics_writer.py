"""Metrics on systemd hosts: ``process-control-metrics.service``, started
once a minute by its timer (both generated only when ``metrics_file`` is
set), rewrites ``metrics_file`` from systemd's own records of the jobs'
runs::

    ExecStart=<python> -I -m pc_systemd.monitoring.metrics_writer [--config PATH]

Nothing of ours runs per run: systemd logs every run of a unit in the
journal (``Starting``, the main process's ``EXIT_CODE``/``EXIT_STATUS``,
then ``UNIT_RESULT`` or "Deactivated successfully", all under the run's
``INVOCATION_ID``), and this service folds what was logged since its last
pass into a small ledger per job: the last finished run, the last success,
and the failures in a row. The ledger and the journal cursor it reached
are kept in ``$STATE_DIRECTORY`` (systemd's ``StateDirectory=``), so each
pass reads only the minute's new records; without them (the first pass,
or a cursor the journal no longer has) it reads every record there is.

It runs as ``process-control-monitor`` with the ``systemd-journal`` group,
never as root nor as the service user, and writes the file atomically
(a temporary file, renamed), mode 0644 for node_exporter. The samples are
those :mod:`pc_systemd.cron.metrics` writes on cron hosts from the run history.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pc_systemd.core.atomic import write_atomically
from pc_systemd.model import holds
from pc_systemd.model.config import Config, load_config
from pc_systemd.model.errors import PcError
from pc_systemd.model.jobset import job_slugs
from pc_systemd.model.writers import identity
from pc_systemd.monitoring import prometheus
from pc_systemd.systemd import journal
from pc_systemd.systemd.status_memo import PREFIX, generated_restarts, unit_slug
from pc_systemd.systemd.unit_result import CLD_EXITED, CLD_NAMES, signal_number

LEDGER = "ledger.json"
# Runs seen starting but not ending are kept this long (in the ledger) at most.
PENDING_LIMIT = 10_000
OURS = (PREFIX + "reload", PREFIX + "mail@", PREFIX + "filecheck@", PREFIX + "metrics")


@dataclass
class JobRuns:
    """One job's runs as the metrics show them (times in microseconds)."""

    start: int | None = None  # of the last finished run
    end: int | None = None
    success: bool | None = None
    code: int | None = None  # exit status, or minus the signal
    last_success: int | None = None  # end of the last successful run
    failures: int = 0  # failed runs since the last success


@dataclass
class Pending:
    """A run whose end has not been read yet."""

    start: int
    code: int | None = None
    unit: str = ""
    restarted: bool = False  # systemd restarted this attempt (retry) after its delay


def never(unit: str) -> bool:
    return False


@dataclass
class Ledger:
    cursor: str | None
    jobs: dict[str, JobRuns]
    pending: dict[str, Pending]  # invocation -> its run so far
    # unit -> the start of a run whose attempt failed and was started again
    # (retry): the next attempt is the same run.
    carry: dict[str, int] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> Ledger:
        return cls(None, {}, {})

    def add(self, entry: dict[str, Any], restarts: Callable[[str], bool] = never) -> None:
        """Fold one of systemd's records of a run of a job's unit.

        ``restarts``: whether a unit has ``Restart=`` (its job has
        ``retry``). Its failed attempt is then not the run's end: systemd
        logs "Scheduled restart job" once the delay is over and starts the
        next attempt, the same run; or, when the start limit refuses that
        restart, a second failure, which ends the run
        (:mod:`pc_systemd.systemd.journal`'s docstring)."""
        unit, invocation = entry.get("UNIT"), entry.get("INVOCATION_ID")
        if not isinstance(unit, str) or not isinstance(invocation, str) or not _job_unit(unit):
            return
        when = journal.record_time(entry)
        kind = entry.get("MESSAGE_ID")
        run = self.pending.get(invocation)
        if run is None:
            run = self.pending[invocation] = Pending(when, unit=unit)
        if kind == journal.STARTING:
            run.start = min(run.start, self.carry.pop(unit, run.start))
            for other in [i for i, p in self.pending.items() if p.unit == unit and i != invocation]:
                del self.pending[other]  # runs of a unit never overlap: those are over
        elif kind == journal.EXITED:
            run.code = _code(entry.get("EXIT_CODE"), entry.get("EXIT_STATUS"))
        elif kind == journal.RESTARTING:
            run.restarted = True
            self.carry[unit] = run.start
        elif kind in (journal.FAILED, journal.SUCCEEDED):
            ok = kind == journal.SUCCEEDED
            if not ok and not run.restarted and restarts(unit):
                return  # its restart comes once the delay is over
            del self.pending[invocation]
            self.carry.pop(unit, None)
            job = self.jobs.setdefault(unit_slug(unit), JobRuns())
            job.start, job.end, job.success, job.code = run.start, when, ok, run.code
            if ok:
                job.last_success, job.failures = when, 0
                if job.code is None:
                    job.code = 0
            else:
                job.failures += 1
        if len(self.pending) > PENDING_LIMIT:  # runs whose end never came
            oldest = min(self.pending, key=lambda i: self.pending[i].start)
            del self.pending[oldest]

    def to_json(self) -> str:
        return json.dumps({
            "cursor": self.cursor,
            "jobs": {slug: asdict(runs) for slug, runs in self.jobs.items()},
            "pending": {i: asdict(run) for i, run in self.pending.items()},
            "carry": self.carry,
        })

    @classmethod
    def from_json(cls, text: str) -> Ledger:
        data = json.loads(text)
        return cls(data["cursor"],
                   {slug: JobRuns(**runs) for slug, runs in data["jobs"].items()},
                   {i: Pending(**run) for i, run in data["pending"].items()},
                   dict(data.get("carry", {})))


def _job_unit(unit: str) -> bool:
    return unit.startswith(PREFIX) and unit.endswith(".service") and not unit.startswith(OURS)


def _code(exit_code: object, exit_status: object) -> int | None:
    if not isinstance(exit_code, str) or not isinstance(exit_status, str):
        return None
    kind = CLD_NAMES.get(exit_code)
    if kind == CLD_EXITED:
        return int(exit_status) if exit_status.isdigit() else None
    number = signal_number(exit_status) if kind is not None else None
    return -number if number is not None else None


def samples(runs: JobRuns) -> dict[str, str]:
    """One job's samples (:data:`.prometheus.METRICS`)."""
    p = prometheus.PREFIX
    values: dict[str, float | None] = {p + "consecutive_failures": runs.failures}
    if runs.end is not None:
        values[p + "last_run_start_timestamp_seconds"] = _seconds(runs.start)
        values[p + "last_run_end_timestamp_seconds"] = _seconds(runs.end)
        if runs.start is not None:
            values[p + "last_run_duration_seconds"] = (runs.end - runs.start) / 1e6
        values[p + "last_run_exit_status"] = runs.code
        values[p + "last_run_success"] = 1 if runs.success else 0
    values[p + "last_success_timestamp_seconds"] = _seconds(runs.last_success)
    return {name: prometheus.number(v) for name, v in values.items() if v is not None}


def _seconds(usec: int | None) -> float | None:
    return usec / 1e6 if usec is not None else None


# -- reading and writing -------------------------------------------------------------


def _records(cursor: str | None) -> Iterator[dict[str, Any]]:
    args = [f"--output-fields={journal.RUN_FIELDS}", "_PID=1",
            *(f"MESSAGE_ID={m}" for m in journal.RUN_MESSAGES)]
    if cursor is not None:
        args.insert(0, f"--after-cursor={cursor}")
    return journal.entries(args)


def _load(directory: str | None) -> Ledger:
    if directory is None:
        return Ledger.empty()
    try:
        with open(os.path.join(directory, LEDGER), encoding="utf-8") as handle:
            return Ledger.from_json(handle.read(8 << 20))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return Ledger.empty()  # none yet, or not ours to trust: read everything


def update(ledger: Ledger, restarts: Callable[[str], bool] = never) -> Ledger:
    """The ledger with the journal's records since its cursor folded in."""
    try:
        entries = list(_records(ledger.cursor))
    except journal.JournalError:
        if ledger.cursor is None:
            raise
        ledger = Ledger.empty()  # the cursor is gone (journal rotated): start over
        entries = list(_records(None))
    for entry in entries:
        ledger.add(entry, restarts)
        cursor = entry.get("__CURSOR")
        if isinstance(cursor, str):
            ledger.cursor = cursor
    return ledger


def write(config: Config, ledger: Ledger) -> None:
    assert config.metrics_file is not None
    slugs = job_slugs(config)
    jobs = {slug: samples(runs) for slug, runs in ledger.jobs.items()
            if slugs is None or slug in slugs}
    held, _why = holds.list_names(config.hold_directory, config.user,
                                   identity(config.user))
    for slug, values in jobs.items():
        stopped = holds.stopped_file(slug) in held
        values[prometheus.PREFIX + "job_stopped"] = "1" if stopped else "0"
    write_atomically(config.metrics_file, prometheus.render(jobs))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)

    def warn(line: str) -> None:
        print(f"process-control metrics: {line}", file=sys.stderr, flush=True)

    config_path = None
    if len(args) == 2 and args[0] == "--config":
        config_path = args[1]
    elif args:
        warn("usage: python -m pc_systemd.monitoring.metrics_writer [--config PATH]")
        return 2
    try:
        config = load_config(config_path, {})
        if config.metrics_file is None:
            return 0
        state = os.environ.get("STATE_DIRECTORY") or None
        ledger = update(_load(state), generated_restarts())
        write(config, ledger)
        if state is not None:
            write_atomically(os.path.join(state, LEDGER), ledger.to_json(), mode=0o600)
        return 0
    except PcError as err:
        warn(str(err.problems[0]))
    except journal.JournalError as err:
        warn(str(err))
    except OSError as err:
        where = f"{err.filename}: " if err.filename else ""
        warn(f"{where}{err.strerror or err}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
