"""Prometheus metrics: ``metrics_file`` in node_exporter's textfile-collector format.

One file for all jobs, rewritten (temporary file, rename) after every run
by whichever process ran it: the direct runner as the service user on
cron hosts, systemd's stop hook as root. Each writer holds an flock of
``<metrics_file>.lock`` while it reads the file, replaces the samples of
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
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from . import history as hist
from . import lock
from .atomic import write_atomically
from .config import Config
from .job import SLUG
from .safe_open import read_file, service_uid

PREFIX = "process_control_"
MAX_BYTES = 16 << 20  # seven samples of 1,000 jobs take about 700 KiB


@dataclass(frozen=True)
class Metric:
    name: str
    help: str


METRICS = (
    Metric(PREFIX + "last_run_start_timestamp_seconds",
           "When the job's last finished run started (unix time)."),
    Metric(PREFIX + "last_run_end_timestamp_seconds",
           "When the job's last finished run ended (unix time)."),
    Metric(PREFIX + "last_run_duration_seconds",
           "How long the job's last finished run took."),
    Metric(PREFIX + "last_run_exit_status",
           "Exit status of the last command of the job's last finished run "
           "(minus the signal number if a signal ended it)."),
    Metric(PREFIX + "last_run_success",
           "1 if the job's last finished run succeeded, 0 if it failed."),
    Metric(PREFIX + "last_success_timestamp_seconds",
           "When the job's last successful run still in its history ended (unix time)."),
    Metric(PREFIX + "consecutive_failures",
           "Runs of the job that failed since its last success."),
)
NAMES = frozenset(m.name for m in METRICS)
_SAMPLE = re.compile(r'(process_control_[a-z_]+)\{job="([A-Za-z0-9_-]+)"\} (\S+)\Z')

Samples = Mapping[str, str]  # metric name -> value, as written


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


def number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render(jobs: Mapping[str, Samples]) -> str:
    """The file: every metric's HELP and TYPE, then its samples in slug order."""
    out = []
    for metric in METRICS:
        out.append(f"# HELP {metric.name} {metric.help}")
        out.append(f"# TYPE {metric.name} gauge")
        for slug in sorted(jobs):
            value = jobs[slug].get(metric.name)
            if value is not None:
                out.append(f'{metric.name}{{job="{slug}"}} {value}')
    return "\n".join(out) + "\n"


def parse(text: str) -> dict[str, dict[str, str]]:
    """slug -> samples, from a file this module wrote (other lines are ignored)."""
    jobs: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        found = _SAMPLE.match(line)
        if found and found.group(1) in NAMES:
            jobs.setdefault(found.group(2), {})[found.group(1)] = found.group(3)
    return jobs


# -- the file --------------------------------------------------------------------


def update(config: Config, slug: str, warn: Callable[[str], None]) -> None:
    """After a run of ``slug``: bring its samples in ``metrics_file`` up to
    date. Problems are reported through ``warn`` in one line, never raised:
    metrics must not change a run's outcome."""
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


def job_slugs(config: Config) -> set[str] | None:
    """Slugs of the job files; None if the job directory cannot be read."""
    try:
        names = os.listdir(config.job_directory)
    except OSError:
        return None
    return {n[:-5] for n in names if n.endswith(".yaml") and SLUG.match(n[:-5])}


def _from_histories(config: Config, warn: Callable[[str], None]) -> dict[str, dict[str, str]]:
    jobs = {}
    for slug in sorted(job_slugs(config) or ()):
        found = _history_samples(config, slug, warn)
        if found is not None:
            jobs[slug] = found
    return jobs


