"""What ``logging: file`` runs recorded about their own files, read back
for ``run-job status``, ``logs`` and the failure mail.

The wrapper (:mod:`pc_systemd.systemd.filelog`) says why it could not make
a run's file, and the check a failed run starts says when the file's file
system was full; both write one line beginning with :data:`PREFIX` to the
jobs' journal namespace, under the job's unit and the check's
(``process-control-filecheck@<slug>.service``). A file-logged job's own output goes
to its file, so these lines are nearly all that namespace holds of it
(a job could write such a line itself, through syslog: about its own runs,
which is all it could mislead).

A note belongs to a run by time, not by invocation ID (the check has its
own; a line of a process that has just exited may be stored without one:
:mod:`pc_systemd.systemd.journal`): runs of a job never overlap, and a
note logged after a run began and before the next began is that run's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from pc_systemd.model.job import LOG_STAMP
from pc_systemd.systemd import journal

PREFIX = "process-control: "
TIMEOUT = 10.0  # seconds journalctl may take
NOTE_MAX = 500  # characters of a note kept
FIELDS = "MESSAGE,_SYSTEMD_INVOCATION_ID,_SYSTEMD_UNIT"


@dataclass(frozen=True)
class Note:
    unit: str
    at: int  # when journald received it, microseconds
    invocation: str | None  # the run's, when journald could tag it
    text: str  # the line, PREFIX included


def read(units: Sequence[str], since: int, *, last: int | None = None,
         timeout: float | None = TIMEOUT) -> list[Note]:
    """The notes of ``units`` logged at or after ``since`` (microseconds),
    oldest first; ``last``: only the newest, at most that many. Raises
    JournalError (journalctl missing, failed or too slow)."""
    args = [f"--output-fields={FIELDS}", f"--since=@{since // 1_000_000}",
            *(f"_SYSTEMD_UNIT={unit}" for unit in units)]
    if last is not None:
        args += ["--reverse", f"--lines={last * 4}"]  # the job's own syslog lines, if any
    found = []
    for entry in journal.entries(args, timeout, namespace=f"--namespace={journal.NAMESPACE}"):
        at, text = int(entry["__REALTIME_TIMESTAMP"]), journal.message(entry)
        if at < since or not text.startswith(PREFIX):
            continue
        text = (text.splitlines() or [""])[0][:NOTE_MAX]  # one line, if a job sent its own
        tag = entry.get("_SYSTEMD_INVOCATION_ID")
        found.append(Note(str(entry.get("_SYSTEMD_UNIT", "")), at,
                          tag if isinstance(tag, str) else None, text))
    if last is not None:
        found = list(reversed(found[:last]))
    return found


def of_run(notes: Iterable[Note], units: Collection[str], start: int,
           end: int | None = None) -> list[str]:
    """The notes of the run that began at ``start`` (and was followed by
    another at ``end``, if known): of ``units`` (the job's unit and its file
    check's), logged between."""
    return [note.text for note in notes
            if note.unit in units and note.at >= start and (end is None or note.at < end)]


def usec(when: dt.datetime) -> int:
    return int(when.timestamp() * 1_000_000)


def stamp_time(name: str, slug: str) -> int | None:
    """When the wrapper named a run's file ``slug-STAMP[-n].log`` (the
    host's local time, to the second; microseconds); None if the name has
    no stamp."""
    rest = name[len(slug) + 1:] if name.startswith(slug + "-") else ""
    try:
        named = dt.datetime.strptime(rest[:15], LOG_STAMP)
    except ValueError:
        return None
    return usec(named.astimezone())  # a naive time: the host's zone
