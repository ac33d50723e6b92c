"""A cache of job summaries for ``run-job --status`` and ``--list-jobs``.

Reading and checking a job file costs about 0.2 ms; a status over a
thousand jobs would spend most of its time re-reading files that have not
changed since the last one. A summary is reused only while its file's
identity is unchanged (inode, size, modification and change time, of the
symlink and of its target), and the whole cache only while the global
configuration file, the job directory and this package's code are the same
as when it was written (all of them change how a job file reads).

Each user keeps their own, in ``$XDG_CACHE_HOME/process-control/`` (else
``~/.cache/process-control/``), one file per job directory, and trusts only
a file they own. A cache that cannot be read is ignored, one that cannot
be written is not written: it only saves time.
"""

from __future__ import annotations

import json
import os
from typing import Any

from .config import Config
from .jobinfo import Summary

FORMAT = 1
_PACKAGE = os.path.dirname(os.path.abspath(__file__))

Identity = list[int]


def identity(path: str) -> Identity | None:
    """What changes when the file (or, for a symlink, its target) changes."""
    try:
        link = os.lstat(path)
        target = os.stat(path) if link.st_mode & 0o170000 == 0o120000 else link
    except OSError:
        return None
    out = [link.st_ino, link.st_size, link.st_mtime_ns, link.st_ctime_ns]
    if target is not link:
        out += [target.st_dev, target.st_ino, target.st_size, target.st_mtime_ns,
                target.st_ctime_ns]
    return out


def _code_stamp() -> int:
    newest = 0
    for name in os.listdir(_PACKAGE):
        if name.endswith(".py"):
            newest = max(newest, os.stat(os.path.join(_PACKAGE, name)).st_mtime_ns)
    return newest


def context_key(config: Config) -> list[Any]:
    config_id = identity(config.path) if config.path is not None else None
    return [FORMAT, config.path, config_id, config.job_directory,
            os.path.realpath(config.job_directory), _code_stamp()]


def cache_path(config: Config) -> str:
    import hashlib

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    digest = hashlib.sha256(config.job_directory.encode()).hexdigest()[:16]
    return os.path.join(base, "process-control", f"status-{digest}.json")


def load(config: Config, key: list[Any]) -> dict[str, tuple[Identity, Summary]]:
    """slug -> (identity, summary) from the cache, if it is for ``key``."""
    path = cache_path(config)
    try:
        with open(path, encoding="utf-8") as handle:
            if os.fstat(handle.fileno()).st_uid != os.geteuid():
                return {}  # written by someone else: not trusted
            data = json.load(handle)
        if data.get("key") != json.loads(json.dumps(key)):
            return {}
        return {
            slug: (ident, Summary.from_dict(summary))
            for slug, (ident, summary) in data["files"].items()
        }
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def save(config: Config, key: list[Any], files: dict[str, tuple[Identity, Summary]]) -> None:
    import tempfile

    path = cache_path(config)
    data = {"key": key,
            "files": {slug: [ident, s.to_dict()] for slug, (ident, s) in files.items()}}
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".status-cache.", dir=os.path.dirname(path))
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, separators=(",", ":"))
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass  # only a cache
