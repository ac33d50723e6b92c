"""Run history: ``<state_directory>/<slug>.yaml``, as the original keeps it.

The file holds ``history`` (the last 20 entries, oldest first) and
``last_completion_status`` (``success``, ``failure``, ``skipped`` or
``unknown``), the two keys the original wrote and ``check-jobs-icinga``
reads, plus ``consecutive_failures`` for the failure-mail threshold. An
entry is one run: written as ``started`` when it begins, then rewritten in
place as ``completed``, ``failed`` or ``skipped``; a run whose runner died
stays ``started``. The direct runner tells its runs apart by its PID and
start time, systemd's hooks (:mod:`.record`) by the run's ``invocation``
ID. Its ``time`` (the original's only key) is when the
status was recorded; times are UTC without a zone, as the original wrote
them.

The original rewrote the file in place, so a crash or two runs at once
could leave it empty or half-written. Here every change is a
read-modify-write under an flock of ``<slug>.yaml.lock``, and the new text
replaces the file by rename, so readers see the old file or the new one.
A file that cannot be read is reported, kept as ``<slug>.yaml.corrupt`` and
replaced by a fresh history.

On systemd hosts root writes the files (the hooks run as root) into a
directory the service user may own: the files are handed to ``owner``
through their descriptors and never opened through a symlink, so a planted
link cannot make root write or chown anything else.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import yaml

from .atomic import write_atomically

# libyaml, where PyYAML has it, reads and writes a history about ten times
# faster; systemd's hooks read and write one twice per run.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
MAX_ENTRIES = 20
STATUSES = ("started", "completed", "failed", "skipped")
# What a finished run's status makes last_completion_status.
COMPLETION = {"completed": "success", "failed": "failure", "skipped": "skipped"}
LAST_STATUSES = ("success", "failure", "skipped", "unknown")


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
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise HistoryError(f"{what}: not a time: {value!r}") from None
    if not isinstance(value, dt.datetime):
        raise HistoryError(f"{what}: expected a time, got {type(value).__name__}")
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _optional(raw: Mapping[str, Any], key: str, kind: type, what: str) -> Any:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise HistoryError(f"{what}.{key}: expected {kind.__name__}, got {type(value).__name__}")
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
        pid=_optional(raw, "pid", int, what),
        code=_optional(raw, "code", int, what),
        reason=_optional(raw, "reason", str, what),
        log=_optional(raw, "log", str, what),
        invocation=_optional(raw, "invocation", str, what),
    )


def _trailing_failures(entries: tuple[Entry, ...]) -> int:
    """For files of the original, which kept no count."""
    count = 0
    for entry in reversed(entries):
        if entry.status == "completed":
            break
        count += entry.status == "failed"
    return count


def parse(text: str) -> History:
    try:
        data = yaml.load(text, Loader=_LOADER)  # a safe loader, C or Python
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise HistoryError(f"not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise HistoryError("expected a mapping with history and last_completion_status")
    raw_entries = data.get("history")
    if not isinstance(raw_entries, list):
        raise HistoryError("history: expected a list")
    entries = tuple(_entry(raw, f"history[{i}]") for i, raw in enumerate(raw_entries))
    last = data.get("last_completion_status", "unknown")
    if last not in LAST_STATUSES:
        raise HistoryError(f"last_completion_status: unknown status {last!r}")
    failures = data.get("consecutive_failures")
    if failures is None:
        failures = _trailing_failures(entries)
    elif not isinstance(failures, int) or isinstance(failures, bool) or failures < 0:
        raise HistoryError("consecutive_failures: expected a whole number >= 0")
    return History(entries, last, failures)


def dump(history: History) -> str:
    entries = []
    for entry in history.entries:
        raw: dict[str, Any] = {"status": entry.status, "time": _format_time(entry.time)}
        for key in ("start", "end"):
            value = getattr(entry, key)
            if value is not None:
                raw[key] = _format_time(value)
        for key in ("pid", "code", "reason", "log", "invocation"):
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


def load(path: str) -> History:
    """The history, empty if there is none yet; :class:`HistoryError` if unusable."""
    try:
        # O_NOFOLLOW: root (systemd's hooks) must not read whatever a planted
        # symlink points at; such a file is reported as unusable. O_NONBLOCK:
        # nor hang on a planted FIFO.
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
        with open(fd, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return History()
    except (OSError, UnicodeDecodeError) as err:
        raise HistoryError(getattr(err, "strerror", None) or str(err)) from None
    return parse(text)


Owner = tuple[int, int]  # uid, gid


def _hand_over(fd: int, owner: Owner | None) -> None:
    """Give the open file to ``owner``, unless it is not ours to give: a
    hard link to some other file is left alone."""
    if owner is None:
        return
    st = os.fstat(fd)
    if (st.st_uid, st.st_gid) != owner and stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
        os.fchown(fd, *owner)


@contextlib.contextmanager
def _locked(path: str, owner: Owner | None = None) -> Iterator[None]:
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    try:
        # A lock file root created must stay openable for the service user's
        # direct runner (O_RDWR), should the host ever run jobs that way.
        _hand_over(fd, owner)
        fcntl.flock(fd, fcntl.LOCK_EX)  # held for milliseconds: waiting is right
        yield
    finally:
        os.close(fd)


def update(
    path: str,
    change: Callable[[History], History],
    warn: Callable[[str], None],
    owner: Owner | None = None,
) -> History:
    """Apply ``change`` to the stored history and store the result.

    An unusable file is reported through ``warn``, kept beside as
    ``.corrupt`` and replaced: a broken history must not stop the job.
    ``owner`` (uid, gid): whom the file and its lock file belong to when
    root writes them.
    """
    with _locked(path, owner):
        try:
            current = load(path)
        except HistoryError as err:
            warn(f"{path}: unreadable run history ({err}); starting a new one")
            with contextlib.suppress(OSError):
                os.replace(path, f"{path}.corrupt")
            current = History()
        new = change(current)
        write_atomically(path, dump(new), prepare=lambda fd: _hand_over(fd, owner))
    return new
