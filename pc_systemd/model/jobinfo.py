"""What ``run-job --status`` knows of each job, whichever backend runs it:
the job file's summary, the job's state, its last run and its next run.
The text view is :mod:`pc_systemd.views.report`; :func:`document` is the ``--json`` view.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the annotation only: a listing from the cache never loads the job parser
    from pc_systemd.model.job import Job


class State(StrEnum):
    RUNNING = "running"
    IDLE = "idle"
    FAILED = "failed"  # the last run failed
    DISABLED = "disabled"  # `disabled: true`: runnable by hand, never scheduled
    INVALID = "invalid"  # the job file has errors
    NOT_GENERATED = "not-generated"  # systemd has no unit for the job (yet)
    REFUSED = "refused"  # the generator refused it: systemd cannot carry it out


@dataclass(frozen=True)
class Summary:
    """One job file, reduced to what listings show (cheap to pass between
    processes). ``problems`` holds the errors of an invalid file."""

    slug: str
    name: str | None  # None: the file is invalid
    description: str | None = None
    tags: tuple[str, ...] = ()
    schedule: str | None = None
    timezone: str | None = None
    disabled: bool = False
    timeout: float = 0.0
    problems: tuple[str, ...] = ()
    stop_after_failures: int | None = None
    # why the generator refuses this valid job on systemd hosts (cron hosts
    # run it): the lines `run-job validate` prints there
    refused: tuple[str, ...] = ()
    logging: str = "journal"  # or "file": where a failed run's notes are (filelog_notes)

    @property
    def valid(self) -> bool:
        return self.name is not None

    @property
    def scheduled(self) -> bool:
        return self.schedule is not None and not self.disabled

    @classmethod
    def of(cls, job: Job) -> Summary:
        return cls(
            job.slug,
            job.name,
            job.description,
            job.tag,
            job.schedule.expr if job.schedule is not None else None,
            job.timezone,
            job.disabled,
            job.timeout,
            stop_after_failures=job.stop_after_failures,
            refused=refusals(job),
            logging=job.logging,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "slug": self.slug, "name": self.name, "description": self.description,
            "tags": list(self.tags), "schedule": self.schedule, "timezone": self.timezone,
            "disabled": self.disabled, "timeout": self.timeout,
            "problems": list(self.problems), "stop_after_failures": self.stop_after_failures,
            "refused": list(self.refused), "logging": self.logging,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Summary:
        return cls(
            data["slug"], data["name"], data["description"], tuple(data["tags"]),
            data["schedule"], data["timezone"], data["disabled"], data["timeout"],
            tuple(data["problems"]), data.get("stop_after_failures"),
            tuple(data.get("refused", ())), data.get("logging", "journal"),
        )


def refusals(job: Job) -> tuple[str, ...]:
    """What the generator refuses of ``job`` (:func:`.job.systemd_problems`), as lines."""
    from pc_systemd.model import systemd_version
    from pc_systemd.model.job import systemd_problems  # loaded already: there is a Job

    return tuple(str(problem) for problem in systemd_problems(job, systemd_version.manager()))


@dataclass(frozen=True)
class LastRun:
    """The last run that ended. ``status``: success | failure | skipped | unknown."""

    status: str
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    reason: str | None = None  # why it failed, one line
    unit: str | None = None  # the systemd unit that ran it (slow start has its own)

    @property
    def duration(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return max(0.0, (self.end - self.start).total_seconds())


@dataclass(frozen=True)
class JobInfo:
    summary: Summary
    state: State
    pid: int | None = None  # while running: its main process
    since: dt.datetime | None = None  # while running: when the run started
    last_run: LastRun | None = None
    next_run: dt.datetime | None = None
    note: str | None = None  # e.g. why the run history could not be read
    # why it is not scheduled although its file says so: "disabled by group
    # TAG", "stopped after N consecutive failures" (views.holding)
    hold: str | None = None
    stopped: bool = False  # by stop_after_failures: check-jobs-icinga's CRITICAL

    @property
    def slug(self) -> str:
        return self.summary.slug

    @property
    def problems(self) -> tuple[str, ...]:
        """Why the job does not run: an invalid file's errors, or what the
        generator refused."""
        return self.summary.refused if self.state is State.REFUSED else self.summary.problems

    @property
    def last_status(self) -> str:
        return self.last_run.status if self.last_run is not None else "unknown"


def timestamp(usec: int) -> dt.datetime | None:
    """A systemd realtime timestamp (microseconds; 0 and ~0 mean none)."""
    if usec <= 0 or usec >= (1 << 63):
        return None
    return dt.datetime.fromtimestamp(usec / 1e6, dt.UTC)


def _time(value: dt.datetime | None) -> str | None:
    return value.astimezone().isoformat(timespec="seconds") if value is not None else None


def job_dict(info: JobInfo) -> dict[str, Any]:
    last = info.last_run
    return {
        "slug": info.slug,
        "name": info.summary.name,
        "description": info.summary.description,
        "tags": list(info.summary.tags),
        "schedule": info.summary.schedule,
        "timezone": info.summary.timezone,
        "disabled": info.summary.disabled,
        "state": str(info.state),
        "pid": info.pid,
        "running_since": _time(info.since),
        "last_status": info.last_status,
        "last_run": None if last is None else {
            "status": last.status,
            "start": _time(last.start),
            "end": _time(last.end),
            "duration_seconds": None if last.duration is None else round(last.duration, 3),
            "reason": last.reason,
            "unit": last.unit,
        },
        "next_run": _time(info.next_run),
        "hold": info.hold,
        "stopped": info.stopped,
        "problems": list(info.problems),
        "note": info.note,
    }


def document(backend: str, infos: list[JobInfo]) -> dict[str, Any]:
    """The ``--json`` document: one object for every listed job."""
    return {"backend": backend, "jobs": [job_dict(info) for info in infos]}


def to_json(backend: str, infos: list[JobInfo]) -> str:
    # ASCII: job files are input, and \u escapes keep line breaks such as
    # U+2028 out of the document's lines.
    return json.dumps(document(backend, infos), indent=2) + "\n"
