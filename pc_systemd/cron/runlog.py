"""The per-run log file of the direct runner, in the original's format.

``<output_directory>/<slug>/<slug>-YYYYmmdd-HHMMSS.log`` (local time of the
run's start, ``-N`` added if a run of the same second has the name, as the
systemd path's :mod:`pc_systemd.systemd.filelog` does; the name is defined
once, in :mod:`pc_systemd.model.job`). Each command of the run adds::

    <asctime>\\tINFO\\t===========
    <asctime>\\tINFO\\t<command line> (<pid>)
    <asctime>\\tINFO\\t-----------
    <asctime>\\tINFO\\t<a line the command wrote to stdout>
    <asctime>\\tERROR\\t<a line the command wrote to stderr>
    <asctime>\\tINFO\\t----------- end command output

``asctime`` is Python logging's default (``%Y-%m-%d %H:%M:%S,mmm``, local
time), which the original got by sending every line through ``logging``.
That cost about 10 us a line; here output is handled a pipe read (up to a
pipe's worth of lines) at a time: one timestamp per read, lines cut with
``bytes`` methods, one ``write`` per read. Output that is not UTF-8 is
written with U+FFFD in place of the bad bytes, so the file always decodes.

A job's output is not for other users: files are created 0640 in
directories created 0750. A job's directory left open to others (by an
older version) is closed when the next run opens it: its log files of ours
lose their permissions for others, then the directory its own.

The directory is the service user's, so whoever lists or reads it as
someone else (root's ``run-job --logs``) goes through :mod:`pc_systemd.core.safe_open`.

A file that cannot be written (no space left, a quota, an I/O error)
never stops the run: the first failed write is kept as the log's
``problem`` (the file's path, why, how many bytes it holds), the file is
cut back to its last whole line, nothing more is written to it, and the
output is still read (the command never blocks on a full pipe) and still
shown on a terminal. The original's ``logging`` printed a traceback per
line and went on; here the runner records the problem once in the run's
history (:mod:`pc_systemd.cron.direct`).
"""

from __future__ import annotations

import os
import time

from pc_systemd.core.safe_open import close_to_others, make_dirs, open_dir
from pc_systemd.core.terminal import JobOutput
from pc_systemd.model.job import LOG_STAMP, log_name, log_name_pattern

INFO = b"INFO"
ERROR = b"ERROR"
# A "line" that never ends is cut here rather than held in memory forever.
MAX_LINE = 1 << 20
FILE_MODE = 0o640
DIR_MODE = 0o750


class Clock:
    """``asctime`` as logging's default formatter writes it, formatted at
    most once per millisecond (and the date part once per second)."""

    def __init__(self) -> None:
        self._key = -1
        self._second = -1
        self._second_text = b""
        self._text = b""

    def stamp(self) -> bytes:
        now = time.time()
        second = int(now)
        millis = int((now - second) * 1000)  # as logging.LogRecord computes msecs
        key = second * 1000 + millis
        if key != self._key:
            if second != self._second:
                self._second = second
                self._second_text = time.strftime(
                    "%Y-%m-%d %H:%M:%S", time.localtime(second)
                ).encode()
            self._text = b"%s,%03d" % (self._second_text, millis)
            self._key = key
        return self._text


def _utf8(body: bytes) -> bytes:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("utf-8", "replace").encode("utf-8")
    return body


def format_lines(stamp: bytes, level: bytes, body: bytes) -> bytes:
    """Log lines for ``body``: whole lines joined by ``\\n``, without the last one's."""
    prefix = stamp + b"\t" + level + b"\t"
    return prefix + _utf8(body).replace(b"\n", b"\n" + prefix) + b"\n"


class Lines:
    """One output stream cut into log lines; a line split across reads
    waits for its end."""

    def __init__(self, level: bytes) -> None:
        self.level = level
        self._tail = b""

    def feed(self, data: bytes, stamp: bytes) -> bytes:
        data = self._tail + data if self._tail else data
        cut = data.rfind(b"\n")
        if cut < 0:
            if len(data) < MAX_LINE:
                self._tail = data
                return b""
            self._tail = b""
            return format_lines(stamp, self.level, data)
        # Cutting at a newline never splits a UTF-8 sequence, so each block
        # can be checked on its own.
        self._tail = data[cut + 1 :]
        return format_lines(stamp, self.level, data[:cut])

    def finish(self, stamp: bytes) -> bytes:
        """The last line, if the stream ended without a newline."""
        tail, self._tail = self._tail, b""
        return format_lines(stamp, self.level, tail) if tail else b""


