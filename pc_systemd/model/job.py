"""The job model: one frozen :class:`Job` per ``<job_directory>/<slug>.yaml``."""

from __future__ import annotations

import dataclasses
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pc_systemd.model import fields as f
from pc_systemd.model.config import Config
from pc_systemd.model.config_file import JOB_SUFFIX, slug_of
from pc_systemd.model.errors import PcError, Problem
from pc_systemd.model.fields import Command
from pc_systemd.model.job_keys import JOB_KEYS, KEYS_BY_NAME, Failmail, parse_entries
from pc_systemd.model.nodes import FILE_KEY, load, mapping_entries
from pc_systemd.model.retry import Retry, systemd_refusals
from pc_systemd.model.schedule import CronSchedule

# The slug becomes part of unit names (process-control-<slug>.service) and
# file names, so it is kept to characters that need no escaping anywhere.
# A dot is fine (the original's own job.example.yaml has one) but not first:
# '.x.yaml' is a hidden file, not a job (the original's glob skipped it).
# Refused: '<slug>.slow-start', whose service would be the unit
# process-control-<slug>.slow-start.service, job <slug>'s slow start; and
# '.yaml' anywhere, which the original removed from every place in the
# file name ('x.yaml.yaml' was its job 'x', a cron line running another file).
SLUG = re.compile(r"(?!.*\.yaml)(?!.*\.slow-start\Z)[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}\Z")
SLUG_RULE = ("letters, digits, '_', '-' and '.', at most 100, not starting with '-' or '.',"
             " no '.yaml', not ending in '.slow-start'")
# The names our own units take (process-control-reload.*, -metrics.*; see
# systemd/units.py; process-control-after-var.service, from the package): a
# job of that name would replace them (the reload services run as root) and
# get the developer group's rights on them.
RESERVED_SLUGS = frozenset({"reload", "metrics", "after-var"})


# A run's own log file, ``logging: file`` on systemd (:mod:`pc_systemd.systemd.filelog`,
# which formats LOG_STAMP with date(1)) and every run of the direct runner
# (:mod:`pc_systemd.cron.runlog`): ``<output_directory>/<slug>/<slug>-<stamp>[-N].log``,
# the local time of the run's start, ``-N`` when a run of the same second has the name.
LOG_STAMP = "%Y%m%d-%H%M%S"
LOG_SUFFIX = ".log"


def log_name(slug: str, stamp: str, n: int = 0) -> str:
    """The name of a run's log file; ``stamp`` is the start formatted with :data:`LOG_STAMP`."""
    return f"{slug}-{stamp}{LOG_SUFFIX}" if n == 0 else f"{slug}-{stamp}-{n}{LOG_SUFFIX}"


def log_name_pattern(slug: str) -> re.Pattern[str]:
    """What :func:`log_name` gives for ``slug``; groups: the stamp, and N or None."""
    stamp = r"(\d{8}-\d{6})"  # LOG_STAMP's digits
    return re.compile(f"{re.escape(slug)}-{stamp}(?:-(\\d+))?{re.escape(LOG_SUFFIX)}\\Z")




@dataclass(frozen=True)
class Job:
    """Field names and meanings are those of :data:`JOB_KEYS`."""

    slug: str
    path: str  # the job file, as found in job_directory
    name: str
    command: tuple[Command, ...]
    description: str | None
    slow_start_command: tuple[Command, ...] | None
    schedule: CronSchedule | None
    timezone: str | None
    disabled: bool
    catch_up: bool
    random_delay: float  # minutes
    timeout: float
    environment: tuple[tuple[str, str], ...]
    credentials: tuple[str, ...]
    tag: tuple[str, ...]
    allow_overtime: bool
    failure_threshold_for_mail: int
    failmail: Failmail | None
    stop_after_failures: int | None
    sandbox: bool | str  # true, false or 'strict'
    logging: str
    memory_max: int | None
    cpu_quota: float | None
    nice: int | None
    io_class: str | None
    retry: Retry | None
    image: str | None
    warnings: tuple[Problem, ...] = field(default=(), compare=False)
    # where each key was written ("file", line), for checks made after loading
    lines: Mapping[str, tuple[str, int]] = field(default_factory=dict, compare=False)

    def problem(self, key: str, message: str) -> Problem:
        source, line = self.lines.get(key, (self.path, 1))
        return Problem(source, line, key, message)

    @property
    def scheduled(self) -> bool:
        """Whether a timer should fire it (as the original: schedule set, not disabled)."""
        return self.schedule is not None and not self.disabled


def cron_problems(job: Job) -> list[Problem]:
    """What ``job`` asks that cron cannot do, one problem each:
    ``cron-generate`` leaves such a job out, and ``run-job --validate`` on a
    host without systemd warns (it may be a CI machine checking jobs for
    systemd hosts). Without this a job would silently not catch up."""
    if job.catch_up:
        return [job.problem("catch_up", "cron cannot catch up runs missed while the host was "
                                        "down; only systemd hosts can (remove the key here)")]
    return []


# Limits only a control group enforces: systemd hosts only.
SYSTEMD_ONLY = ("memory_max", "cpu_quota")


