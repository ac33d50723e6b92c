"""Run history: ``<state_directory>/<slug>.yaml``, as the original keeps it.

The file holds ``history`` (the last 20 entries, oldest first) and
``last_completion_status`` (``success``, ``failure``, ``skipped`` or
``unknown``), the two keys the original wrote and ``check-jobs-icinga``
reads, plus ``consecutive_failures`` for the failure-mail threshold. An
entry is one run: written as ``started`` when it begins, then rewritten in
place as ``completed``, ``failed`` or ``skipped``; a run whose runner died
stays ``started``. The direct runner (cron hosts; on systemd hosts the
journal holds systemd's own records of every run) tells its runs apart by
its PID and start time; ``invocation`` (systemd's ID of a run) is read
from files older versions wrote there. ``log_problem`` says why the run's
log file misses output (it could not be opened, or a write failed: no
space left). Its ``time`` (the original's only key) is when the
status was recorded; times are UTC without a zone, as the original wrote
them.

The original rewrote the file in place, so a crash or two runs at once
could leave it empty or half-written. Here every change is a
read-modify-write under an flock of ``<slug>.yaml.lock``, and the new text
replaces the file by rename, so readers see the old file or the new one.
A file that cannot be used is reported in one line and replaced by a fresh
history, so it never stops a run: a regular file of ours is kept aside as
``<slug>.yaml.corrupt`` (mode 0600); anything else (a symlink, a FIFO, a
file of another user) is not ours to keep and is only replaced.

Every job can write these files (they belong to the service user), and
root reads them (``run-job --status``), so reading is bounded and
suspicious: only a regular file of the expected owner, opened without
following a symlink and without blocking (:mod:`pc_systemd.core.safe_open`), at most
``MAX_BYTES``; no YAML aliases or deep nesting (the libyaml composer has
crashed the process on nesting); times between 1970 and 9000, numbers and
strings within bounds. Files are written 0640 (the service user's group
may read them, others not).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import yaml

from pc_systemd.core.atomic import write_atomically
from pc_systemd.core.safe_open import read_file
from pc_systemd.cron import lock

# libyaml, where PyYAML has it, reads and writes a history about ten times
# faster; the direct runner reads and writes one twice per run.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
MAX_ENTRIES = 20
STATUSES = ("started", "completed", "failed", "skipped")
# What a finished run's status makes last_completion_status.
COMPLETION = {"completed": "success", "failed": "failure", "skipped": "skipped"}
LAST_STATUSES = ("success", "failure", "skipped", "unknown")
MODE = 0o640
MAX_BYTES = 1 << 20  # 20 entries take about 4 KiB
MAX_LOADED = 1000  # entries read from a file (20 are kept)
MAX_DEPTH = 3  # mapping > history list > entry mapping
MAX_TEXT = 4096  # characters of a reason, log path or invocation ID
MAX_PID = 1 << 22  # the kernel's PID_MAX_LIMIT
MAX_COUNT = 1 << 31
# Times outside these are not a run's: they also break local-time display.
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)


class HistoryError(Exception):
    """The history file exists but cannot be used; the message says why."""


@dataclass(frozen=True)
class Entry:
    status: str  # one of STATUSES
    time: dt.datetime  # when this status was recorded (aware, UTC)
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    pid: int | None = None  # the runner's
    code: int | None = None  # exit status of the last command run (negative: its signal)
    reason: str | None = None  # why the run failed or was skipped
    log: str | None = None  # the run's log file
    invocation: str | None = None  # systemd's InvocationID of the run (systemd hosts)
    # why the run's log file misses output (it could not be opened or written)
    log_problem: str | None = None

    @property
    def duration(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return (self.end - self.start).total_seconds()

    def same_run(self, other: Entry) -> bool:
        if self.invocation is not None or other.invocation is not None:
            return self.invocation == other.invocation
        return self.pid == other.pid and self.start == other.start


@dataclass(frozen=True)
class History:
    entries: tuple[Entry, ...] = ()
    last_completion_status: str = "unknown"
    consecutive_failures: int = 0

    def started(self, entry: Entry) -> History:
        return self._trimmed(replace(self, entries=(*self.entries, entry)))

    def finished(self, entry: Entry) -> History:
        """Record a run's outcome, in place of its ``started`` entry if that is still kept."""
        entries = list(self.entries)
        for i in range(len(entries) - 1, -1, -1):
            if entries[i].status == "started" and entries[i].same_run(entry):
                entries[i] = entry
                break
        else:
            entries.append(entry)
        failures = self.consecutive_failures  # a skipped run neither breaks nor extends a streak
        if entry.status == "completed":
            failures = 0
        elif entry.status == "failed":
            failures += 1
        return self._trimmed(History(tuple(entries), COMPLETION[entry.status], failures))

    @staticmethod
    def _trimmed(history: History) -> History:
        return replace(history, entries=history.entries[-MAX_ENTRIES:])

    def last_finished(self) -> Entry | None:
        """The newest run that ran to an end (completed or failed)."""
        for entry in reversed(self.entries):
            if entry.status in ("completed", "failed"):
                return entry
        return None


