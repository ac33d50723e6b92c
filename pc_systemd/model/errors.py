"""User-facing errors: one line each, ``path:line: key: what is wrong``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one input file.

    ``line`` is 1-based; file-level problems (unreadable, bad name, symlink
    escape) point at line 1 so every message keeps the same shape and
    editors can jump to it.
    """

    path: str
    line: int
    key: str
    message: str
    warning: bool = False

    def __str__(self) -> str:
        prefix = "warning: " if self.warning else ""
        text = f"{self.path}:{self.line}: {self.key}: {prefix}{self.message}"
        return printable(text)


def printable(text: str) -> str:
    """``text`` with everything that is not printable escaped (control
    characters, line and paragraph separators, undecodable bytes of a file
    name), so that a message is always one line that any terminal or log
    shows as it is."""
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char.isprintable():
            out.append(char)
        elif "\udc80" <= char <= "\udcff":  # a byte os.fsdecode could not decode
            out.append(f"\\x{ord(char) - 0xDC00:02x}")
        else:
            out.append(char.encode("unicode_escape").decode("ascii"))
    return "".join(out)


class PcError(Exception):
    """Raised by the library for bad input; the CLI and generator print it."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def one(path: str, line: int, key: str, message: str) -> PcError:
    return PcError([Problem(path, line, key, message)])
