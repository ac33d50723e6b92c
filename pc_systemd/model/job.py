"""The job model: one frozen :class:`Job` per ``<job_directory>/<slug>.yaml``."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pc_systemd.model import fields as f
from pc_systemd.model.config_file import JOB_SUFFIX, slug_of
from pc_systemd.model.errors import PcError, Problem
from pc_systemd.model.fields import Command, Key
from pc_systemd.model.nodes import FILE_KEY, Entry, load, mapping_entries
from pc_systemd.model.schedule import CronSchedule, ScheduleError, parse_schedule

if TYPE_CHECKING:
    from pc_systemd.model.config import Config

# The slug becomes part of unit names (process-control-<slug>.service) and
# file names, so it is kept to characters that need no escaping anywhere.
SLUG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,99}\Z")
SLUG_RULE = "letters, digits, '_' and '-', at most 100, not starting with '-'"


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
class Failmail:
    from_address: str
    to_address: str


def failmail(entry: Entry) -> Failmail:
    sub = f.sub_entries(entry, ("from_address", "to_address"))
    for key in ("from_address", "to_address"):
        if key not in sub:
            raise entry.problem(f"{key} is missing")
    return Failmail(f.nonempty_text(sub["from_address"]), f.nonempty_text(sub["to_address"]))


def schedule(entry: Entry) -> CronSchedule:
    text = f.text(entry)
    try:
        return parse_schedule(text)
    except ScheduleError as err:
        raise entry.problem(str(err)) from None


def timezone(entry: Entry) -> str:
    name = f.nonempty_text(entry)
    import zoneinfo  # only jobs that name a zone pay for it

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise entry.problem(f"unknown time zone {name!r} (expected an IANA name)") from None
    return name


JOB_KEYS: tuple[Key[Any], ...] = (
    Key("name", "string", f.unit_text, None, "Human name of the job.", required=True),
    Key("description", "text", f.free_text, None, "Optional text explaining the job."),
    Key(
        "command", "command or list", f.commands, None,
        "Command line run without a shell (split with shell-like quoting), or a list "
        "of them run in order, stopping at the first failure.",
        required=True,
    ),
    Key(
        "slow_start_command", "command or list", f.commands, None,
        "Alternative command run by `run-job --slow-start`.",
    ),
    Key(
        "schedule", "cron expression", schedule, None,
        "Five-field Vixie cron schedule (`minute hour day-of-month month day-of-week`); "
        "`@` aliases and `=` are refused. Without it the job only runs by hand.",
    ),
    Key("timezone", "IANA zone", timezone, None,
        "Time zone the schedule is read in (e.g. `Europe/Berlin`); default: local time."),
    Key("disabled", "boolean", f.flag, False,
        "`true` keeps the job runnable by hand but unscheduled."),
    Key("timeout", "minutes", f.minutes, 0.0,
        "Run time limit in minutes, fractions allowed; `0` means no limit.",
        default_doc="`0` (no limit)"),
    Key("environment", "mapping", f.environment, (),
        "Extra environment variables; values become strings (`true` -> `True`).",
        default_doc="none"),
    Key("tag", "string or list", f.string_list, (), "Tags for grouping jobs.",
        default_doc="none"),
    Key("allow_overtime", "boolean", f.flag, False,
        "If the previous run is still going, record this run as skipped instead of failed."),
    Key("failure_threshold_for_mail", "integer", f.positive_int, 1,
        "Send failure mail once this many consecutive runs have failed."),
    Key("failmail", "mapping", failmail, None,
        "`{from_address, to_address}` for failure mail."),
    Key("sandbox", "boolean", f.flag, True,
        "systemd hardening of the job's service (no new privileges, read-only "
        "/usr /boot /etc, private /tmp and /dev, ...); `false` turns it off for jobs "
        "that need more."),
    Key("logging", "journal | file", f.choice("journal", "file"), "journal",
        "Where each run's output goes: the journal, or "
        "`<output_directory>/<slug>/<slug>-YYYYmmdd-HHMMSS.log`."),
)
KEYS_BY_NAME = {key.name: key for key in JOB_KEYS}


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
    timeout: float
    environment: tuple[tuple[str, str], ...]
    tag: tuple[str, ...]
    allow_overtime: bool
    failure_threshold_for_mail: int
    failmail: Failmail | None
    sandbox: bool
    logging: str
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


def parse_defaults(entries: list[Entry]) -> tuple[dict[str, Any], list[Problem]]:
    """Validate ``default_job_config`` once, against the job keys."""
    values: dict[str, Any] = {}
    problems: list[Problem] = []
    for entry in entries:
        key = KEYS_BY_NAME.get(entry.key)
        if key is None:
            problems.append(Problem(entry.source, entry.line, entry.key, _unknown(entry.key)))
            continue
        value = f.collect(problems, lambda k=key, e=entry: k.parse(e))  # type: ignore[misc]
        if value is not None:
            values[entry.key] = value
    return values, problems


def _unknown(key: str) -> str:
    import difflib

    if len(key) > 64:  # no key is that long; and difflib is quadratic
        return "unknown key"
    close = difflib.get_close_matches(key, KEYS_BY_NAME, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key{hint}"


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
    if not listed:
        real_dir = os.path.realpath(job_directory)
        if os.path.realpath(os.path.dirname(os.path.abspath(path))) != real_dir:
            problems.append(Problem(path, 1, FILE_KEY, f"job files must be in {job_directory}"))
            return problems
    if _is_link(path):
        real_dir = os.path.realpath(job_directory)
        if os.path.dirname(os.path.realpath(path)) != real_dir:
            problems.append(Problem(path, 1, FILE_KEY, f"symlink leads outside {job_directory}"))
    return problems


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
    warnings: list[Problem] = []
    for entry in mapping_entries(root, path, "job keys"):
        key = KEYS_BY_NAME.get(entry.key)
        if key is None:
            # Unknown keys warn instead of failing: the original ignored
            # them, and existing job files must keep working.
            # (suggestions for the first few only: a file of thousands of
            # unknown keys must not take seconds)
            hint = _unknown(entry.key) if len(warnings) < 20 else "unknown key"
            warnings.append(Problem(path, entry.line, entry.key, hint, True))
            continue
        lines[entry.key] = (path, entry.line)
        try:
            values[entry.key] = key.parse(entry)
        except PcError as err:
            problems.extend(err.problems)
    for key in JOB_KEYS:
        if key.required and key.name not in values and not _reported(problems, key.name):
            problems.append(f.missing(path, key.name))
    if problems:
        raise PcError(problems)
    return Job(slug=slug_of(path), path=path, warnings=tuple(warnings), lines=lines, **values)


def _reported(problems: list[Problem], key: str) -> bool:
    return any(p.key == key or p.key.startswith(key + ".") for p in problems)
