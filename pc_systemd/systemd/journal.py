"""The journal edge: a job's output and its runs, read with ``journalctl``.

systemd logs each run of a unit under the run's invocation ID: its own
messages about the unit ("Starting", "Main process exited", "Failed with
result", "Deactivated successfully") carry ``INVOCATION_ID``, the job's
output lines ``_SYSTEMD_INVOCATION_ID``. journald reads that ID from the
unit's cgroup when a line arrives, so the last line of a process that has
already exited is sometimes stored without it (tests/systemd_box.py
measured 1 run in 20 for a oneshot ``echo``). Runs of one unit never
overlap, so such a line belongs to the run that started last before it:
the output of a run is every line of the unit from its start to the next
run's start, less lines tagged with another run.

A job with ``retry`` (``Restart=on-failure``) runs each attempt under an
invocation ID of its own. An attempt that failed and was restarted has
systemd's "Scheduled restart job" record after its failure; the last
attempt has none, or (when the start limit refused the restart that was
scheduled: every attempt failed) a second failure record after it. A run
is its attempts together: it starts with the first, ends and has the
result of the last; an attempt that was retried is not a failed run.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any

from pc_systemd.core.fanout import Child
from pc_systemd.model.jobinfo import LastRun, timestamp
from pc_systemd.systemd.unit_result import CLD_NAMES, outcome, signal_number

JOURNALCTL = "journalctl"
# The job services' journal namespace (LogNamespace= in templates/job.service.j2):
# their output is there, systemd's records of their runs in the system journal.
# "+" reads both, and a developer, who may read only the namespace, gets that.
NAMESPACE = "process-control"
BOTH = f"--namespace=+{NAMESPACE}"
# MESSAGE_IDs of systemd's messages about a unit (catalog/systemd.catalog).
STARTING = "7d4958e842da4a758f6c1cdc7b36dcc5"
EXITED = "98e322203f7a4ed290d09fe03c09fe15"  # EXIT_CODE, EXIT_STATUS
FAILED = "d9b373ed55a64feb8242e02dbe79a49c"  # UNIT_RESULT
SUCCEEDED = "7ad2d189f7e94e70a38c781354912448"  # "Deactivated successfully"
RESTARTING = "5eb03494b6584870a536b337290809b3"  # "Scheduled restart job" (Restart=)
RUN_MESSAGES = (STARTING, EXITED, FAILED, SUCCEEDED, RESTARTING)
RUN_FIELDS = ("INVOCATION_ID,MESSAGE_ID,UNIT,UNIT_RESULT,EXIT_CODE,EXIT_STATUS,"
              "_SOURCE_REALTIME_TIMESTAMP")
OUTPUT_FIELDS = "MESSAGE,_SYSTEMD_INVOCATION_ID"


class JournalError(Exception):
    """journalctl is missing or failed; the message is one line."""


@dataclass(frozen=True)
class Run:
    """One run of a unit, from systemd's own messages about it."""

    unit: str
    invocation: str
    start: int  # realtime, microseconds
    end: int | None  # None: still running (or its end is not in the journal)
    result: str | None  # systemd's Result: success, exit-code, timeout, ...
    exit_code: str | None  # EXIT_CODE: exited | killed | dumped
    exit_status: int | None
    attempts: int = 1  # with retry: how many attempts the run took

    def last_run(self, name: str, timeout_minutes: float) -> LastRun:
        if self.result is None:
            return LastRun("unknown", timestamp(self.start), None, None, self.unit)
        code = CLD_NAMES.get(self.exit_code or "", 0)
        done = outcome(name, self.result, code, self.exit_status or 0, timeout_minutes)
        end = timestamp(self.end) if self.end is not None else None
        return LastRun(done.status, timestamp(self.start), end, done.reason, self.unit)


