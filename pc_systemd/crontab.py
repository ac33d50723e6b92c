"""``cron-generate``: the original's cron file, written atomically."""

from __future__ import annotations

import contextlib
import os
import tempfile

from .config import Config
from .errors import Problem
from .jobset import job_files, load_jobs


def render(config: Config) -> tuple[str, list[Problem]]:
    """The cron file text and the problems of the jobs left out.

    Same bytes as the original for the same inputs: one template per
    scheduled job in slug order, ``# Skipping disabled job <slug>`` for the
    others.  An invalid job (which crashed the original) is left out with
    a comment and its problems returned.
    """
    paths = job_files(config)
    jobset = load_jobs(config, paths)
    by_slug = {job.slug: job for job in jobset.jobs}
    out = []
    for path in paths:
        slug = os.path.basename(path)[: -len(".yaml")]
        job = by_slug.get(slug)
        if job is None:
            out.append(f"# Skipping invalid job {slug}\n")
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
    return "".join(out), list(jobset.problems)


def write_atomically(path: str, text: str, mode: int = 0o644) -> None:
    """Replace ``path`` so that cron never reads a half-written file.

    The temporary name starts with a dot: Debian's cron ignores such names
    in /etc/cron.d, so even the temporary file is never read as a crontab.
    """
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".process-control.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
