"""``run-job --status`` in the original's format."""

from __future__ import annotations

from dataclasses import dataclass

from .job import Job


@dataclass(frozen=True)
class Line:
    slug: str
    job: Job | None  # None: the job file is invalid
    running_pid: int | None = None
    last_status: str = "unknown"


def format_status(lines: list[Line]) -> str:
    """``slug - Name`` (and a tab and ``{pid: N, status: running}`` while it
    runs), then indented: the description, ``tags: a, b`` and
    ``last status: ...``; ``slug ***Invalid configuration***`` for a broken file."""
    out = []
    for line in lines:
        if line.job is None:
            out.append(f"{line.slug} ***Invalid configuration***")
            continue
        head = f"{line.slug} - {line.job.name}"
        if line.running_pid is not None:
            head += f"\t{{pid: {line.running_pid}, status: running}}"
        out.append(head)
        if line.job.description:
            out.append("    " + " ".join(line.job.description.split()))
        if line.job.tag:
            out.append("    tags: " + ", ".join(line.job.tag))
        out.append(f"    last status: {line.last_status}")
    return "".join(f"{text}\n" for text in out)
