"""``run-job --validate``: every problem of a job directory, one line each."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass

from pc_systemd.model import systemd_version
from pc_systemd.model.backend import DIRECT, SYSTEMD, choose
from pc_systemd.model.config import Config
from pc_systemd.model.errors import Problem
from pc_systemd.model.job import Job, cron_host_warnings, cron_problems, systemd_problems
from pc_systemd.model.jobset import load_jobs
from pc_systemd.model.schedule import shortest_gap


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
    # What systemd cannot do fails the job where systemd runs it, and is a
    # warning elsewhere (the job repository's CI may not run systemd).
    backend = choose(config)  # (it may look at the host: once)
    on_systemd = backend == SYSTEMD
    systemd_warnings: list[Problem] = []
    version = systemd_version.manager() if jobset.jobs else None
    for job in jobset.jobs:
        refused = systemd_problems(job, version)
        if refused and on_systemd:
            errors.extend(refused)
            invalid.add(job.slug)
        else:
            systemd_warnings += [dataclasses.replace(p, warning=True,
                                                     message=f"on systemd hosts: {p.message}")
                                 for p in refused]
    checked = len(jobset.jobs) + len(jobset.broken)
    warnings = (*config.warnings, *service_user_warnings(config), *jobset.warnings,
                *systemd_warnings, *delay_warnings(jobset.jobs),
                *credential_warnings(config, jobset.jobs))
    if backend == DIRECT:  # what run-job or cron-generate would refuse on this host
        warnings += tuple(w for job in jobset.jobs for w in cron_host_warnings(job))
        warnings += cron_warnings(jobset.jobs)
    return Report(checked, len(invalid), tuple(errors), warnings)


def cron_warnings(jobs: Sequence[Job]) -> tuple[Problem, ...]:
    """On a host without systemd, what ``cron-generate`` refuses (see
    :func:`cron_problems`): a warning, since such a host may be a job
    repository's CI checking jobs for systemd hosts."""
    return tuple(dataclasses.replace(p, warning=True) for job in jobs for p in cron_problems(job))


def credential_warnings(config: Config, jobs: Sequence[Job]) -> tuple[Problem, ...]:
    """A credential whose file is missing: each run of the job would fail
    (systemd does not start a unit whose ``LoadCredential=`` file is
    missing; the direct runner neither). A warning, as the file may be
    checked elsewhere (a job repository's CI). Where this user may not look
    into the directory (it is root's), nothing can be said and nothing is."""
    warnings = []
    for job in jobs:
        for name in job.credentials:
            path = os.path.join(config.credentials_of(job.slug), name)
            try:
                os.stat(path)
            except FileNotFoundError:
                problem = job.problem("credentials", f"{name}: {path} does not exist: "
                                                     "the job's runs fail until it does")
                warnings.append(dataclasses.replace(problem, warning=True))
            except OSError:
                continue  # not ours to see (root's directory): the run will tell
    return tuple(warnings)


def delay_warnings(jobs: Sequence[Job]) -> tuple[Problem, ...]:
    """A random_delay as long as the time between two runs: systemd 252
    computes a timer's next run from its last (delayed) one, so a delay
    past the next scheduled time skips that run (measured: a fixed 28 s
    delay on a 10 s schedule ran every 30 s). Cron hosts run every one."""
    warnings = []
    for job in jobs:
        if job.random_delay <= 0 or job.schedule is None:
            continue
        gap = shortest_gap(job.schedule)  # seconds; an hour less for a fixed time (DST)
        if gap is not None and job.random_delay * 60 >= gap:
            problem = job.problem(
                "random_delay", f"{job.random_delay:g} minutes is not shorter than the "
                f"{gap / 60:g} between two runs of {job.schedule.expr!r}: on systemd hosts a "
                "run whose delay passes the next scheduled time skips that one")
            warnings.append(dataclasses.replace(problem, warning=True))
    return tuple(warnings)


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
