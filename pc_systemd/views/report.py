"""``run-job --status`` as text: the original's lines for each job, kept
byte for byte (``slug - Name``, a tab and ``{pid: N, status: running}``
while it runs, the description, ``tags: a, b``, ``last status: ...``;
``slug ***Invalid configuration***`` for a broken file), then this tool's
own indented lines: state, last run, next run, and a broken file's errors.
Scripts that read the original's format (a line per job that does not
start with a space) keep working; the backend is named on stderr (and in
``--json``).
"""

from __future__ import annotations

import datetime as dt

from pc_systemd.model.errors import printable
from pc_systemd.model.jobinfo import JobInfo, State


# Characters that would break a line or drive the terminal (ESC sequences,
# U+2028, bidi overrides): written as escapes, as repr() writes them.
def when(value: dt.datetime) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


# The original indents a job's further lines with a tab; scripts split on it.
INDENT = "\t"


def original_lines(info: JobInfo) -> list[str]:
    summary = info.summary
    if not summary.valid:
        return [f"{printable(info.slug) or chr(39) * 2} ***Invalid configuration***"]
    head = f"{printable(info.slug)} - {printable(summary.name or '')}"
    if info.state is State.RUNNING and info.pid is not None:
        head += f"\t{{pid: {info.pid}, status: running}}"
    out = [head]
    if summary.description:
        out.append(INDENT + printable(" ".join(summary.description.split())))
    if summary.tags:
        out.append(INDENT + "tags: " + printable(", ".join(summary.tags)))
    out.append(f"{INDENT}last status: {info.last_status}")
    return out


def extra_lines(info: JobInfo, timers: bool = True) -> list[str]:
    """``timers``: jobs are scheduled by systemd timers, so a scheduled job
    without a next run is worth a line (cron hosts do not say)."""
    if not info.summary.valid:
        return [f"{INDENT}error: {printable(line)}" for line in info.summary.problems]
    if info.state is State.REFUSED:
        return [f"{INDENT}state: refused by the generator: systemd cannot carry it out",
                *(f"{INDENT}error: {printable(line)}" for line in info.problems)]
    state = str(info.state)
    if info.state is State.RUNNING:
        if info.since is not None:
            state += f" since {when(info.since)}"
        if info.pid is not None:
            state += f" (pid {info.pid})"
    elif info.state is State.NOT_GENERATED:
        state = "not generated: run `run-job --reload`"
    out = [f"{INDENT}state: {state}"]
    if info.hold:
        out.append(f"{INDENT}scheduling: {printable(info.hold)}")
    last = info.last_run
    if last is not None and last.start is not None:
        took = f", took {duration(last.duration)}" if last.duration is not None else ""
        how = last.status + (f" ({printable(last.reason)})" if last.reason else "")
        out.append(f"{INDENT}last run: {when(last.start)}{took}: {how}")
    if info.next_run is not None:
        out.append(f"{INDENT}next run: {when(info.next_run)}")
    elif info.hold and info.summary.scheduled:
        out.append(f"{INDENT}next run: none (held)")
    elif timers and info.summary.schedule is not None and info.state is not State.NOT_GENERATED:
        out.append(INDENT + ("next run: none (disabled)" if info.summary.disabled
                             else "next run: none (timer not active)"))
    if info.note:
        out.append(f"{INDENT}note: {printable(info.note)}")
    return out


def format_status(backend: str, infos: list[JobInfo]) -> str:
    lines: list[str] = []
    for info in infos:
        lines += original_lines(info)
        lines += extra_lines(info, timers=backend == "systemd")
    return "".join(f"{line}\n" for line in lines)