def history_path(state_directory: str, slug: str) -> str:
    return os.path.join(state_directory, f"{slug}.yaml")


# -- text <-> model --------------------------------------------------------------


def _format_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ")


def _parse_time(value: Any, what: str) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value[:64])
        except ValueError:
            raise HistoryError(f"{what}: not a time: {value[:64]!r}") from None
    if not isinstance(value, dt.datetime):
        raise HistoryError(f"{what}: expected a time, got {type(value).__name__}")
    try:
        utc: dt.datetime = (value.replace(tzinfo=dt.UTC) if value.tzinfo is None
                            else value.astimezone(dt.UTC))
    except (ValueError, OverflowError):
        raise HistoryError(f"{what}: time out of range") from None
    if not EARLIEST <= utc < LATEST:
        raise HistoryError(f"{what}: time out of range: {_format_time(utc)}")
    return utc


# Bounds of the optional entry keys: (type, lowest, highest) for numbers,
# (type, None, longest) for strings.
_BOUNDS: dict[str, tuple[type, int | None, int]] = {
    "pid": (int, 0, MAX_PID),
    "code": (int, -128, 255),  # an exit status, or minus a signal number
    "reason": (str, None, MAX_TEXT),
    "log": (str, None, MAX_TEXT),
    "invocation": (str, None, MAX_TEXT),
    "log_problem": (str, None, MAX_TEXT),
}


def _optional(raw: Mapping[str, Any], key: str, what: str) -> Any:
    value = raw.get(key)
    if value is None:
        return None
    kind, low, high = _BOUNDS[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise HistoryError(f"{what}.{key}: expected {kind.__name__}, got {type(value).__name__}")
    if isinstance(value, int) and low is not None and not low <= value <= high:
        raise HistoryError(f"{what}.{key}: out of range")
    if isinstance(value, str) and len(value) > high:
        raise HistoryError(f"{what}.{key}: longer than {high} characters")
    return value


def _entry(raw: Any, what: str) -> Entry:
    if not isinstance(raw, dict):
        raise HistoryError(f"{what}: expected a mapping")
    status = raw.get("status")
    if status not in STATUSES:
        raise HistoryError(f"{what}.status: expected one of {', '.join(STATUSES)}, got {status!r}")
    start, end = raw.get("start"), raw.get("end")
    return Entry(
        status=status,
        time=_parse_time(raw.get("time"), f"{what}.time"),
        start=None if start is None else _parse_time(start, f"{what}.start"),
        end=None if end is None else _parse_time(end, f"{what}.end"),
        pid=_optional(raw, "pid", what),
        code=_optional(raw, "code", what),
        reason=_optional(raw, "reason", what),
        log=_optional(raw, "log", what),
        invocation=_optional(raw, "invocation", what),
        log_problem=_optional(raw, "log_problem", what),
    )


def _trailing_failures(entries: tuple[Entry, ...]) -> int:
    """For files of the original, which kept no count."""
    count = 0
    for entry in reversed(entries):
        if entry.status == "completed":
            break
        count += entry.status == "failed"
    return count


def _line(event: yaml.Event) -> str:
    mark = event.start_mark
    return f"line {mark.line + 1}: " if mark is not None else ""


def _check_shape(text: str) -> None:
    """Refuse what a history never holds and a loader chokes on: aliases
    (a few lines of them expand to billions of nodes) and deep nesting."""
    depth = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.AliasEvent):
            raise HistoryError(f"{_line(event)}YAML alias (never written here)")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise HistoryError(f"{_line(event)}nested too deeply")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _yaml(text: str) -> Any:
    try:
        _check_shape(text)
        return yaml.load(text, Loader=_LOADER)  # a safe loader, C or Python
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise HistoryError(f"not valid YAML{where}") from None
    except (ValueError, OverflowError, TypeError, RecursionError) as err:
        # PyYAML's own constructors raise these for impossible timestamps
        # (month 13, year 0, a +99:00 offset) and numbers of 4,300 digits.
        raise HistoryError(f"unusable value: {str(err)[:200]}") from None


