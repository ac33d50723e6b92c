"""The keys of a job file, each declared once (name, type, parser, default,
help), and ``default_job_config`` checked against them.

Below :mod:`pc_systemd.model.config`, which checks its ``default_job_config``
with them, and :mod:`pc_systemd.model.job`, which loads job files with both.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pc_systemd.model import fields as f
from pc_systemd.model.errors import PcError, Problem
from pc_systemd.model.fields import Key
from pc_systemd.model.nodes import Entry, scalar, type_name
from pc_systemd.model.retry import MAX_ATTEMPTS, retry
from pc_systemd.model.schedule import CronSchedule, ScheduleError, parse_schedule


@dataclass(frozen=True)
class Failmail:
    from_address: str
    to_address: str


FAILMAIL_KEYS = ("from_address", "to_address")
FAILMAIL = f.mapping_schema(FAILMAIL_KEYS, dict.fromkeys(FAILMAIL_KEYS, f.NONEMPTY_TEXT))
LOGGING = ("journal", "file")
IO_CLASSES = ("idle", "best-effort")


def failmail(entry: Entry) -> Failmail:
    sub = f.sub_entries(entry, FAILMAIL_KEYS, required=FAILMAIL_KEYS)
    return Failmail(f.nonempty_text(sub["from_address"]), f.nonempty_text(sub["to_address"]))


# Five fields of the items parse_schedule takes (a value, a range, '*', each
# with an optional /step), separated by spaces (a tab is refused by f.text);
# whether each value is in range is parse_schedule's to say.
_CRON_ITEM = r"(?:\*|[0-9A-Za-z]+(?:-[0-9A-Za-z]+)?)(?:/[0-9A-Za-z]*)?"
_CRON_FIELD = f"{_CRON_ITEM}(?:,{_CRON_ITEM})*"
SCHEDULE = f.text_schema(
    f.matching(f"^ *{_CRON_FIELD}(?: +{_CRON_FIELD}){{4}} *$",
               "five cron fields: minute hour day-of-month month day-of-week"),
    types=("string",),
)


def schedule(entry: Entry) -> CronSchedule:
    text = f.text(entry)
    try:
        return parse_schedule(text)
    except ScheduleError as err:
        raise entry.problem(str(err)) from None


# The characters of IANA zone names (Europe/Berlin, Etc/GMT+5, America/Port-au-Prince);
# whether the zone exists on the host is zoneinfo's to say.
TIMEZONE = f.text_schema(
    f.matching("^[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*$", "an IANA zone name (Europe/Berlin)"),
    types=("string",),
)


def timezone(entry: Entry) -> str:
    name = f.nonempty_text(entry)
    import zoneinfo  # only jobs that name a zone pay for it (~2 ms at every run-job start)

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise entry.problem(f"unknown time zone {name!r} (expected an IANA name)") from None
    return name


# A day: spreading starts further than that is a different schedule.
MAX_RANDOM_DELAY = 1440.0

# journal.streak counts a job's failures in a row back to at most 10,000 runs,
# and the direct runner's history keeps its count up to history.MAX_COUNT.
MAX_STOP_AFTER = 1000


# `sandbox: strict`: the sandbox before issue #26, each setting as systemd
# names it; `true` is a cheaper one with the same exposure bound (README,
# "Benchmarks").
STRICT = "strict"
SANDBOX = {"anyOf": [{"type": "boolean"}, {"enum": [*f.YAML11_BOOLEANS, STRICT]}]}


def sandbox(entry: Entry) -> bool | str:
    """true, false or ``strict``."""
    value = scalar(entry, entry.value)
    if value == STRICT:
        return STRICT
    if not isinstance(value, bool):
        raise entry.problem(f"expected true, false or {STRICT}, got {type_name(value)}")
    return value


def stop_after(entry: Entry) -> int:
    value = f.positive_int(entry)
    if value > MAX_STOP_AFTER:
        raise entry.problem(f"must be at most {MAX_STOP_AFTER}, got {value}")
    return value


JOB_KEYS: tuple[Key[Any], ...] = (
    Key("name", "string", f.unit_text, None, "Human name of the job.", required=True,
        schema=f.UNIT_TEXT),
    Key("description", "text", f.free_text, None, "Optional text explaining the job.",
        schema=f.FREE_TEXT),
    Key(
        "command", "command or list", f.commands, None,
        "Command line run without a shell (split with shell-like quoting), or a list "
        "of them run in order, stopping at the first failure.",
        required=True, schema=f.COMMANDS,
    ),
    Key(
        "slow_start_command", "command or list", f.commands, None,
        "Alternative command run by `run-job --slow-start`.",
        schema=f.COMMANDS,
    ),
    Key(
        "schedule", "cron expression", schedule, None,
        "Five-field Vixie cron schedule (`minute hour day-of-month month day-of-week`); "
        "`@` aliases and `=` are refused. Without it the job only runs by hand.",
        schema=SCHEDULE,
    ),
    Key("timezone", "IANA zone", timezone, None,
        "Time zone the schedule is read in (e.g. `Europe/Berlin`); default: local time.",
        schema=TIMEZONE),
    Key("disabled", "boolean", f.flag, False,
        "`true` keeps the job runnable by hand but unscheduled.", schema=f.BOOLEAN),
    Key("catch_up", "boolean", f.flag, False,
        "`true`: run once when the timer starts again (at boot) if a scheduled run was "
        "missed while the host was down (systemd's `Persistent=`). Refused by "
        "`cron-generate`: cron has no catch-up.", schema=f.BOOLEAN),
    Key("random_delay", "minutes", f.minutes_up_to(MAX_RANDOM_DELAY), 0.0,
        "Start each scheduled run up to this many minutes late (fractions allowed, at most "
        "1440), so a fleet does not start the job in the same second; the delay is fixed "
        "per host and job (reloads keep it). Runs by hand start at once.",
        default_doc="`0` (no delay)",
        schema={"type": "number", "minimum": 0, "maximum": MAX_RANDOM_DELAY}),
    Key("timeout", "minutes", f.minutes, 0.0,
        "Run time limit in minutes, fractions allowed; `0` means no limit.",
        default_doc="`0` (no limit)", schema=f.MINUTES),
    Key("environment", "mapping", f.environment, (),
        "Extra environment variables; values become strings (`true` -> `True`). Every "
        "local user can read them (`systemctl show`, the unit files): not for secrets, "
        "see `credentials`.",
        default_doc="none", schema=f.ENVIRONMENT),
    Key("credentials", "name or list", f.credential_names, (),
        "Secrets for the job: names of files in its own directory of the global "
        "`credentials_directory` (`<credentials_directory>/<slug>/`, root's only), "
        "handed to each run as `$CREDENTIALS_DIRECTORY/<name>` "
        "(systemd's `LoadCredential=`; on cron hosts a private copy per run). Not in "
        "`systemctl show` or the unit files, unlike `environment`.",
        default_doc="none", schema=f.CREDENTIALS),
    Key("tag", "string or list", f.string_list, (), "Tags for grouping jobs.",
        default_doc="none", schema=f.STRINGS),
    Key("allow_overtime", "boolean", f.flag, False,
        "If the previous run is still going, record this run as skipped instead of failed.",
        schema=f.BOOLEAN),
    Key("failure_threshold_for_mail", "integer", f.positive_int, 1,
        "Send failure mail once this many consecutive runs have failed.",
        schema=f.POSITIVE_INT),
    Key("failmail", "mapping", failmail, None,
        "`{from_address, to_address}` for failure mail.", schema=FAILMAIL),
    Key("stop_after_failures", "integer", stop_after, None,
        "After this many failed runs in a row the job is no longer scheduled (runs by "
        "hand still work) until `run-job reset NAME`; at most 1000.",
        default_doc="none (never stopped)",
        schema={"type": "integer", "minimum": 1, "maximum": MAX_STOP_AFTER}),
    Key("sandbox", "true | false | strict", sandbox, True,
        "systemd hardening of the job's service (no new privileges or capabilities, "
        "read-only /usr /boot /etc, private /tmp, other users' processes hidden, "
        "devices closed, a system call deny list, ...); `strict` adds systemd's own "
        "protection of kernel tunables, kernel log and control groups, a private /dev "
        "and its `@system-service` allow list, at two to three times the start cost (see "
        "Benchmarks), meant for jobs of a root service user; `false` turns it off for "
        "jobs that need more.",
        default_doc="`true`", schema=SANDBOX),
    Key("memory_max", "size", f.memory_size, None,
        "Memory limit of the job's whole process tree (`512M`, `2G`; K, M, G, T are "
        "powers of 1024; at least `1M`): systemd's `MemoryMax=` on the job's control "
        "group. Refused on hosts without systemd.",
        default_doc="none (no limit)", schema=f.MEMORY_SIZE),
    Key("cpu_quota", "percent", f.cpu_percent, None,
        "CPU time the job may use, in percent of one CPU (`50`, or `150` for one and a "
        "half CPUs): systemd's `CPUQuota=`. Refused on hosts without systemd.",
        default_doc="none (no limit)", schema=f.CPU_PERCENT),
    Key("nice", "-20..19", f.nice, None,
        "Scheduling priority (`Nice=`): 19 is the lowest. A negative value in a job "
        "file needs `allow_negative_nice: true` in the global configuration, and is "
        "refused on hosts without systemd.",
        default_doc="none (inherited: 0)", schema=f.NICE),
    Key("io_class", "idle | best-effort", f.choice(*IO_CLASSES), None,
        "I/O scheduling class (`IOSchedulingClass=`): `idle` gets disk time only when "
        "no other process wants it (where the disk's I/O scheduler has classes, "
        "such as BFQ); `best-effort` is the normal class, at level 4.",
        default_doc="none (inherited)", schema=f.one_of(*IO_CLASSES)),
    Key("logging", "journal | file", f.choice(*LOGGING), "journal",
        "Where each run's output goes: the journal, or "
        "`<output_directory>/<slug>/<slug>-YYYYmmdd-HHMMSS.log`.", schema=f.one_of(*LOGGING)),
    Key("image", "image reference", f.image, None,
        "Container image of the job's CronJobs (`run-job export kubernetes`), instead "
        "of the global `kubernetes.image`; hosts ignore it.",
        default_doc="`kubernetes.image`",
        schema=f.IMAGE_SCHEMA),
    Key("retry", "mapping", retry, None,
        "`{attempts, delay, backoff}`: a failed run (a timeout included) is tried again up "
        "to `attempts` more times, `delay` minutes after a failed attempt, each later delay "
        "`backoff` times the one before (default 1); the run fails only if its last attempt "
        "fails. On systemd it needs a `timeout`, `backoff: 1`, and runs further apart than "
        "its attempts can take.",
        schema=f.mapping_schema(("attempts", "delay"), {
            "attempts": {"type": "integer", "minimum": 1, "maximum": MAX_ATTEMPTS},
            "delay": f.MINUTES,
            # (any finite factor: with one attempt it is never used; JSON has no .inf)
            "backoff": {"type": "number", "minimum": 1, "maximum": sys.float_info.max},
        })),
)
KEYS_BY_NAME = {key.name: key for key in JOB_KEYS}


def parse_entries(
    entries: Iterable[Entry], prefix: str = "",
) -> tuple[dict[str, Any], list[Problem], list[Problem]]:
    """Each entry parsed by its job key: the values, the errors, and a
    warning per unknown key (named ``prefix`` + key). Unknown keys warn
    instead of failing: the original ignored them, and existing files must
    keep working (suggestions for the first few only: a file of thousands
    of unknown keys must not take seconds)."""
    values: dict[str, Any] = {}
    problems: list[Problem] = []
    warnings: list[Problem] = []
    for entry in entries:
        key = KEYS_BY_NAME.get(entry.key)
        if key is None:
            hint = unknown(entry.key) if len(warnings) < 20 else "unknown key"
            warnings.append(Problem(entry.source, entry.line, prefix + entry.key, hint, True))
            continue
        try:
            values[entry.key] = key.parse(entry)
        except PcError as err:
            problems.extend(err.problems)
    return values, problems, warnings


def parse_defaults(
    entries: list[Entry],
) -> tuple[dict[str, Any], list[Problem], list[Problem]]:
    """Validate ``default_job_config`` once, against the job keys: its
    values, its errors and its warnings. An unknown key is a warning, as
    in a job file (the original's 2017 configuration put ``from_address``
    there), named with its parent: ``default_job_config.from_address``."""
    values, problems, warnings = parse_entries(entries, "default_job_config.")
    return {k: v for k, v in values.items() if v is not None}, problems, warnings


def unknown(key: str) -> str:
    """The warning for a key no job knows, with the closest known key."""
    import difflib  # only an unknown key pays for it (~1 ms at every start)

    if len(key) > 64:  # no key is that long; and difflib is quadratic
        return "unknown key"
    close = difflib.get_close_matches(key, KEYS_BY_NAME, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key{hint}"
