"""Every job file of the job directory, as :class:`~.jobinfo.Summary`.

``--list-jobs`` and ``--status`` read every file at each call; reading and
checking a job is CPU-bound, so with many jobs each CPU takes a share
(:mod:`pc_systemd.core.fanout`), and the caller's own work (asking systemd about the
units) runs meanwhile in this process instead of waiting.
"""

from __future__ import annotations

import marshal
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from pc_systemd.core import fanout
from pc_systemd.model import file_cache
from pc_systemd.model.config import Config
from pc_systemd.model.config_file import slug_of, yaml_names
from pc_systemd.model.jobinfo import Summary

T = TypeVar("T")
KIND = "summaries"


@dataclass(frozen=True)
class Catalog:
    summaries: tuple[Summary, ...]  # every file, valid or not, in slug order
    problems: tuple[str, ...]  # one line each, for stderr

    def get(self, slug: str) -> Summary | None:
        return next((s for s in self.summaries if s.slug == slug), None)


def _read(config: Config, paths: list[str]) -> bytes:
    # here: a listing from the cache never loads the job parser (~4 ms of imports)
    from pc_systemd.model.jobset import load_jobs

    jobset = load_jobs(config, paths, listed=True)
    jobs = {job.slug: job for job in jobset.jobs}
    problems_of: dict[str, list[str]] = {}
    for problem in jobset.problems:
        problems_of.setdefault(slug_of(problem.path), []).append(str(problem))
    out = []
    for path in paths:
        slug = slug_of(path)
        job = jobs.get(slug)
        if job is not None:
            out.append(Summary.of(job).to_dict())
        else:
            lines = problems_of.get(slug) or [f"{path}:1: job: invalid"]
            out.append(Summary(slug, None, problems=tuple(lines)).to_dict())
    return marshal.dumps(out)


def read_catalog(
    config: Config, meanwhile: Callable[[], T], workers: int | None = None,
    cache: bool = True,
) -> tuple[Catalog, T]:
    """Summaries of every job file, and ``meanwhile()``'s result, computed
    in this process while forked workers read the files. Files unchanged
    since the last call come from the cache (:mod:`pc_systemd.model.file_cache`).

    Raises OSError if the job directory cannot be listed.
    """
    names = yaml_names(config.job_directory)
    store = file_cache.Cache(KIND, config.path) if cache else None
    loaded = store.load() if store is not None else None
    data, entries = loaded if loaded is not None else (None, {})
    if data != config.job_directory:
        entries = {}
    valid, todo = file_cache.reuse(entries, config.job_directory, names)
    identities = [file_cache.identity(path) for path in todo]  # before reading
    read, result = _read_files(config, todo, meanwhile, workers)
    by_name = {name: Summary.from_dict(summary) for name, (_evidence, summary) in valid.items()}
    by_name.update((os.path.basename(path), s) for path, s in zip(todo, read, strict=True))
    summaries = [by_name[name] for name in names]
    if store is not None and (todo or len(valid) != len(entries)):
        store.update(config.job_directory, valid, [
            (path, ident, s.to_dict())
            for path, ident, s in zip(todo, identities, read, strict=True)
        ])
    problems = tuple(line for s in summaries for line in s.problems)
    return Catalog(tuple(summaries), problems), result


def _read_files(
    config: Config, paths: list[str], meanwhile: Callable[[], T], workers: int | None
) -> tuple[list[Summary], T]:
    count = workers or fanout.workers_for(len(paths))
    if count <= 1:
        result = meanwhile()
        blobs: list[bytes | None] = [_read(config, paths)] if paths else []
    else:
        here: list[T] = []
        parts: list[list[str]] = [[], *fanout.shares(paths, count)]
        mine = parts[0]

        def work(part: list[str]) -> bytes:
            # The first part runs in this process, after the workers forked:
            # it is the caller's own work, not a share of the files.
            if part is mine:
                here.append(meanwhile())
                return marshal.dumps([])
            return _read(config, part)

        blobs = fanout.run(parts, work)
        result = here[0]
    summaries: list[Summary] = []
    for blob in blobs:
        if blob is None:
            raise OSError("a worker reading the job files failed")
        summaries.extend(Summary.from_dict(item) for item in marshal.loads(blob))
    return summaries, result
