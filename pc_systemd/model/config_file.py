"""Which files: the global configuration file that applies (and whether
it may be trusted), and the job files of a job directory.

Kept apart from :mod:`pc_systemd.model.config` and :mod:`pc_systemd.model.jobset` (which parse them)
because the generator's and cron-generate's cached paths need only these
answers and must not pay for the parsers' imports.
"""

from __future__ import annotations

import os
import stat

# Not typing's: this module is on the generator's cached path, where
# collections.abc (which imports collections) costs 2.5 ms
# (docs/benchmarks.md); Mapping is named for mypy only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_PATH = "/etc/process-control.yaml"
ENV_VAR = "PROCESS_CONTROL_CONFIG"
JOB_SUFFIX = ".yaml"  # a job file is <job_directory>/<slug>.yaml


def config_path(explicit: str | None, environ: Mapping[str, str]) -> str | None:
    """``--config``, else ``$PROCESS_CONTROL_CONFIG``, else /etc's file if
    it exists, else None (built-in defaults)."""
    if explicit:
        return explicit
    if environ.get(ENV_VAR):
        return environ[ENV_VAR]
    return DEFAULT_PATH if os.path.lexists(DEFAULT_PATH) else None


def slug_of(path: str) -> str:
    """The job's name (slug) from its file's path or name: the file name
    without ``.yaml`` (a name without it is returned whole)."""
    base = os.path.basename(path)
    return base[: -len(JOB_SUFFIX)] if base.endswith(JOB_SUFFIX) else base


def job_file_name(slug: str) -> str:
    """The file name of the job ``slug``: the inverse of :func:`slug_of`."""
    return slug + JOB_SUFFIX


def yaml_names(job_directory: str) -> list[str]:
    """The job files' names, ``*.yaml`` in slug order, as the original's glob
    (which skips hidden files: ``.x.yaml`` is an editor's, not a job)."""
    return sorted(n for n in os.listdir(job_directory)
                  if n.endswith(JOB_SUFFIX) and not n.startswith("."))


def untrusted(path: str) -> str | None:
    """Why the file may not be trusted, if it may not.

    The global configuration chooses the user every job runs as, and the
    generator reads it as root: only root (or the caller itself, when it
    is not root) may be able to change it or replace it in its directory.
    """
    me = os.geteuid()
    for what, target in (("file", path), ("directory", os.path.dirname(os.path.abspath(path)))):
        st = os.stat(target)
        if st.st_uid not in (0, me):
            return f"the configuration {what} {target} is owned by uid {st.st_uid}"
        sticky = stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX
        if st.st_mode & 0o022 and not sticky:
            return f"the configuration {what} {target} is writable by group or others"
    return None