@dataclass
class _RunBuilder:
    unit: str
    invocation: str
    start: int
    end: int | None = None
    result: str | None = None
    exit_code: str | None = None
    exit_status: int | None = None
    failed_last: int | None = None  # the latest failure record (there may be two)
    restarted: int | None = None  # when systemd scheduled a restart after this attempt
    attempts: int = 1

    restarts: bool = False  # the unit has Restart= (the job has retry)

    @property
    def retried(self) -> bool:
        """An attempt systemd started again, or (``restarts``) will start
        again once the delay is over: not a run's end (module docstring).
        The restart record comes as the delay ends, so until then only the
        unit's having ``Restart=`` says the failure is not the run's end."""
        if self.restarted is not None:
            return self.failed_last is None or self.failed_last < self.restarted
        return self.restarts and self.result is not None and self.result != "success"

    def fold(self, earlier: _RunBuilder) -> None:
        """Take in a retried attempt before this one: the run began with it."""
        self.start = min(self.start, earlier.start)
        self.attempts += earlier.attempts

    def add(self, entry: dict[str, Any]) -> None:
        when = record_time(entry)
        kind = entry.get("MESSAGE_ID")
        if kind == STARTING:
            self.start = when
        elif kind == EXITED:
            self.exit_code = entry.get("EXIT_CODE")
            status = entry.get("EXIT_STATUS")
            if not isinstance(status, str):
                self.exit_status = None
            elif self.exit_code in ("killed", "dumped"):
                self.exit_status = signal_number(status)
            else:
                self.exit_status = int(status) if status.isdigit() else None
        elif kind == FAILED:
            # Read forwards or backwards: the end is the first failure record
            # (a second one comes when a scheduled restart is refused).
            self.result = entry.get("UNIT_RESULT") or "failed"
            self.end = when if self.end is None else min(self.end, when)
            self.failed_last = max(self.failed_last or when, when)
        elif kind == SUCCEEDED:
            self.result, self.end = "success", when
        elif kind == RESTARTING:
            self.restarted = when
        self.start = min(self.start, when)

    def build(self) -> Run:
        return Run(self.unit, self.invocation, self.start, self.end, self.result,
                   self.exit_code, self.exit_status, self.attempts)


def _journalctl(args: list[str], namespace: str = BOTH) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
            [JOURNALCTL, namespace, "--quiet", "--no-pager", "--output=json", *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, "SYSTEMD_COLORS": "0", "SYSTEMD_PAGER": ""},
        )
    except OSError as err:
        raise JournalError(f"cannot run {JOURNALCTL}: {err.strerror}") from None


def entries(args: list[str], timeout: float | None = None,
            namespace: str = BOTH) -> Iterator[dict[str, Any]]:
    """Entries as journalctl prints them; stopping early ends journalctl.
    ``timeout``: seconds journalctl may take in all (then :class:`JournalError`)."""
    proc = _journalctl(args, namespace)
    assert proc.stdout is not None and proc.stderr is not None
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        proc.kill()

    timer = threading.Timer(timeout, expire) if timeout is not None else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        for line in proc.stdout:
            yield json.loads(line)
    finally:
        if timer is not None:
            timer.cancel()
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        err = proc.stderr.read().decode(errors="replace").strip()
        proc.stderr.close()
        code = proc.wait()
        if expired.is_set():
            raise JournalError(f"{JOURNALCTL}: timed out after {timeout} s")
        if code not in (0, -9) and err:
            raise JournalError(f"journalctl: {err.splitlines()[-1]}")


def message(entry: dict[str, Any]) -> str:
    """MESSAGE as text: journalctl gives non-UTF-8 data as a list of bytes."""
    value = entry.get("MESSAGE")
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return bytes(value).decode(errors="replace")
    return ""


def _run_matches(units: list[str]) -> list[str]:
    # One journalctl match set: _PID=1 AND (UNIT=a OR ...) AND (MESSAGE_ID=x OR ...).
    return ["_PID=1", *(f"UNIT={u}" for u in units), *(f"MESSAGE_ID={m}" for m in RUN_MESSAGES)]


