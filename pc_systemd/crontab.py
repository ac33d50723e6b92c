"""``cron-generate``: the original's cron file, written atomically."""

from __future__ import annotations

import os

from . import fanout
from .config import Config
from .errors import printable
from .jobset import job_files, load_jobs


def render(config: Config) -> tuple[str, list[str]]:
    """The cron file text and the problems (one line each) of the jobs left out.

    Same bytes as the original for the same inputs: one template per
    scheduled job in slug order, ``# Skipping disabled job <slug>`` for the
    others.  An invalid job (which crashed the original) is left out with
    a comment and its problems returned.  Large job sets are read by one
    process per CPU (:mod:`.fanout`).
    """
    paths = job_files(config)
    parts = fanout.shares(paths, fanout.workers_for(len(paths)))
    text: list[str] = []
    problems: list[str] = []
    for result in fanout.run(parts, lambda part: _render_part(config, part)):
        if result is None:
            raise OSError("a worker process failed")
        count, _, rest = result.partition("\n")
        lines = rest.split("\n", int(count))
        problems += lines[: int(count)]
        text.append(lines[int(count)] if len(lines) > int(count) else "")
    return "".join(text), problems


def _render_part(config: Config, paths: list[str]) -> str:
    """A share's cron text, after a count and the lines of its problems."""
    jobset = load_jobs(config, paths, listed=True)
    by_slug = {job.slug: job for job in jobset.jobs}
    out = []
    for path in paths:
        slug = os.path.basename(path)[: -len(".yaml")]
        job = by_slug.get(slug)
        if job is None:
            # the name of an invalid file may hold anything, a newline too
            out.append(f"# Skipping invalid job {printable(slug)}\n")
        elif not job.scheduled:
            out.append(f"# Skipping disabled job {slug}\n")
        else:
            assert job.schedule is not None
            out.append(
                config.cron_template.format(
                    source=path,
                    schedule=job.schedule.expr,
                    user=config.user,
                    command=f"{config.runner_path} --job {slug}",
                )
            )
    problems = [str(p).replace("\n", " ") for p in jobset.problems]
    return "\n".join([str(len(problems)), *problems, "".join(out)])
