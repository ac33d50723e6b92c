"""Opening files in directories another user can write, safely.

The service user (and so every job) can write the state, log and run
directories. Whoever reads a file there as someone else (root's
``run-job --logs`` and ``--status``, ``check-jobs-icinga``) or trusts what
it reads (the runner itself) must not be led elsewhere by what a job
planted: a symlink to ``/etc/shadow``, a FIFO that blocks ``open`` and
``read`` forever, a file of a gigabyte, a file some other user slipped in.
So every such file is opened here, one way:

- the directory that holds it is opened first (``O_DIRECTORY``) and each
  component below the configured path without following symlinks, and the
  file relative to that descriptor (``openat``), so a component swapped for
  a link meanwhile is refused, not followed;
- the file itself with ``O_NOFOLLOW | O_NONBLOCK`` (a FIFO opens at once
  and is refused by the ``fstat`` that follows), and only a regular file of
  the expected owner is read;
- reads are bounded: a whole-file read refuses more than ``limit`` bytes,
  a copy stops at the size the file had when it began and skips the
  holes of a sparse file (:class:`Copy`).

Refusals are :class:`Refused`, an ``OSError`` whose ``strerror`` is the
one-line reason, so callers that report ``OSError`` need nothing new.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import stat
from collections.abc import Iterator
from typing import Protocol

MAX_READ = 1 << 20  # the default bound of read_file
BLOCK = 1 << 16
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY


class Refused(OSError):
    """The file is not one we may read; ``strerror`` says why."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(errno.EPERM, why, path)

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


def service_uid(user: str) -> int | None:
    """The uid of the configured service user (a name or a uid); None if
    there is no such user, so that no file counts as theirs."""
    if user.isdigit():
        return int(user)
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None


def check(path: str, st: os.stat_result, owner: int | None) -> None:
    """Refuse anything but a regular file of ``owner``."""
    if not stat.S_ISREG(st.st_mode):
        raise Refused(path, "not a regular file")
    if owner is None or st.st_uid != owner:
        who = "the service user (who does not exist)" if owner is None else f"uid {owner}"
        raise Refused(path, f"owned by uid {st.st_uid}, not by {who}")