def runs(unit: str, restarts: bool = False) -> list[Run]:
    """The unit's runs in the journal, oldest first; ``restarts``: the unit
    has ``Restart=`` (a failed attempt whose restart is not logged yet is
    waiting for it)."""
    builders: dict[str, _RunBuilder] = {}
    for entry in entries([f"--output-fields={RUN_FIELDS}", *_run_matches([unit])]):
        invocation = entry.get("INVOCATION_ID")
        if not invocation:
            continue
        builder = builders.get(invocation)
        if builder is None:
            builder = builders[invocation] = _RunBuilder(
                unit, invocation, record_time(entry), restarts=restarts)
        builder.add(entry)
    found = list(_folded(sorted(builders.values(), key=lambda b: b.start)))
    return found or _runs_from_output(unit)


def _folded(attempts: list[_RunBuilder]) -> Iterator[Run]:
    """Runs from one unit's attempts, oldest first: retried attempts go into
    the run of the attempt after them. Trailing retried attempts are a run
    whose end is not known (its next attempt has not started)."""
    earlier: list[_RunBuilder] = []
    for attempt in attempts:
        if attempt.retried:
            earlier.append(attempt)
            continue
        for before in earlier:
            attempt.fold(before)
        earlier = []
        yield attempt.build()
    if earlier:
        last = earlier[-1]
        for before in earlier[:-1]:
            last.fold(before)
        yield replace(last.build(), result=None, end=None)


def _runs_from_output(unit: str) -> list[Run]:
    """The runs seen in the unit's own output, for a reader who may not read
    systemd's records (the developer group reads only the jobs' namespace):
    started at their first line, their end and result not known here."""
    first: dict[str, int] = {}
    args = ["--output-fields=_SYSTEMD_INVOCATION_ID", f"_SYSTEMD_UNIT={unit}"]
    for entry in entries(args):
        tag = entry.get("_SYSTEMD_INVOCATION_ID")
        if isinstance(tag, str) and tag not in first:
            first[tag] = int(entry["__REALTIME_TIMESTAMP"])
    return [Run(unit, tag, start, None, None, None, None) for tag, start in first.items()]


def last_runs(units: list[str], restarting: frozenset[str] = frozenset()) -> dict[str, Run]:
    """The newest finished run of each unit, in one journalctl reading the
    journal backwards and stopping once every unit has one (with the
    attempts it took: the retried ones before it are read too);
    ``restarting``: the units with ``Restart=`` (see :func:`runs`)."""
    if not units:
        return {}
    found: dict[str, Run] = {}
    reading: dict[str, _LastRun] = {unit: _LastRun() for unit in units}
    args = ["--reverse", f"--output-fields={RUN_FIELDS}", *_run_matches(units)]
    for entry in entries(args):
        unit, invocation = entry.get("UNIT"), entry.get("INVOCATION_ID")
        if not unit or not invocation or unit in found or unit not in reading:
            continue
        last = reading[unit]
        if last.current is not None and last.current.invocation != invocation:
            done = last.close()  # an older attempt begins: the one read is whole
            if done is not None:
                found[unit] = done
                if len(found) == len(units):
                    break
                continue
        if last.current is None:
            last.current = _RunBuilder(unit, invocation, record_time(entry),
                                       restarts=unit in restarting)
        last.current.add(entry)
    for unit, last in reading.items():
        if unit not in found:
            done = last.close(at_end=True)
            if done is not None:
                found[unit] = done
    return found


@dataclass
class _LastRun:
    """One unit's newest finished run, read backwards attempt by attempt."""

    current: _RunBuilder | None = None  # the attempt being read
    run: _RunBuilder | None = None  # the run's last attempt, once read

    def close(self, at_end: bool = False) -> Run | None:
        """The attempt read is whole: the finished run, once it is known."""
        attempt, self.current = self.current, None
        if attempt is None:
            return self.run.build() if self.run is not None else None
        if self.run is not None:
            if attempt.retried:
                self.run.fold(attempt)
                return self.run.build() if at_end else None
            return self.run.build()
        if attempt.result is None or attempt.retried:
            # still running, or an attempt of a run not finished: read on back
            return None
        self.run = attempt
        return self.run.build() if at_end else None