class RunLog:
    """One run's log file, open for appending."""

    def __init__(self, path: str, fd: int, mirror: JobOutput | None = None) -> None:
        self.path = path
        self.clock = Clock()
        self._fd = fd
        # Run by hand on a terminal, the original showed the output there too.
        self._mirror = mirror
        self.written = 0  # bytes in the file
        self.problem: str | None = None  # why the file misses output, once a write failed

    @classmethod
    def create(
        cls, output_directory: str, slug: str, started: float, mirror: JobOutput | None = None
    ) -> RunLog:
        directory = os.path.join(output_directory, slug)
        make_dirs(directory, DIR_MODE)
        close_to_others(directory, FILE_MODE, DIR_MODE)
        stamp = time.strftime(LOG_STAMP, time.localtime(started))
        for n in range(1000):
            path = os.path.join(directory, log_name(slug, stamp, n))
            try:
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
                return cls(path, os.open(path, flags, FILE_MODE), mirror)
            except FileExistsError:
                continue
        raise FileExistsError(f"no free log file name in {directory} for {stamp}")

    def write(self, block: bytes) -> None:
        if self.problem is None:
            view = memoryview(block)
            try:
                while view:
                    done = os.write(self._fd, view)
                    self.written += done
                    view = view[done:]
            except OSError as err:
                self._cut_to_line(block[: len(block) - len(view)])
                self._failed(err, f"the output after {self.written} bytes is lost")
        if self._mirror is not None:
            self._mirror.write(block)
            self._mirror.flush()

    def line(self, level: bytes, text: str) -> None:
        self.write(format_lines(self.clock.stamp(), level, text.encode("utf-8")))

    def header(self, command_line: str, pid: int | str) -> None:
        stamp = self.clock.stamp()
        lines = ("===========", f"{command_line} ({pid})", "-----------")
        self.write(b"".join(format_lines(stamp, INFO, line.encode()) for line in lines))

    def end(self) -> None:
        self.line(INFO, "----------- end command output")

    def close(self) -> None:
        try:
            os.close(self._fd)
        except OSError as err:  # a file system that reports a write's failure only here
            self._failed(err, "on closing it: its end may be lost")

    def _cut_to_line(self, written: bytes) -> None:
        """After a failed write: the file ends with its last whole line, as
        every line of it is one of the run's and it still decodes."""
        partial = len(written) - (written.rfind(b"\n") + 1)
        if partial:
            try:
                os.ftruncate(self._fd, self.written - partial)
            except OSError:
                return
            self.written -= partial

    def _failed(self, err: OSError, what: str) -> None:
        if self.problem is None:
            self.problem = f"cannot write {self.path}: {err.strerror or err} ({what})"


def log_names(output_directory: str, slug: str) -> tuple[int, list[str]]:
    """An open descriptor of the job's log directory and the names of its
    ``<slug>-YYYYmmdd-HHMMSS[-N].log`` files, oldest first (their names sort
    by start time). The directory is opened as :mod:`pc_systemd.core.safe_open` does (no
    symlink below ``output_directory``); close the descriptor when done.
    Raises OSError."""
    pattern = log_name_pattern(slug)
    fd = open_dir(output_directory, slug)
    try:
        found = [(m[1], int(m[2] or 0), m[0]) for m in map(pattern.match, os.listdir(fd))
                 if m is not None]
    except BaseException:
        os.close(fd)
        raise
    return fd, [name for _stamp, _n, name in sorted(found)]


def newest_log(output_directory: str, slug: str) -> str | None:
    """The path of the job's newest log file, by its name."""
    try:
        fd, names = log_names(output_directory, slug)
    except OSError:
        return None
    os.close(fd)
    return os.path.join(output_directory, slug, names[-1]) if names else None