def open_dir(base: str, *below: str) -> int:
    """A descriptor of ``base/below...``: ``base`` is the configured path
    (root's choice, followed as given); each name below it must be a real
    directory, not a symlink."""
    fd = os.open(base, _DIR_FLAGS)
    path = base
    try:
        for name in below:
            path = os.path.join(path, name)
            try:
                new = os.open(name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as err:
                if err.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise Refused(path, "not a directory (a symlink?)") from None
                raise OSError(err.errno, err.strerror, path) from None
            os.close(fd)
            fd = new
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_at(dir_fd: int, name: str, owner: int | None, shown: str) -> int:
    """``name`` in the directory ``dir_fd``, checked (see the module doc),
    blocking again for the reads that follow. ``shown``: its path, for messages."""
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise Refused(shown, "is a symlink") from None
        raise OSError(err.errno, err.strerror, shown) from None
    try:
        check(shown, os.fstat(fd), owner)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_file(path: str, owner: int | None) -> int:
    """``path``, checked; its directory is followed as given (the caller's
    own configured directory), the file itself never through a symlink."""
    directory, name = os.path.split(path)
    dir_fd = os.open(directory or ".", _DIR_FLAGS)
    try:
        return open_at(dir_fd, name, owner, path)
    finally:
        os.close(dir_fd)


def read_fd(fd: int, shown: str, limit: int = MAX_READ) -> bytes:
    """At most ``limit`` bytes of an open file; Refused if it holds more."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        block = os.read(fd, limit + 1 - size)
        if not block:
            break
        chunks.append(block)
        size += len(block)
    if size > limit:
        raise Refused(shown, f"larger than {limit} bytes")
    return b"".join(chunks)


def read_file(path: str, owner: int | None, limit: int = MAX_READ) -> bytes:
    """The whole of ``path`` (a regular file of ``owner``, at most ``limit`` bytes)."""
    fd = open_file(path, owner)
    try:
        return read_fd(fd, path, limit)
    finally:
        os.close(fd)


class Writer(Protocol):
    def write(self, block: bytes, /) -> object: ...


def data_spans(fd: int, start: int, end: int) -> Iterator[tuple[int, int]]:
    """The parts of the file between ``start`` and ``end`` that hold data,
    as (from, to): its holes left out. A job can make its log file 200 GB
    long with 4 KB on disk (``truncate -s 200G``); the holes read as NUL
    bytes, and nothing was ever written there. A file system that cannot
    tell (``SEEK_DATA`` refused) gives the whole range."""
    at = start
    while at < end:
        try:
            data = os.lseek(fd, at, os.SEEK_DATA)
        except OSError as err:
            if err.errno == errno.ENXIO:
                return  # a hole up to the end of the file
            if err.errno in (errno.EINVAL, errno.EOPNOTSUPP):
                yield at, end
                return
            raise
        if data >= end:
            return
        hole = min(os.lseek(fd, data, os.SEEK_HOLE), end)
        yield data, hole
        at = hole


def data_end(fd: int, size: int) -> int:
    """Where the file's last data ends (at most ``size``): 0 if it holds
    none. Found by halving with ``SEEK_DATA``: about 40 calls for 1 TB,
    however many holes."""
    try:
        low = os.lseek(fd, 0, os.SEEK_DATA)  # low: a byte of data
    except OSError as err:
        return 0 if err.errno == errno.ENXIO else size
    if low >= size:
        return 0
    high = size  # no data at or after high
    while high - low > 1:
        middle = (low + high) // 2
        try:
            data = os.lseek(fd, middle, os.SEEK_DATA)
        except OSError as err:
            if err.errno != errno.ENXIO:
                return size
            data = size
        if data < size:
            low = data
        else:
            high = middle
    return min(os.lseek(fd, low, os.SEEK_HOLE), size)


def _data_start(fd: int, end: int) -> int:
    """Where the data that ends at ``end`` begins: the smallest offset from
    which the next hole is ``end`` (halving with ``SEEK_HOLE``)."""
    low, high = 0, end - 1  # SEEK_HOLE(high) == end
    while low < high:
        middle = (low + high) // 2
        if os.lseek(fd, middle, os.SEEK_HOLE) >= end:
            high = middle
        else:
            low = middle + 1
    return low


def data_tail(fd: int, size: int, want: int) -> tuple[int, bytes]:
    """The last ``want`` bytes of the file's data before ``size``, its
    holes left out, and where they begin (0: the file's start is among
    them). A job's ``truncate -s 200G`` of its log leaves its lines before
    a hole; the mail's tail must still find them."""
    parts: list[bytes] = []
    end = size
    while want > 0:
        end = data_end(fd, end)
        if end == 0:
            return 0, b"".join(reversed(parts))
        try:
            start = max(_data_start(fd, end), end - want)
        except OSError:
            start = max(0, end - want)
        parts.append(os.pread(fd, end - start, start))
        want -= end - start
        end = start
    return end, b"".join(reversed(parts))


class Copy:
    """A file's data copied out from where it was opened: what it holds
    when :meth:`to` is called (a running job's log, still growing, is read
    up to the size it has then, so each copy ends), holes skipped and
    counted in ``skipped``. In a file with fewer blocks on disk than its
    size says (sparse), NUL bytes next to a hole (the rest of the block
    the data ends in) and blocks of only NUL bytes are skipped too: a file
    system that cannot report holes reads them as such blocks."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.offset = os.lseek(fd, 0, os.SEEK_CUR)
        self.skipped = 0

    def to(self, out: Writer) -> None:
        st = os.fstat(self.fd)
        sparse = st.st_blocks * 512 < st.st_size
        for start, end in data_spans(self.fd, self.offset, st.st_size):
            after_hole = start > self.offset
            self.skipped += start - self.offset
            self.offset = start
            while self.offset < end:
                block = os.pread(self.fd, min(BLOCK, end - self.offset), self.offset)
                if not block:
                    break
                self.offset += len(block)
                if sparse:
                    shown = block.lstrip(b"\0") if after_hole else block
                    if (self.offset == end and end < st.st_size) or not shown.strip(b"\0"):
                        shown = shown.rstrip(b"\0")  # before a hole
                    after_hole = after_hole and not shown
                    self.skipped += len(block) - len(shown)
                    block = shown
                if block:
                    out.write(block)
        if self.offset < st.st_size:
            self.skipped += st.st_size - self.offset
            self.offset = st.st_size

    def skipped_line(self, path: str) -> str | None:
        """One line saying what was not shown, if anything was not."""
        if not self.skipped:
            return None
        return (f"-- {path}: {self.skipped} bytes not shown: holes of a sparse file "
                f"(nothing was written there; they read as NUL bytes)")


def copy_to(fd: int, out: Writer) -> Copy:
    """The file's data, from where ``fd`` is, to ``out``; see :class:`Copy`."""
    copy = Copy(fd)
    copy.to(out)
    return copy


def make_dirs(path: str, mode: int) -> None:
    """``os.makedirs``, every directory it creates with ``mode`` (the umask
    may take more away); an existing directory is left as it is."""
    if os.path.isdir(path):
        return
    parent = os.path.dirname(path.rstrip("/"))
    if parent and parent != path:
        make_dirs(parent, mode)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, mode)


def close_to_others(directory: str, file_mode: int, dir_mode: int) -> None:
    """If ``directory`` is ours and open to others, take their permissions
    off our files in it (through descriptors, never a symlink), then off
    the directory: once closed, nothing is left to do on later runs."""
    try:
        fd = os.open(directory, _DIR_FLAGS | os.O_NOFOLLOW)
    except OSError:
        return  # the log file's own creation reports it
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid() or not stat.S_IMODE(st.st_mode) & ~dir_mode:
            return
        for name in os.listdir(fd):
            with contextlib.suppress(OSError):
                _close_file(fd, name, file_mode)
        os.fchmod(fd, stat.S_IMODE(st.st_mode) & dir_mode)
    except OSError:
        pass  # best effort: a run is not stopped for it
    finally:
        os.close(fd)


def _close_file(dir_fd: int, name: str, mode: int) -> None:
    fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    try:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid():
            os.fchmod(fd, stat.S_IMODE(st.st_mode) & mode)
    finally:
        os.close(fd)