# How far back a failure streak is counted (runs of the job's units).
STREAK_LIMIT = 10_000


def streak(
    units: list[str], failed: str, limit: int = STREAK_LIMIT, restarts: bool = False,
    since: int | None = None,
) -> tuple[int, Run | None]:
    """How many runs of ``units`` in a row have failed, counting the run
    ``failed`` (an invocation ID known to have failed, whose own records may
    not be in the journal yet), and that run as far as the journal has it.

    The journal is read backwards and only until the last success, or
    ``limit`` runs, or (``since``, microseconds: a ``run-job reset``) the
    first run that ended before then.
    """
    count = 1
    this: _RunBuilder | None = None
    current: _RunBuilder | None = None
    seen = 0

    def close(builder: _RunBuilder | None) -> bool:
        """Count a run read whole; True when the streak ends there."""
        nonlocal count
        if builder is None or builder.invocation == failed or builder.result is None:
            return False
        if builder.retried:
            return False  # an attempt that was retried is not a failed run
        if builder.result == "success":
            return True
        if since is not None and (builder.end or builder.start) < since:
            return True
        count += 1
        return False

    args = ["--reverse", f"--output-fields={RUN_FIELDS}", *_run_matches(units)]
    for entry in entries(args):
        invocation, unit = entry.get("INVOCATION_ID"), entry.get("UNIT")
        if not invocation or not unit:
            continue
        if current is None or current.invocation != invocation:
            if close(current):
                break
            seen += 1
            if seen > limit:
                break
            current = _RunBuilder(unit, invocation, record_time(entry), restarts=restarts)
            if invocation == failed:
                this = current
        current.add(entry)
    else:
        close(current)
    return count, this.build() if this is not None else None


class LastRuns:
    """:func:`last_runs` in a child process started on entry, so the
    journal is read while the caller does something else; leaving the block
    without :meth:`result` (the caller failed) ends the child."""

    def __init__(self, units: list[str], restarting: frozenset[str] = frozenset()) -> None:
        self.units = units
        self.restarting = restarting
        self._child: Child | None = None

    def __enter__(self) -> LastRuns:
        if self.units:
            self._child = Child(self._read)
        return self

    def _read(self) -> bytes:
        """In the child: the runs found, or why the journal could not be read."""
        try:
            found = last_runs(self.units, self.restarting)
        except JournalError as err:
            return json.dumps({"problem": str(err)}).encode()
        return json.dumps({"runs": {unit: asdict(run) for unit, run in found.items()}}).encode()

    def result(self) -> tuple[dict[str, Run], str | None]:
        """The runs found, and why the journal could not be read, if it could not."""
        child, self._child = self._child, None
        if child is None:
            return {}, None
        data = child.collect()
        if not data:
            return {}, "reading the journal failed"
        answer = json.loads(data)
        if "problem" in answer:
            return {}, str(answer["problem"])
        return {unit: Run(**fields) for unit, fields in answer["runs"].items()}, None

    def __exit__(self, *exc: object) -> None:
        child, self._child = self._child, None
        if child is not None:
            child.kill()


def record_time(entry: dict[str, Any]) -> int:
    """When systemd logged one of its records of a run (microseconds): its
    own clock's reading, where journald kept it, rather than when journald
    received the record, which a busy journald can make later than the
    run's start (a 1.2 s timeout once measured 1.193 s)."""
    stamp = entry.get("_SOURCE_REALTIME_TIMESTAMP")
    return int(stamp) if isinstance(stamp, str) and stamp.isdigit() else int(
        entry["__REALTIME_TIMESTAMP"])


