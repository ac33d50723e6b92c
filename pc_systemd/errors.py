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
        return f"{self.path}:{self.line}: {self.key}: {prefix}{self.message}"


class PcError(Exception):
    """Raised by the library for bad input; the CLI and generator print it."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def one(path: str, line: int, key: str, message: str) -> PcError:
    return PcError([Problem(path, line, key, message)])
