"""The metrics file's format: node_exporter's textfile collector, one file
for all jobs, each sample ``{job="<slug>"}``. Written on cron hosts by the
direct runner (:mod:`pc_systemd.cron.metrics`), on systemd hosts by our
metrics timer (:mod:`pc_systemd.monitoring.metrics_writer`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

PREFIX = "process_control_"


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
    Metric(PREFIX + "job_stopped",
           "1 while the job is not scheduled after stop_after_failures (until "
           "run-job reset), else 0."),
)
NAMES = frozenset(m.name for m in METRICS)
_SAMPLE = re.compile(r'(process_control_[a-z_]+)\{job="([A-Za-z0-9_-]+)"\} (\S+)\Z')

Samples = Mapping[str, str]  # metric name -> value, as written


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