def of_run(entry: dict[str, Any], invocation: str | None, start: int,
           end: int | None = None) -> bool:
    """Whether an output entry of a unit belongs to the run ``invocation``
    (None: not known yet) that started at ``start`` and, if ``end`` is
    given, was followed by another run then (microseconds): logged in that
    time and tagged with that run, or untagged (see the module's docstring)."""
    when = int(entry["__REALTIME_TIMESTAMP"])
    if when < start or (end is not None and when >= end):
        return False
    tag = entry.get("_SYSTEMD_INVOCATION_ID")
    return not tag or invocation is None or tag == invocation


def output(
    unit: str, invocation: str | None, start: int | None, end: int | None = None, *,
    last: int | None = None, timeout: float | None = None,
) -> Iterator[str]:
    """The output of the run ``invocation`` of ``unit``, which started at
    ``start`` (None: not known, so only the lines tagged with the run) and
    was followed by another run at ``end`` (:func:`of_run`; ``invocation``
    None: every line of that time, given a ``start``); ``last``: only
    the last entries, at most that many; ``timeout`` as for :func:`entries`."""
    args = [f"--output-fields={OUTPUT_FIELDS}", f"_SYSTEMD_UNIT={unit}"]
    if start is None:
        args.append(f"_SYSTEMD_INVOCATION_ID={invocation}")
    else:
        args.append(f"--since=@{start // 1_000_000}")
    if end is not None:
        args.append(f"--until=@{end // 1_000_000 + 1}")
    if last is None:
        for entry in entries(args, timeout):
            if of_run(entry, invocation, start or 0, end):
                yield message(entry)
        return
    # Read from the end: with --since, journalctl's --lines counts from the
    # first entry (a loud run's mail showed its lines 181-200 of a million).
    newest = [message(entry) for entry in entries([*args, "--reverse", f"--lines={last}"], timeout)
              if of_run(entry, invocation, start or 0, end)]
    yield from reversed(newest)


def output_deleted(run: Run) -> bool:
    """Whether journald has deleted output of the time of ``run``: it
    deletes the oldest files first (journald@process-control.conf.d), so
    a run that began before the oldest entry the jobs' namespace still
    holds has lost its output, or its first lines (if it printed any) --
    unless that entry is the namespace's first ever (sequence number 1 in
    its cursor): nothing was deleted."""
    for entry in entries(["--output-fields=_SYSTEMD_INVOCATION_ID"],
                         timeout=30, namespace=f"--namespace={NAMESPACE}"):
        oldest = int(entry["__REALTIME_TIMESTAMP"])
        return oldest > run.start and _seqnum(entry.get("__CURSOR")) != 1
    return False  # nothing kept at all: no run printed anything, or all is gone


def _seqnum(cursor: object) -> int | None:
    """An entry's sequence number, from its cursor (``...;i=<hex>;...``)."""
    if isinstance(cursor, str):
        for part in cursor.split(";"):
            if part.startswith("i="):
                try:
                    return int(part[2:], 16)
                except ValueError:
                    return None
    return None


# journald keeps a file per output stream it reads, named device:inode, in
# its runtime directory: anyone may list them (the directory is 0755), only
# root read them (they name the stream's unit: "UNIT=..."). One is written
# once journald has read the stream's header (at once, unless journald is
# busy or just starting), and removed once it has read and stored the
# stream to its end.
STREAMS = f"/run/systemd/journal.{NAMESPACE}/streams"
# And no new entry of the unit came for this long (seconds): for a stream
# journald has not even begun to read.
QUIET = 1.0
SETTLE_POLL = 0.25
# A follower's wait (Follower.finish): it saw the run's lines as they came,
# so the unit quiet this long is enough (what run-job waited before the
# wait for streams); root's sync, looked at this often, says more.
FOLLOW_QUIET = 0.3
SYNC_POLL = 0.01