def parse(text: str) -> History:
    data = _yaml(text)
    if not isinstance(data, dict):
        raise HistoryError("expected a mapping with history and last_completion_status")
    raw_entries = data.get("history")
    if not isinstance(raw_entries, list):
        raise HistoryError("history: expected a list")
    if len(raw_entries) > MAX_LOADED:
        raise HistoryError(f"history: more than {MAX_LOADED} entries")
    entries = tuple(_entry(raw, f"history[{i}]") for i, raw in enumerate(raw_entries))
    last = data.get("last_completion_status", "unknown")
    if last not in LAST_STATUSES:
        raise HistoryError(f"last_completion_status: unknown status {last!r}")
    failures = data.get("consecutive_failures")
    if failures is None:
        failures = _trailing_failures(entries)
    elif (not isinstance(failures, int) or isinstance(failures, bool)
          or not 0 <= failures <= MAX_COUNT):
        raise HistoryError(f"consecutive_failures: expected a whole number 0..{MAX_COUNT}")
    return History(entries, last, failures)


def dump(history: History) -> str:
    entries = []
    for entry in history.entries:
        raw: dict[str, Any] = {"status": entry.status, "time": _format_time(entry.time)}
        for key in ("start", "end"):
            value = getattr(entry, key)
            if value is not None:
                raw[key] = _format_time(value)
        for key in ("pid", "code", "reason", "log", "invocation", "log_problem"):
            value = getattr(entry, key)
            if value is not None:
                raw[key] = value
        entries.append(raw)
    data = {
        "history": entries,
        "last_completion_status": history.last_completion_status,
        "consecutive_failures": history.consecutive_failures,
    }
    return yaml.dump(
        data, Dumper=_DUMPER, default_flow_style=False, sort_keys=False, allow_unicode=True
    )


# -- files -----------------------------------------------------------------------


def load(path: str, owner: int | None = -1) -> History:
    """The history, empty if there is none yet; :class:`HistoryError` if unusable.

    ``owner``: the uid the file must belong to, the service user's (None:
    there is no such user); by default our own, for the service user
    reading its own files.
    """
    expected = os.geteuid() if owner == -1 else owner
    try:
        data = read_file(path, expected, MAX_BYTES)
    except FileNotFoundError:
        return History()
    except OSError as err:
        raise HistoryError(err.strerror or str(err)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise HistoryError(f"not valid UTF-8 (byte {err.start})") from None
    return parse(text)


@contextlib.contextmanager
def _locked(path: str) -> Iterator[None]:
    # Held for milliseconds: a bounded wait (lock.SHORT_HOLD), then one line.
    with lock.held(f"{path}.lock"):
        yield


def _set_aside(path: str) -> bool:
    """Keep an unusable history as ``.corrupt`` if it is a regular file of
    ours; whether it was kept."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            return False
        os.fchmod(fd, 0o600)  # whatever is in it stays between us
        os.replace(path, f"{path}.corrupt")
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def update(
    path: str,
    change: Callable[[History], History],
    warn: Callable[[str], None],
) -> History:
    """Apply ``change`` to the stored history and store the result.

    An unusable file is reported through ``warn``, kept beside as
    ``.corrupt`` if it is ours, and replaced: a broken history must not
    stop the job. Raises OSError (its lock held too long, the directory
    not writable).
    """
    with _locked(path):
        try:
            current = load(path)
        except HistoryError as err:
            kept = "kept as .corrupt, " if _set_aside(path) else ""
            warn(f"{path}: unreadable run history ({err}); {kept}starting a new one")
            current = History()
        new = change(current)
        write_atomically(path, dump(new), MODE)
    return new
