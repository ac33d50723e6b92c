"""``cron-generate``: the original's cron file, written atomically.

Each job file's share of the file (its line or comment, and its problems)
is kept in a cache (:mod:`pc_systemd.model.file_cache`) and reused while the file, the
configuration and the code are unchanged; only changed files are read.
"""

from __future__ import annotations

import marshal
import os
from typing import TYPE_CHECKING, Any

from pc_systemd.model import file_cache
from pc_systemd.model.config_file import slug_of, yaml_names

if TYPE_CHECKING:  # the annotation only: cron-generate's cached path never loads the configuration
    from pc_systemd.model.config import Config

KIND = "cron"
# the file's text, its problems and its warnings (one line each)
Result = tuple[str, tuple[str, ...], tuple[str, ...]]


def join(results: list[Result]) -> tuple[str, list[str], list[str]]:
    return ("".join(r[0] for r in results), [p for r in results for p in r[1]],
            [w for r in results for w in r[2]])


def cached(
    loaded: tuple[Any, file_cache.Entries],
) -> tuple[str, list[str], list[str], str] | None:
    """(text, problems, warnings, output_crontab) from what the cache ``loaded`` when
    every job file is as cached; None when anything must be read."""
    (job_directory, output), entries = loaded
    try:
        names = yaml_names(job_directory)
    except OSError:
        return None
    valid, todo = file_cache.reuse(entries, job_directory, names)
    if todo:
        return None
    return (*join([valid[name][1] for name in names]), output)


def render(
    config: Config,
    store: file_cache.Cache | None = None,
    loaded: tuple[Any, file_cache.Entries] | None = None,
) -> tuple[str, list[str], list[str]]:
    """The cron file text, the problems (one line each) of the jobs left
    out, and warnings about jobs run-job will refuse to run here.

    Same bytes as the original for the same inputs: one template per
    scheduled job in slug order, ``# Skipping disabled job <slug>`` for the
    others.  An invalid job (which crashed the original) is left out with
    a comment and its problems returned.  Unchanged files come from what
    the cache ``loaded``, and ``store`` is updated; the files read are
    shared among one process per CPU (:mod:`pc_systemd.core.fanout`).
    """
    from pc_systemd.core import fanout  # the cached path skips it (~1.5 ms of imports)

    names = yaml_names(config.job_directory)
    (job_directory, _output), entries = loaded if loaded is not None else ((None, None), {})
    if job_directory != config.job_directory:
        entries = {}
    valid, todo = file_cache.reuse(entries, config.job_directory, names)
    results = {name: result for name, (_evidence, result) in valid.items()}
    fresh: list[tuple[str, file_cache.Identity | None, Result]] = []
    parts = fanout.shares(todo, fanout.workers_for(len(todo)))
    for blob in fanout.run(parts, lambda part: render_part(config, part)):
        if blob is None:
            raise OSError("a worker process failed")
        fresh += marshal.loads(blob)
    results.update((os.path.basename(path), result) for path, _ident, result in fresh)
    if store is not None and (todo or len(valid) != len(entries)):
        store.update((config.job_directory, config.output_crontab), valid, fresh)
    return join([results[name] for name in names])


def cron_command(runner_path: str, slug: str, delayed: bool) -> str:
    """The original's command; a job with a random_delay adds ``--scheduled``,
    so the runner waits only in runs cron starts, not in runs by hand."""
    return f"{runner_path} --job {slug}" + (" --scheduled" if delayed else "")


def render_part(config: Config, paths: list[str]) -> bytes:
    """The cron file's share of each of ``paths``, read afresh: (path,
    identity, result) of each file, marshalled (what a worker hands back)."""
    # here: only changed files are read; the cached path skips the parser's imports (~30 ms)
    from pc_systemd.model.errors import PcError, printable
    from pc_systemd.model.job import cron_host_warnings, cron_problems, load_job

    out: list[tuple[str, file_cache.Identity | None, Result]] = []
    for path in paths:
        ident = file_cache.identity(path)  # first: a change while reading is never cached
        slug = slug_of(path)
        try:
            job = load_job(path, config, True)
            refused = cron_problems(job)
            if refused:
                raise PcError(refused)
        except PcError as err:
            # the name of an invalid file may hold anything, a newline too
            problems = tuple(str(p).replace("\n", " ") for p in err.problems)
            out.append((path, ident, (f"# Skipping invalid job {printable(slug)}\n", problems, ())))
            continue
        if not job.scheduled:
            text = f"# Skipping disabled job {slug}\n"
        else:
            assert job.schedule is not None
            text = config.cron_template.format(
                source=path,
                schedule=job.schedule.expr,
                user=config.user,
                command=cron_command(config.runner_path, slug, job.random_delay > 0),
            )
        # kept in the cron file: each refused run is then a line in cron's mail
        warnings = tuple(str(w) for w in cron_host_warnings(job))
        out.append((path, ident, (text, (), warnings)))
    return marshal.dumps(out)