def _stream_unit(path: str) -> str | None:
    """The unit a stream file names; None where it cannot be read (only
    root may) or names none."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            for line in file:
                if line.startswith("UNIT="):
                    return line[5:].rstrip("\n")
    except OSError:
        return None
    return None


def _streams_begun(since: float, until: float, unit: str | None = None) -> bool:
    """Whether journald still reads a stream that began between ``since``
    and ``until`` (seconds since the epoch): one of ``unit``'s, where its
    file says whose it is (root), any where it cannot be read (others: a
    long run of another job begun meanwhile is waited for, to the bound)."""
    directory = STREAMS
    try:
        names = os.listdir(directory)
    except OSError:
        return False  # journald has read no stream yet: nothing is open
    for name in names:
        path = os.path.join(directory, name)
        try:
            begun = os.stat(path).st_mtime
        except OSError:
            continue  # closed meanwhile
        if not since <= begun <= until:
            continue
        owner = _stream_unit(path) if unit is not None else None
        if owner is None or owner == unit:
            if owner is None and not os.path.exists(path):
                continue  # closed while we read it
            return True
    return False


def _newest(unit: str, timeout: float | None) -> str | None:
    """The cursor of the unit's newest output entry."""
    for entry in entries(["--lines=1", "--output-fields=_SYSTEMD_INVOCATION_ID",
                          f"_SYSTEMD_UNIT={unit}"], timeout):
        cursor = entry.get("__CURSOR")
        return cursor if isinstance(cursor, str) else None
    return None


def settle(unit: str, start: int | None, end: int | None, bound: float,
           quiet: float = QUIET, timeout: float | None = None, *,
           newest: Callable[[], str | None] | None = None,
           pause: Callable[[float], None] = time.sleep) -> bool:
    """Wait, at most ``bound`` seconds, until journald has stored the output
    of the run of ``unit`` that started at ``start`` and ended at ``end``
    (microseconds; None: not known, now). journald may still be writing a
    loud run's lines half a minute after it ended: the run wrote them into
    its socket's buffer and was gone (``journalctl --sync``, which needs
    root, only writes out what journald has read).

    Done once journald reads no stream that began while the run ran (the
    run's processes' streams among them; only the unit's own where root
    may read whose a stream is) and no new entry of the unit came for
    ``quiet`` seconds. False when the bound was reached first: output may
    still be arriving. ``timeout``: for each journalctl, as for
    :func:`entries`. ``newest``: the newest entry of the unit the caller
    has seen (a follower), instead of asking journalctl; ``pause``: how to
    wait between looks (a follower shows the lines that come meanwhile).
    """
    since = start / 1_000_000 - 1 if start is not None else 0.0
    until = (end / 1_000_000 if end is not None else time.time()) + 1
    deadline = time.monotonic() + bound
    look = newest if newest is not None else (lambda: _newest(unit, timeout))
    last: str | None = None
    still = 0.0  # since when the unit's newest entry is the same
    while True:
        latest, now = look(), time.monotonic()
        if not still or latest != last:
            last, still = latest, now
        if now - still >= quiet and not _streams_begun(since, until, unit):
            return True
        if now >= deadline:
            return False
        # not past the moment the unit has been quiet long enough, or the bound
        wait = min(SETTLE_POLL, deadline - now, max(quiet - (now - still), 0.0) or SETTLE_POLL)
        pause(max(wait, 0.01))


