"""All jobs of a job directory: each file loaded on its own, so one broken
file never keeps the others from loading."""

from __future__ import annotations

import os
from dataclasses import dataclass

from pc_systemd.model.config import Config
from pc_systemd.model.config_file import job_file_name, slug_of, yaml_names
from pc_systemd.model.errors import PcError, Problem
from pc_systemd.model.job import SLUG, SLUG_RULE, Job, load_job


@dataclass(frozen=True)
class JobSet:
    jobs: tuple[Job, ...]  # the valid ones, in slug order
    problems: tuple[Problem, ...]  # errors of the invalid files (and of the directory)
    broken: tuple[str, ...]  # slugs whose file is invalid

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(w for job in self.jobs for w in job.warnings)


def job_files(config: Config) -> list[str]:
    """``<job_directory>/*.yaml`` in slug order, as the original's glob."""
    return [os.path.join(config.job_directory, name) for name in yaml_names(config.job_directory)]


def load_jobs(
    config: Config, paths: list[str] | None = None, *, listed: bool | None = None
) -> JobSet:
    """Load the given job files, or every job file of the job directory.
    ``listed``: the paths came from :func:`job_files` (they are known to be
    in the job directory)."""
    problems: list[Problem] = []
    listed = paths is None if listed is None else listed
    if paths is None:
        try:
            paths = job_files(config)
        except OSError as err:
            reason = err.strerror or str(err)
            problems.append(config.problem("job_directory", f"{config.job_directory}: {reason}"))
            paths = []
    jobs: list[Job] = []
    broken: list[str] = []
    for path in paths:
        try:
            jobs.append(load_job(path, config, listed))
        except PcError as err:
            problems.extend(err.problems)
            broken.append(slug_of(path))
    jobs.sort(key=lambda job: job.slug)
    return JobSet(tuple(jobs), tuple(problems), tuple(broken))


def job_path(config: Config, slug: str) -> str:
    """Where the job ``slug`` lives; refuses names that could leave the directory."""
    if not SLUG.match(slug):
        raise PcError([Problem(slug, 1, "job", f"bad job name: use {SLUG_RULE}")])
    return os.path.join(config.job_directory, job_file_name(slug))


def find_job(config: Config, slug: str) -> Job:
    path = job_path(config, slug)
    if not os.path.lexists(path):
        raise PcError([Problem(path, 1, "job", f"no job named {slug!r}")])
    return load_job(path, config)


def job_slugs(config: Config) -> set[str] | None:
    """Slugs of the job files; None if the job directory cannot be read."""
    try:
        names = yaml_names(config.job_directory)
    except OSError:
        return None
    return {slug for slug in map(slug_of, names) if SLUG.match(slug)}
