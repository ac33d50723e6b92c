"""``run-job --validate``: every problem of a job directory, one line each."""

from __future__ import annotations

from dataclasses import dataclass

from pc_systemd.model.config import Config
from pc_systemd.model.errors import Problem
from pc_systemd.model.jobset import load_jobs


@dataclass(frozen=True)
class Report:
    checked: int
    invalid: int
    errors: tuple[Problem, ...]
    warnings: tuple[Problem, ...]

    def failed(self, strict: bool) -> bool:
        return bool(self.errors) or (strict and bool(self.warnings))

    def summary(self) -> str:
        return (
            f"checked {self.checked} job file(s): {self.checked - self.invalid} valid, "
            f"{self.invalid} invalid, "
            f"{len(self.warnings)} warning(s)"
        )


def validate(config: Config, paths: list[str] | None = None) -> Report:
    jobset = load_jobs(config, paths)
    errors = list(jobset.problems)
    invalid = set(jobset.broken)
    for job in jobset.jobs:
        if job.schedule is not None and not job.schedule.can_fire():
            errors.append(job.problem("schedule", f"{job.schedule.expr!r} can never fire"))
            invalid.add(job.slug)
    checked = len(jobset.jobs) + len(jobset.broken)
    return Report(checked, len(invalid), tuple(errors), jobset.warnings)
