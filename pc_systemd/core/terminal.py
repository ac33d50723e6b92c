"""Job output on the operator's terminal: control characters shown, not obeyed.

A job's output is the job's to choose, and a terminal obeys what it is
sent: ``ESC ] 0 ; TITLE BEL`` sets its title, ``ESC [ 31 m`` its colour,
other sequences move the cursor, rewrite lines already shown, or (on some
terminals) answer back as if typed. Whoever runs ``run-job logs`` or
``run-job run`` (root, a developer) must not have their terminal driven by
a job. So every path that prints job output (the journal's lines, log
files, the direct runner's copy) writes it through :class:`JobOutput`:

- to a terminal, each control character other than tab and newline is
  shown as ``\\xNN`` (``ESC`` as ``\\x1b``), as are C1 controls (U+0080 to
  U+009F, which some terminals also obey) and bytes that are not UTF-8;
  a backslash the job wrote is left as it is (as journalctl does);
- with ``raw`` (``--raw``), or when the output is not a terminal (a pipe,
  a file), the bytes go through as the job wrote them, as journalctl and
  cat pass them: a program reading them gets the job's exact output.
"""

from __future__ import annotations

import codecs
import re
from typing import BinaryIO

# C0 controls but tab and newline, DEL, C1 controls, and the surrogates that
# stand for undecodable bytes (surrogateescape).
_SHOWN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\udc80-\udcff]")
# The controls a block of ASCII may hold: one without them is written as
# it is (no decoding: about twice as fast for plain log lines).
_ASCII_CONTROLS = bytes(range(0x09)) + bytes(range(0x0B, 0x20)) + b"\x7f"


def _code(match: re.Match[str]) -> str:
    char = match.group()
    number = ord(char) - 0xDC00 if char >= "\udc80" else ord(char)
    return f"\\x{number:02x}"


def escape(text: str) -> str:
    """``text`` with what a terminal would obey shown as ``\\xNN``."""
    return _SHOWN.sub(_code, text)


class JobOutput:
    """A job's output, on its way to ``stream`` (a binary stream).

    ``escape``: show control characters (see the module doc). Output comes
    in blocks cut anywhere (a UTF-8 character may be split between two):
    an incremental decoder keeps what belongs to the next block."""

    def __init__(self, stream: BinaryIO, escape: bool) -> None:
        self.stream = stream
        self.escapes = escape
        self._decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")

    @classmethod
    def to(cls, stream: BinaryIO, raw: bool, is_terminal: bool) -> JobOutput:
        return cls(stream, escape=is_terminal and not raw)

    def write(self, block: bytes) -> None:
        """A block of output, as the job wrote it."""
        if self.escapes and not self._plain(block):
            block = escape(self._decoder.decode(block)).encode("utf-8", "surrogateescape")
        self.stream.write(block)

    def _plain(self, block: bytes) -> bool:
        """Nothing in ``block`` to show, and no character cut before it."""
        return (block.isascii() and len(block.translate(None, _ASCII_CONTROLS)) == len(block)
                and not self._decoder.getstate()[0])

    def line(self, text: str) -> None:
        """One line of output (the journal's), and a newline."""
        try:
            data = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a lone surrogate that stands for no byte
            data = text.encode("utf-8", "replace")
        self.write(data + b"\n")
        self.stream.flush()

    def flush(self) -> None:
        self.stream.flush()

    def finish(self) -> None:
        """The end of the output: a character cut off at its end is shown too."""
        if self.escapes:
            rest = self._decoder.decode(b"", final=True)
            self.stream.write(escape(rest).encode("utf-8", "surrogateescape"))
            self._decoder.reset()
        self.stream.flush()