def _sync() -> subprocess.Popen[bytes] | None:
    """``journalctl --sync`` of the jobs' namespace, started (root only:
    None for others). journald answers it once it has read and stored what
    was queued before: every stream begun by then read to its end (it
    took 7 s after a 1,000,000-line run ended)."""
    if os.geteuid() != 0:
        return None
    try:
        return subprocess.Popen([JOURNALCTL, f"--namespace={NAMESPACE}", "--sync"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    except OSError:
        return None


class Follower:
    """The output of a unit's current run as it is logged: ``journalctl
    --follow`` on the unit from ``since``; lines tagged with another run
    are dropped (see the module's docstring for untagged ones)."""

    def __init__(self, unit: str, since_usec: int) -> None:
        self.unit = unit
        self.since = since_usec
        self.invocation: str | None = None
        self.cursor: str | None = None
        # the invocations whose lines were shown, in order (with retry: an
        # attempt that printed, however briefly it ran)
        self.tags: list[str] = []
        self._buffer = b""
        self._proc: subprocess.Popen[bytes] | None = _journalctl(
            ["--follow", "--lines=all", f"--output-fields={OUTPUT_FIELDS}",
             f"--since=@{since_usec // 1_000_000}", f"_SYSTEMD_UNIT={unit}"])

    def fileno(self) -> int:
        assert self._proc is not None and self._proc.stdout is not None
        return self._proc.stdout.fileno()

    def _lines(self, entries: list[dict[str, Any]]) -> list[str]:
        out = []
        for entry in entries:
            self.cursor = entry.get("__CURSOR", self.cursor)
            if of_run(entry, self.invocation, self.since):
                out.append(message(entry))
                tag = entry.get("_SYSTEMD_INVOCATION_ID")
                if isinstance(tag, str) and tag not in self.tags:
                    self.tags.append(tag)
        return out

    def read(self, wait: float) -> list[str]:
        """Lines that arrived, waiting at most ``wait`` seconds for some."""
        if self._proc is None or self._proc.stdout is None:
            time.sleep(wait)
            return []
        ready, _, _ = select.select([self.fileno()], [], [], wait)
        if not ready:
            return []
        data = os.read(self.fileno(), 1 << 16)
        if not data:
            self._stop()
            return []
        self._buffer += data
        *complete, self._buffer = self._buffer.split(b"\n")
        return self._lines([json.loads(line) for line in complete if line.strip()])

    def finish(self, show: Callable[[str], None], bound: float, limit: float) -> bool:
        """Show the rest of the run's output, once the run has ended: wait
        until journald has stored it (as :func:`settle` does; root's
        ``journalctl --sync`` first), showing lines as they come, then read
        anew from the last entry shown, so nothing still in the pipe is lost.
        The wait ends once no new line came for ``bound`` seconds (a round
        of :func:`settle`), or after ``limit`` in all. False when it ended
        so: output may still be arriving."""
        ended = time.time_ns() // 1000
        begun = moved = time.monotonic()  # moved: when the last line came

        def pause(seconds: float) -> None:
            nonlocal moved
            cursor = self.cursor
            for line in self.read(seconds):
                show(line)
            if self.cursor != cursor:
                moved = time.monotonic()

        def left() -> float:
            return min(moved + bound, begun + limit) - time.monotonic()

        quiet = FOLLOW_QUIET
        syncing = _sync()
        if syncing is not None:
            try:
                while syncing.poll() is None and left() > 0:
                    pause(SYNC_POLL)
            finally:
                if syncing.poll() is None:
                    syncing.kill()
                syncing.wait()
            if syncing.returncode == 0:
                quiet = 0.0  # journald has read every stream begun before the sync
        while True:
            # The quiet time counts from the round's start (newest: the same
            # throughout), not from the last line shown: lines of a stream
            # journald reads say nothing of one it has not begun to read,
            # and a quiet run is not kept waiting longer than it was before
            # streams were looked at. A line that came during a round gives
            # the wait more time.
            settled = settle(self.unit, self.since, ended, max(left(), 0.0), quiet,
                             newest=lambda: None, pause=pause)
            if settled or left() <= 0:
                break
        self._stop()
        self._buffer = b""
        start = (f"--after-cursor={self.cursor}" if self.cursor is not None
                 else f"--since=@{self.since // 1_000_000}")
        args = [start, f"--output-fields={OUTPUT_FIELDS}", f"_SYSTEMD_UNIT={self.unit}"]
        for line in self._lines(list(entries(args))):
            show(line)
        return settled

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

    def close(self) -> None:
        self._stop()