def cron_host_warnings(job: Job) -> tuple[Problem, ...]:
    """What the direct runner (hosts without systemd) will refuse to run,
    as warnings for ``cron-generate`` and ``--validate`` there: limits
    that need systemd's control group, and a negative nice, a priority the
    runner (the unprivileged service user) cannot give."""
    found = [
        job.problem(key, "is enforced only on systemd hosts: run-job will not run this job here")
        for key in SYSTEMD_ONLY if getattr(job, key) is not None
    ]
    if job.nice is not None and job.nice < 0:
        found.append(job.problem("nice", "a negative nice is applied only on systemd hosts: "
                                         "run-job will not run this job here"))
    return tuple(dataclasses.replace(p, warning=True) for p in found)


def check_location(path: str, job_directory: str, listed: bool = False) -> list[Problem]:
    """The original refused job files outside job_directory, and symlinks
    that lead out of it: job files are what review protects.  ``listed``:
    the path came from listing job_directory itself."""
    problems = []
    slug = slug_of(path)
    if not path.endswith(JOB_SUFFIX):
        problems.append(Problem(path, 1, FILE_KEY, f"job files must end in {JOB_SUFFIX}"))
    elif not SLUG.match(slug):
        problems.append(Problem(path, 1, FILE_KEY, f"bad job name {slug!r}: use {SLUG_RULE}"))
    elif slug in RESERVED_SLUGS:
        problems.append(Problem(path, 1, FILE_KEY,
                                f"job name {slug!r} is reserved for process-control's own units"))
    if not listed:
        real_dir = os.path.realpath(job_directory)
        where = os.path.realpath(os.path.dirname(os.path.abspath(path)))
        if where != real_dir:
            below = ", not in a subfolder" if _below(where, real_dir) else ""
            problems.append(
                Problem(path, 1, FILE_KEY, f"job files must be in {job_directory}{below}"))
            return problems
    if _is_link(path):
        real_dir = os.path.realpath(job_directory)
        target = os.path.realpath(path)
        if os.path.dirname(target) != real_dir:
            # A subfolder is refused too: files there are not jobs (the
            # listing is *.yaml of the directory itself), review may skip them.
            if _below(target, real_dir):
                why = (f"symlink leads into a subfolder of {job_directory} ({target}):"
                       " job files must be in it directly")
            elif target == real_dir:
                why = f"symlink leads to {job_directory} itself"
            else:
                why = f"symlink leads outside {job_directory}"
            problems.append(Problem(path, 1, FILE_KEY, why))
    return problems


def _below(path: str, directory: str) -> bool:
    """Whether the real path ``path`` is inside the real ``directory``, at any depth."""
    return path != directory and os.path.commonpath((path, directory)) == directory


def _is_link(path: str) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        return False  # reading it reports the problem


def load_job(path: str, config: Config, listed: bool = False) -> Job:
    """Load and validate one job file; raise :class:`PcError` with every
    problem found (each a ``path:line: key: message`` line)."""
    problems = check_location(path, config.job_directory, listed)
    if problems:
        raise PcError(problems)
    root = load(path, path)
    values: dict[str, Any] = {k.name: k.default for k in JOB_KEYS if not k.required}
    values.update(config.job_defaults)
    lines = dict(config.job_default_lines)
    entries = list(mapping_entries(root, path, "job keys"))
    parsed, more, warnings = parse_entries(entries)
    values.update(parsed)
    problems.extend(more)
    lines.update((e.key, (path, e.line)) for e in entries if e.key in KEYS_BY_NAME)
    if parsed.get("nice", 0) < 0 and not config.allow_negative_nice:
        # A job file is reviewed by developers, not the host's administrator:
        # a priority above the host's own processes is the administrator's call.
        problems.append(Problem(path, lines["nice"][1], "nice",
                                f"{parsed['nice']} is a negative nice: the global configuration"
                                " must set allow_negative_nice: true to allow it in job files"))
    if values["credentials"] and "CREDENTIALS_DIRECTORY" in dict(values["environment"]):
        problems.append(Problem(*lines["environment"], "environment",
                                "CREDENTIALS_DIRECTORY is set for the job's credentials; "
                                "remove it here"))
    for key in JOB_KEYS:
        if key.required and key.name not in values and not _reported(problems, key.name):
            problems.append(f.missing(path, key.name))
    if problems:
        raise PcError(problems)
    return Job(slug=slug_of(path), path=path, warnings=tuple(warnings), lines=lines, **values)


def _reported(problems: list[Problem], key: str) -> bool:
    return any(p.key == key or p.key.startswith(key + ".") for p in problems)


def systemd_problems(job: Job, version: int | None) -> list[Problem]:
    """What systemd ``version`` (None: none found here;
    :func:`pc_systemd.model.systemd_version.manager` finds it) cannot carry out of
    this job (its ``retry``), one problem per reason: the generator skips
    such a job."""
    if job.retry is None:
        return []
    return [job.problem("retry", why)
            for why in systemd_refusals(job.retry, job.timeout, job.schedule, version)]
