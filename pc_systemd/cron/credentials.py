"""A run's credentials on a host without systemd: the layout systemd's
``LoadCredential=`` gives a job, made by the direct runner.

systemd copies each file a job's ``credentials`` names, as root, into a
directory of the run's own that only the job's user can read, sets
``$CREDENTIALS_DIRECTORY`` and removes the directory when the run ends.
The direct runner does the same, as the service user (nothing of ours runs
as root on a job's behalf): it can copy only what the service user may
read, so on cron hosts ``credentials_directory`` is readable by the service
user's group (README: "Credentials"). The copies go to a fresh directory
(``mkdtemp``: 0700, the service user's) in the run directory, itself 0700
and the service user's, so no other user can reach them; each copy is
0400. The directory is removed when the run ends; one left by a runner
that was killed (SIGKILL) is removed by the job's next run, which holds
the job's lock, so no run of the job is using it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Sequence

from pc_systemd.core.safe_open import read_fd

PREFIX = "credentials-"
# '+' is in no slug: "credentials-a+" never matches job a.b's directories.
SEPARATOR = "+"
MAX_SIZE = 1 << 20  # systemd's limit of one credential (CREDENTIAL_SIZE_MAX)
_READ = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
_WRITE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class CredentialError(Exception):
    """A credential could not be handed to the run; the message is one line."""


def prepare(source: str, names: Sequence[str], run_directory: str, slug: str) -> str:
    """A fresh private directory with a copy of each of ``names`` from
    ``source``; its path. Call with the job's lock held."""
    clear(run_directory, slug)
    directory = tempfile.mkdtemp(prefix=f"{PREFIX}{slug}{SEPARATOR}", dir=run_directory)
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for name in names:
                _copy(os.path.join(source, name), dir_fd, name)
        finally:
            os.close(dir_fd)
    except BaseException:
        remove(directory)
        raise
    return directory


def _copy(path: str, dir_fd: int, name: str) -> None:
    # Root's directory, read as systemd reads it: a symlink there is root's choice.
    try:
        fd = os.open(path, _READ)
    except OSError as err:
        raise CredentialError(f"credential {name}: {path}: {err.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise CredentialError(f"credential {name}: {path}: not a regular file")
        os.set_blocking(fd, True)
        try:
            data = read_fd(fd, path, MAX_SIZE)
        except OSError as err:
            raise CredentialError(f"credential {name}: {path}: {err.strerror}") from None
    finally:
        os.close(fd)
    out = os.open(name, _WRITE, 0o400, dir_fd=dir_fd)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(out, view):]
    finally:
        os.close(out)


def remove(directory: str) -> None:
    shutil.rmtree(directory, ignore_errors=True)


def clear(run_directory: str, slug: str) -> None:
    """The job's directories left by runs that could not remove them."""
    start = f"{PREFIX}{slug}{SEPARATOR}"
    with contextlib.suppress(OSError):
        for name in os.listdir(run_directory):
            if name.startswith(start) and SEPARATOR not in name[len(start):]:
                remove(os.path.join(run_directory, name))
