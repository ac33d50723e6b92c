"""The metrics file on cron hosts: ``metrics_file`` rewritten by the direct
runner after each run, in :mod:`pc_systemd.monitoring.prometheus`'s format.

One file for all jobs, rewritten (temporary file, rename) after every run
by the direct runner that ran it, as the service user (on systemd hosts
:mod:`pc_systemd.monitoring.metrics_writer` writes it). Each writer holds an
flock of ``<metrics_file>.lock`` while it reads the file, replaces the samples of
its own job with ones computed from that job's history file (just written,
and read again under the lock) and writes the result; so writers of
different jobs never lose each other's samples, and whatever order they
come in, each job's samples are those of its newest history. A missing or
unreadable metrics file is rebuilt from every job's history; jobs whose
job file is gone are dropped.

Per job, from the last run that ran to an end (completed or failed)::

    process_control_last_run_start_timestamp_seconds{job="slug"}
    process_control_last_run_end_timestamp_seconds{job="slug"}
    process_control_last_run_duration_seconds{job="slug"}
    process_control_last_run_exit_status{job="slug"}
    process_control_last_run_success{job="slug"}
    process_control_last_success_timestamp_seconds{job="slug"}
    process_control_consecutive_failures{job="slug"}

A value the history does not hold (the exit status of a run that never
started its command, the start of a run whose ``started`` entry was lost)
is left out rather than made up. Slugs need no escaping in a label value.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable, Iterator

from pc_systemd.core.atomic import write_atomically
from pc_systemd.core.safe_open import read_file, service_uid
from pc_systemd.cron import history as hist
from pc_systemd.cron import lock
from pc_systemd.model import holds
from pc_systemd.model.config import Config
from pc_systemd.model.jobset import job_slugs
from pc_systemd.monitoring.prometheus import PREFIX, number, parse, render

MAX_BYTES = 16 << 20  # seven samples of 1,000 jobs take about 700 KiB




def samples(history: hist.History) -> dict[str, str]:
    """The samples of one job's history."""
    values: dict[str, float | None] = {}
    last = history.last_finished()
    if last is not None:
        values[PREFIX + "last_run_start_timestamp_seconds"] = _stamp(last.start)
        values[PREFIX + "last_run_end_timestamp_seconds"] = _stamp(last.end)
        values[PREFIX + "last_run_duration_seconds"] = last.duration
        values[PREFIX + "last_run_exit_status"] = last.code
        values[PREFIX + "last_run_success"] = 1 if last.status == "completed" else 0
    success = next((e for e in reversed(history.entries) if e.status == "completed"), None)
    if success is not None:
        values[PREFIX + "last_success_timestamp_seconds"] = _stamp(success.end or success.time)
    values[PREFIX + "consecutive_failures"] = history.consecutive_failures
    return {name: number(value) for name, value in values.items() if value is not None}


def _stamp(value: dt.datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


# -- the file --------------------------------------------------------------------


def update(config: Config, slug: str, warn: Callable[[str], None],
           stop_after: int | None = None) -> None:
    """After a run of ``slug`` (or its reset): bring its samples in
    ``metrics_file`` up to date; ``stop_after``: the job's
    ``stop_after_failures``, against which its count of failures in a row
    says whether it is stopped. Problems are reported through ``warn`` in
    one line, never raised: metrics must not change a run's outcome."""
    path = config.metrics_file
    if path is None:
        return
    try:
        with _locked(path):
            jobs = _read(path)
            if jobs is None:
                jobs = _from_histories(config, warn)
            jobs.pop(slug, None)
            current = _history_samples(config, slug, warn)
            if current is not None:
                failures = int(current.get(PREFIX + "consecutive_failures", "0"))
                stopped = holds.stops(stop_after, failures)
                current[PREFIX + "job_stopped"] = "1" if stopped else "0"
                jobs[slug] = current
            slugs = job_slugs(config)
            if slugs is not None:
                jobs = {s: v for s, v in jobs.items() if s in slugs}
            # node_exporter reads only *.prom files: the temporary is never read
            write_atomically(path, render(jobs))
    except OSError as err:
        warn(f"metrics file {path} not written: {err.strerror or err}")


@contextlib.contextmanager
def _locked(path: str) -> Iterator[None]:
    # Held for milliseconds; created 0600, a bounded wait, never lockable by
    # other users (lock.held).
    with lock.held(f"{path}.lock"):
        yield


def _read(path: str) -> dict[str, dict[str, str]] | None:
    """The samples in the file; None if there is no file of ours to start from."""
    try:
        data = read_file(path, os.geteuid(), MAX_BYTES)
    except OSError:
        return None
    text = data.decode("utf-8", "replace")
    return parse(text) if text.startswith("# HELP ") else None


def _history_samples(
    config: Config, slug: str, warn: Callable[[str], None]
) -> dict[str, str] | None:
    path = hist.history_path(config.state_directory, slug)
    if not os.path.exists(path):
        return None
    try:
        return samples(hist.load(path, service_uid(config.user)))
    except hist.HistoryError as err:
        warn(f"metrics: {path}: unreadable run history ({err})")
        return None


def _from_histories(config: Config, warn: Callable[[str], None]) -> dict[str, dict[str, str]]:
    jobs = {}
    for slug in sorted(job_slugs(config) or ()):
        found = _history_samples(config, slug, warn)
        if found is not None:
            jobs[slug] = found
    return jobs


