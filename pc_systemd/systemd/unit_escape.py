"""Every value that enters a unit file goes through here.

systemd expands specifiers (``%n``) in most settings and ``$VAR`` in
``ExecStart=``, unquotes and C-unescapes words, and ends a setting at a
newline.  Values are escaped for exactly the setting they go into, and
values that cannot be represented (control characters) are refused, so a
job file can never add a setting or change a command.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

# (CONTROL: also what systemd refuses as not clean UTF-8: noncharacters, surrogates)
from pc_systemd.model.fields import CONTROL, CREDENTIAL_NAME, PROGRAM_PREFIXES

MAX_LINE = 256 * 1024  # systemd refuses unit lines over 1 MiB
_SPACE = re.compile(r"\s")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# systemd reads these at the start of an ExecStart= program as flags:
# '-' ignore failure, '@' argv[0], ':' no variable expansion,
# '+' / '!' full privileges -- '+' would run the job as root.
EXEC_PREFIXES = PROGRAM_PREFIXES


class UnitValueError(ValueError):
    """A value that has no safe representation in a unit file."""


def _no_control(value: str) -> None:
    if value.isprintable():
        return  # no printable character is a CONTROL one (a test holds this)
    found = CONTROL.search(value)
    if found:
        raise UnitValueError(f"control character {ord(found.group()):#04x} in {value!r}")


def specifiers(value: str) -> str:
    """Escape specifiers: ``%`` -> ``%%``."""
    return value.replace("%", "%%")


def plain(value: str) -> str:
    """A free-text setting such as ``Description=``: one line, no specifiers.

    Leading/trailing white space would be stripped by systemd; it is kept
    out by the caller's validation, and harmless if not.  A final backslash
    would join the next line to this setting.
    """
    _no_control(value)
    if value.rstrip().endswith("\\"):
        raise UnitValueError(f"value ends with a backslash: {value!r}")
    return _limited(specifiers(value))


def _limited(line: str) -> str:
    if len(line) > MAX_LINE:
        raise UnitValueError(f"setting longer than {MAX_LINE} characters")
    return line


def _quote(value: str) -> str:
    # Inside double quotes systemd C-unescapes backslash sequences, so
    # backslash and the quote itself are escaped; nothing else needs it.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def exec_argv(argv: Sequence[str]) -> str:
    """One ``ExecStart=`` command line that runs exactly ``argv``.

    Each argument is quoted; ``%`` and ``$`` are doubled so that systemd
    expands neither specifiers nor variables.
    """
    if not argv:
        raise UnitValueError("empty command")
    program = argv[0]
    if program[:1] in EXEC_PREFIXES:
        raise UnitValueError(f"program must not start with {program[0]!r}")
    return _limited(" ".join([_word(arg) for arg in argv]))


_WORDS: dict[str, str] = {}  # the same few arguments recur in many units


def _word(arg: str) -> str:
    word = _WORDS.get(arg)
    if word is None:
        _no_control(arg)
        word = _quote(specifiers(arg).replace("$", "$$"))
        if len(_WORDS) < 4096:
            _WORDS[arg] = word
    return word


def environment(name: str, value: str) -> str:
    """One ``Environment=`` assignment, quoted (``$`` is not expanded there)."""
    if not _ENV_NAME.match(name):
        raise UnitValueError(f"bad variable name {name!r}")
    _no_control(value)
    return _limited(_quote(specifiers(f"{name}={value}")))


def path(value: str) -> str:
    """An absolute path setting (``SourcePath=``, ``WorkingDirectory=``)."""
    if not value.startswith("/"):
        raise UnitValueError(f"not an absolute path: {value!r}")
    _no_control(value)
    if _SPACE.search(value):
        # Path settings are not unquoted by systemd; white space would be
        # taken literally by some and split by others.
        raise UnitValueError(f"white space in path {value!r}")
    return specifiers(value)


def credential(name: str, directory: str) -> str:
    """``LoadCredential=NAME:DIRECTORY/NAME``: systemd reads the file as
    root when the run starts and hands the job a copy; the name is the
    credential's ID, which ends at the first ``:``."""
    if not CREDENTIAL_NAME.match(name):
        raise UnitValueError(f"bad credential name {name!r}")
    return _limited(f"{name}:{path(os.path.join(directory, name))}")


def comment(value: str) -> str:
    """Text inside a ``#`` comment line: no newline may end the comment."""
    _no_control(value)
    return value


def span(value: float) -> str:
    """A time span in seconds where 0 is zero (``RestartSec=``), not "no limit"."""
    return "0" if value <= 0 else seconds(value)


def seconds(value: float) -> str:
    """A time span in seconds, ``infinity`` for 0 (no limit)."""
    if value <= 0:
        return "infinity"
    millis = max(1, round(value * 1000))  # "0s" would mean no limit at all
    return f"{millis}ms" if millis % 1000 else f"{millis // 1000}s"


def integer(value: int) -> str:
    """A whole number (``Nice=``, ``MemoryMax=`` in bytes)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise UnitValueError(f"not a whole number: {value!r}")
    return str(value)


def percent(value: float) -> str:
    """A percentage with at most two decimals (``CPUQuota=``), which is
    systemd's resolution: ``50%``, ``12.5%``."""
    hundredths = round(value * 100)
    if hundredths <= 0 or abs(value * 100 - hundredths) > 1e-6:
        raise UnitValueError(f"not a percentage > 0 with at most two decimals: {value!r}")
    whole, part = divmod(hundredths, 100)
    return f"{whole}%" if part == 0 else f"{whole}.{part:02d}".rstrip("0") + "%"
