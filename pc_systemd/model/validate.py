"""``run-job --validate``: every problem of a job directory, one line each."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pc_systemd.model.backend import DIRECT, choose
from pc_systemd.model.config import Config
from pc_systemd.model.errors import Problem
from pc_systemd.model.job import cron_host_warnings
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
    warnings = (*config.warnings, *service_user_warnings(config), *jobset.warnings)
    if choose(config) == DIRECT:  # what run-job would refuse on this host
        warnings += tuple(w for job in jobset.jobs for w in cron_host_warnings(job))
    return Report(checked, len(invalid), tuple(errors), warnings)


def service_user_warnings(config: Config) -> tuple[Problem, ...]:
    """A service user this host does not know: every job would fail at its
    first run (systemd cannot start a unit whose ``User=`` has no entry;
    cron skips the line). A warning: the file may be checked on another
    machine, such as a job repository's CI. Only a ``user:`` the
    configuration names: the default one is created by the package. A uid
    is not looked up: systemd runs a job as a uid with no user name."""
    if "user" not in config.lines or config.user.isdigit():
        return ()
    import pwd  # only validate looks the user up

    try:
        pwd.getpwnam(config.user)
    except KeyError:
        problem = config.problem(
            "user", f"no user {config.user!r} on this host: every job would fail at its first run"
        )
        return (dataclasses.replace(problem, warning=True),)
    return ()
