"""Key declarations and the small typed parsers behind them.

Every configuration and job key is declared once as a :class:`Key`: its
parser, default and help.  Validation, defaults and the key tables of the docs all
come from those declarations.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pc_systemd.model.errors import PcError, Problem, printable
from pc_systemd.model.nodes import Entry, Map, Node, Scalar, Seq, scalar, type_name

T = TypeVar("T")

# C0 and C1 controls (tab included), DEL, line and paragraph separators,
# Unicode noncharacters and lone surrogates: a newline or NUL could split a
# unit or cron line, and systemd refuses a unit that is not clean UTF-8.
CONTROL = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff"
    "\U0001fffe\U0001ffff\U0010fffe\U0010ffff]"
)
MAX_VALUE = 32 * 1024  # one value; systemd refuses unit lines over 1 MiB
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
PROGRAM_PREFIXES = "-@:+!|"  # '-' first: literal in COMMAND_LINE's character class
_WORD = re.compile(r"""(?:[^\s'"]+|'[^']*'|"[^"]*")+""")
# Balanced quotes: runs of non-quote characters and whole '...' or "..."
# parts. Each alternative starts with a different character, so matching is
# linear (a nested-quantifier form backtracks exponentially on an unbalanced
# quote, which a job file could use to hang the generator).
_SIMPLE_WORDS = re.compile(r"""(?:[^'"]|'[^']*'|"[^"]*")*""")
_UNQUOTE = re.compile(r"'([^']*)'|\"([^\"]*)\"")


def _unquoted(match: re.Match[str]) -> str:
    return match.group(1) if match.group(1) is not None else match.group(2)


Schema = Mapping[str, Any]  # a JSON Schema (draft 2020-12) fragment


@dataclass(frozen=True)
class Key(Generic[T]):
    """One key: its parser, default and help, and for job keys the JSON
    Schema fragment of what ``parse`` accepts (``schema=``, one of the
    fragments below; see "JSON Schema fragments")."""

    name: str
    type: str  # as shown in the docs
    parse: Callable[[Entry], T]
    default: T
    help: str
    required: bool = False
    default_doc: str = ""
    # Not compared or hashed: a mapping, and the parser already says what the key is.
    schema: Schema | None = field(default=None, compare=False)

    def doc_default(self) -> str:
        if self.required:
            return "required"
        if self.default_doc:
            return self.default_doc
        return "none" if self.default is None else f"`{self.default}`"


def check_line(
    entry: Entry, text: str, node: Node | None = None, what: str = "", tabs: bool = False
) -> str:
    """Refuse control characters (newline, CR, NUL, ...) in a one-line value
    (``tabs``: a command line, where tabs separate arguments)."""
    if text.isprintable() and len(text) <= MAX_VALUE:
        return text  # no printable character is a CONTROL one (a test holds this)
    found = CONTROL.search(text.replace("\t", " ") if tabs else text)
    if found:
        label = {
            "\n": "a newline", "\r": "a carriage return", "\x00": "a NUL byte", "\t": "a tab"
        }.get(found.group(), f"character U+{ord(found.group()):04X}")
        raise entry.problem(f"{what or 'value'} must not contain {label}", node)
    if len(text) > MAX_VALUE:
        raise entry.problem(f"{what or 'value'} is longer than {MAX_VALUE} characters", node)
    return text


def _text_of(entry: Entry, node: Node, what: str = "a string") -> str:
    """A string value.  Plain scalars that YAML 1.1 types otherwise are taken
    as written: ``name: Off`` is the name "Off" (not False), ``name: 2024``
    the name "2024".  Only null and collections are refused."""
    if not isinstance(node, Scalar):
        raise entry.problem(f"expected {what}, got {_kind(entry, node)}", node)
    if isinstance(node.value, str):
        return node.value
    if node.value is None:
        raise entry.problem(f"expected {what}, got null", node)
    return node.text


def text(entry: Entry) -> str:
    """A one-line string."""
    return check_line(entry, _text_of(entry, entry.value))


def free_text(entry: Entry) -> str:
    """A string that may span lines (descriptions); NUL is still refused."""
    value = _text_of(entry, entry.value)
    if "\x00" in value:
        raise entry.problem("must not contain a NUL byte")
    if len(value) > MAX_VALUE:
        raise entry.problem(f"is longer than {MAX_VALUE} characters")
    return value


def nonempty_text(entry: Entry) -> str:
    value = text(entry)
    if not value.strip():
        raise entry.problem("must not be empty")
    return value


def unit_text(entry: Entry) -> str:
    """Non-empty one-line text that goes into a unit setting unquoted
    (``Description=``): a final backslash would continue the line."""
    value = nonempty_text(entry)
    if value.rstrip().endswith("\\"):
        raise entry.problem("must not end with a backslash")
    return value


def flag(entry: Entry) -> bool:
    value = scalar(entry, entry.value)
    if not isinstance(value, bool):
        raise entry.problem(f"expected true or false, got {type_name(value)}")
    return value


def number(entry: Entry) -> Any:
    value = scalar(entry, entry.value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise entry.problem(f"expected a number, got {type_name(value)}")
    return value


def minutes(entry: Entry) -> float:
    """Minutes, fractions allowed; 0 means no limit."""
    value = float(number(entry))
    if not math.isfinite(value) or value < 0:
        raise entry.problem(f"must be a number of minutes >= 0, got {_written(entry.value)}")
    if value * 60 > 10 * 365 * 86400:
        raise entry.problem("is longer than ten years; use 0 for no limit")
    return value


def minutes_up_to(limit: float) -> Callable[[Entry], float]:
    """Minutes from 0 to ``limit``, fractions allowed."""

    def parse(entry: Entry) -> float:
        value = float(number(entry))
        if not math.isfinite(value) or not 0 <= value <= limit:
            raise entry.problem(
                f"must be a number of minutes from 0 to {limit:g}, got {_written(entry.value)}")
        return value

    parse.__doc__ = f"minutes, 0 to {limit:g}"
    return parse


def positive_number(entry: Entry) -> float:
    value = float(number(entry))
    if not math.isfinite(value) or value <= 0:
        raise entry.problem(f"must be a number > 0, got {_written(entry.value)}")
    return value


def positive_int(entry: Entry) -> int:
    value = number(entry)
    if not isinstance(value, int) or value < 1:
        raise entry.problem(f"must be a whole number >= 1, got {_written(entry.value)}")
    return value


_SIZE = re.compile(r"([1-9][0-9]{0,15})([KMGT]?)\Z")
SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
MIN_MEMORY = 1 << 20  # less is surely a mistake ("512" meant as megabytes)
MAX_MEMORY = 1 << 50  # 1024T; systemd's own limit is 2**64 - 2 bytes


def memory_size(entry: Entry) -> int:
    """Bytes: a whole number, optionally with K, M, G or T (powers of 1024,
    as systemd reads them), e.g. ``512M``; at least 1M."""
    value = scalar(entry, entry.value)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise entry.problem(f"expected a size such as 512M or 2G, got {type_name(value)}")
    found = _SIZE.match(str(value)) if isinstance(value, str) or value > 0 else None
    if found is None:
        raise entry.problem(
            f"expected a size such as 512M or 2G (K, M, G, T: powers of 1024), "
            f"got {check_line(entry, _written(entry.value))!r}")
    size = int(found.group(1)) * SIZE_UNITS[found.group(2)]
    if size < MIN_MEMORY:
        raise entry.problem(f"{size} bytes is less than 1M (write 512M for 512 megabytes)")
    if size > MAX_MEMORY:
        raise entry.problem("is more than 1024T")
    return size


_PERCENT = re.compile(r"([0-9]{1,6}(?:\.[0-9]{1,2})?)%\Z")
MAX_CPU_PERCENT = 100_000  # a thousand CPUs


def cpu_percent(entry: Entry) -> float:
    """Percent of one CPU (``50``, ``150`` for one and a half, or ``'50%'``),
    at most two decimals (systemd's resolution), more than 0."""
    value = scalar(entry, entry.value)
    if isinstance(value, str):
        found = _PERCENT.match(value)
        if found is None:
            raise entry.problem(
                f"expected a percentage such as 50 or 150%, got {check_line(entry, value)!r}")
        percent = float(found.group(1))
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        percent = float(value)
    else:
        raise entry.problem(f"expected a percentage such as 50 or 150%, got {type_name(value)}")
    if not math.isfinite(percent) or percent <= 0 or percent > MAX_CPU_PERCENT:
        raise entry.problem(
            f"must be a percentage > 0 and <= {MAX_CPU_PERCENT}, got {_written(entry.value)}")
    if abs(percent * 100 - round(percent * 100)) > 1e-6:
        raise entry.problem(f"at most two decimals, got {_written(entry.value)}")
    return round(percent, 2)


def nice(entry: Entry) -> int:
    """A nice value, -20 (first) to 19 (last)."""
    value = number(entry)
    if not isinstance(value, int) or not -20 <= value <= 19:
        raise entry.problem(f"must be a whole number from -20 to 19, got {_written(entry.value)}")
    return value


def choice(*allowed: str) -> Callable[[Entry], str]:
    def parse(entry: Entry) -> str:
        value = text(entry)
        if value not in allowed:
            raise entry.problem(f"must be one of {', '.join(allowed)}, got {value!r}")
        return value

    parse.__doc__ = " | ".join(allowed)
    return parse


def _written(node: Node) -> str:
    return node.text if isinstance(node, Scalar) else "?"


def items(entry: Entry, what: str) -> list[Node]:
    """A string or a list of strings, as the nodes of the strings."""
    node = entry.value
    if isinstance(node, Seq):
        if not node.items:
            raise entry.problem(f"must not be an empty list of {what}")
        return list(node.items)
    return [node]


def string_list(entry: Entry) -> tuple[str, ...]:
    """A string or a list of strings (tags)."""
    result = []
    for node in items(entry, "strings"):
        value = check_line(entry, _text_of(entry, node), node)
        if not value.strip():
            raise entry.problem("must not be empty", node)
        result.append(value)
    return tuple(result)


@dataclass(frozen=True)
class Command:
    """One command line as written, and the argument list it runs."""

    text: str
    argv: tuple[str, ...]


def commands(entry: Entry) -> tuple[Command, ...]:
    """One command line or a list of them, split like a shell would
    (``shlex``) but never run through one."""
    result = []
    for node in items(entry, "commands"):
        if isinstance(node, Scalar) and node.value is not None and not isinstance(node.value, str):
            # Not taken as written, unlike names: the original could not run
            # 'command: 42' or 'command: true' (it splits strings only).
            raise entry.problem(
                f"expected a command line (a string), got {type_name(node.value)}", node
            )
        line = check_line(entry, _text_of(entry, node, "a command line"), node, "command", True)
        if line.isascii() and "\\" not in line and _SIMPLE_WORDS.fullmatch(line):
            # Without backslashes, POSIX shell-like splitting is: words of
            # unquoted runs and '...' / "..." parts, quotes removed -- what
            # shlex.split gives, without its per-character loop.
            argv = [_UNQUOTE.sub(_unquoted, word) for word in _WORD.findall(line)]
        else:
            try:
                argv = shlex.split(line, comments=False, posix=True)
            except ValueError as err:
                raise entry.problem(f"cannot split command line: {err}", node) from None
        if not argv:
            raise entry.problem("command is empty", node)
        program = argv[0]
        if not program:
            raise entry.problem("program is empty", node)
        if program in (".", "..") or program.endswith("/"):
            raise entry.problem(f"program {program!r} is a directory", node)
        if program[0] in PROGRAM_PREFIXES:
            # systemd reads these as flags on ExecStart= ('+' runs as root).
            raise entry.problem(f"program must not start with {program[0]!r}", node)
        if "/" in program and not program.startswith("/"):
            raise entry.problem(
                f"program {program!r}: give an absolute path (or a plain name found in PATH)",
                node,
            )
        for arg in argv:
            check_line(entry, arg, node, "command argument")
        result.append(Command(line, tuple(argv)))
    return tuple(result)


# A credential's name: the name of a file in the credentials directory, and
# systemd's credential ID in LoadCredential=ID:PATH (no ':', '/', '%', no
# white space; not starting with '.': neither '.', '..' nor a hidden file).
CREDENTIAL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
CREDENTIAL_RULE = "letters, digits, '_', '-' and '.', at most 128, not starting with '.' or '-'"


def credential_names(entry: Entry) -> tuple[str, ...]:
    """Names of files in the credentials directory (one, or a list)."""
    result: list[str] = []
    for node in items(entry, "credential names"):
        if isinstance(node, Scalar) and node.value is not None and not isinstance(node.value, str):
            raise entry.problem(f"expected a file name, got {type_name(node.value)}", node)
        name = _text_of(entry, node, "a file name")
        if not name:
            raise entry.problem("a credential name must not be empty", node)
        if not CREDENTIAL_NAME.match(name):
            shown = printable(name if len(name) <= 64 else name[:64] + "...")
            raise entry.problem(f"{shown!r} is not a credential name: use {CREDENTIAL_RULE}", node)
        if name in result:
            raise entry.problem(f"{name!r} is listed twice", node)
        result.append(name)
    return tuple(result)


# A container image reference: registry/path:tag@digest characters, no space.
IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,1023}\Z")


def image(entry: Entry) -> str:
    """A container image reference (``registry.example/team/tool:1.2``)."""
    value = nonempty_text(entry)
    if not IMAGE.match(value):
        raise entry.problem(f"{value!r} is not an image reference (letters, digits, ./:@+-_)")
    return value


def environment(entry: Entry) -> tuple[tuple[str, str], ...]:
    """Extra variables; values become strings as the original did
    (``true`` -> ``True``, ``123`` -> ``123``)."""
    node = entry.value
    if not isinstance(node, Map):
        raise entry.problem(f"expected a mapping of NAME: value, got {_kind(entry, node)}")
    seen: set[str] = set()
    result = []
    for key_node, value_node in node.items:
        name = _text_of(entry, key_node, "a variable name")
        if not _ENV_NAME.match(name):
            raise entry.problem(f"{name!r} is not a valid variable name", key_node, name)
        if name in seen:
            raise entry.problem("duplicate variable", key_node, name)
        seen.add(name)
        value = scalar(entry, value_node)
        if value is None:
            raise entry.problem(
                "expected a value, got null (write \"\" for an empty value)", value_node, name
            )
        assert isinstance(value_node, Scalar)
        # as the original: str() of the value, but numbers keep their text
        shown = str(value) if isinstance(value, (str, bool)) else value_node.text
        check_line(entry, shown, value_node, f"environment value of {name}")
        result.append((name, shown))
    return tuple(result)


def _kind(entry: Entry, node: Node) -> str:
    if isinstance(node, Seq):
        return "a list"
    if isinstance(node, Map):
        return "a mapping"
    return type_name(node.value)


def sub_entries(entry: Entry, allowed: Iterable[str],
                required: Iterable[str] = ()) -> dict[str, Entry]:
    """The entries of a nested mapping (``failmail``), unknown keys refused,
    and each of ``required`` there."""
    node = entry.value
    if not isinstance(node, Map):
        raise entry.problem(f"expected a mapping, got {_kind(entry, node)}")
    known = set(allowed)
    result: dict[str, Entry] = {}
    for key_node, value_node in node.items:
        key = _text_of(entry, key_node, "a key")
        if key not in known:
            raise entry.problem(
                f"unknown key (expected {', '.join(sorted(known))})", key_node, key
            )
        if key in result:
            raise entry.problem("duplicate key", key_node, key)
        result[key] = Entry(f"{entry.key}.{key}", value_node, entry.source)
    for key in required:
        if key not in result:
            raise entry.problem(f"{key} is missing")
    return result


def collect(problems: list[Problem], call: Callable[[], T]) -> T | None:
    """Run a parser, adding its problems to ``problems`` instead of raising."""
    try:
        return call()
    except PcError as err:
        problems.extend(err.problems)
        return None


def missing(source: str, key: str) -> Problem:
    return Problem(source, 1, key, "required key is missing")


# -- JSON Schema fragments -----------------------------------------------------
#
# Every job key declares, with ``schema=``, the JSON Schema fragment of what
# its parser accepts; ``run-job schema`` (pc_systemd/model/job_schema.py)
# puts them together so that editors check job files as they are typed. A
# new job key takes the fragment of its parser from here (``f.flag`` ->
# ``BOOLEAN``, ``f.minutes`` -> ``MINUTES``, ``f.choice(*X)`` ->
# ``one_of(*X)``, ...) or writes its own with these helpers;
# tests/test_job_schema.py fails for a job key without one.
#
# The rule: a fragment never refuses what the parser accepts (the tests run
# every valid job file of the tests and the hostile corpus through both),
# and refuses what it can of the rest. Where a parser checks more than JSON
# Schema can say (a schedule's ranges, a zone that exists, quoting), the
# fragment is looser, never stricter. Patterns are written for both
# Python's ``re`` and JavaScript (editors): no ``\Z``, no lookbehind, and no
# bare ``$`` where Python's "before a final newline" would matter.

# The characters check_line refuses that a pattern can name in every regex
# dialect (lone surrogates and astral noncharacters cannot be written for
# JavaScript without its "u" flag; YAML cannot carry them anyway).
_CONTROLS = r"\u0000-\u0008\u000a-\u001f\u007f-\u009f\u2028\u2029\ufdd0-\ufdef\ufffe\uffff"
_TAB = r"\u0009"
_CONTROL_MESSAGE = "must be one line, without control characters"
_TAB_MESSAGE = "must be one line, without tabs or control characters"
# Plain scalars that are numbers or booleans are taken as written (name: 2024).
SCALAR = ("string", "number", "boolean")


def refuse(characters: str, message: str) -> Schema:
    """Strings with any of ``characters`` (the inside of a character class)
    are refused. ``(?!\\n)``: Python's ``$`` also matches before a final
    newline, JavaScript's does not."""
    return matching(f"^[^{characters}]*$(?!\\n)", message)


def matching(pattern: str, message: str) -> Schema:
    """Strings must contain a match of ``pattern``; ``message`` says what is
    wanted: yaml-language-server shows it (``patternErrorMessage``) instead
    of the pattern; validators that do not know the keyword ignore it."""
    return {"pattern": pattern, "patternErrorMessage": message}


def whole(regex: re.Pattern[str], message: str) -> Schema:
    """:func:`matching` a parser's ``\\Z``-anchored ``regex`` as JSON Schema
    says it: the whole string, and no line break after ``$``."""
    return matching("^" + regex.pattern.removesuffix(r"\Z") + "$(?!\\n)", message)


def text_schema(*rules: Schema, types: tuple[str, ...] = SCALAR, tabs: bool = False) -> Schema:
    """One line of text (no control character; a tab only with ``tabs``),
    at most MAX_VALUE characters, and ``rules`` (more schemas it must pass)."""
    controls = _CONTROLS if tabs else _TAB + _CONTROLS
    return {
        "type": list(types) if len(types) > 1 else types[0],
        "maxLength": MAX_VALUE,
        "allOf": [refuse(controls, _CONTROL_MESSAGE if tabs else _TAB_MESSAGE), *rules],
    }


def one_of(*allowed: str) -> Schema:
    """The fragment of ``choice(*allowed)``."""
    return {"enum": list(allowed)}


def text_or_list(item: Schema) -> Schema:
    """The fragment of a string-or-list key (``items``): ``item`` or a
    non-empty list of them."""
    return {"anyOf": [item, {"type": "array", "minItems": 1, "items": item}]}


NOT_BLANK = matching(r"\S", "must not be empty")  # Python's \s is str.isspace(), as strip()
TEXT = text_schema()  # text
NONEMPTY_TEXT = text_schema(NOT_BLANK)  # nonempty_text
# unit_text: the last character that is not white space is not a backslash.
UNIT_TEXT = text_schema(matching(r"[^\s\\]\s*$", "must not be empty or end with a backslash"))
FREE_TEXT = {  # free_text
    "type": list(SCALAR), "maxLength": MAX_VALUE, **refuse(r"\u0000", "must not contain NUL"),
}
# flag: YAML 1.1 (ours, the original's) reads yes/no/on/off as booleans; an
# editor reading YAML 1.2 sees strings, which must not be marked wrong.
YAML11_BOOLEANS = tuple(
    spelling for word in ("yes", "no", "on", "off")
    for spelling in (word, word.capitalize(), word.upper())
)
BOOLEAN = {"anyOf": [{"type": "boolean"}, {"enum": list(YAML11_BOOLEANS)}]}
# minutes: no upper "inf"; NaN cannot be said in JSON Schema (nor written in JSON).
MINUTES = {"type": "number", "minimum": 0, "maximum": 10 * 365 * 86400 // 60}
POSITIVE_INT = {"type": "integer", "minimum": 1}  # positive_int (2.0 passes: JSON's integer)
STRINGS = text_or_list(NONEMPTY_TEXT)  # string_list
# memory_size: bytes, or a size with a unit (whether "1K" is under 1M, or
# "2000T" over 1024T, is the parser's to say).
MEMORY_SIZE = {"anyOf": [
    {"type": "integer", "minimum": MIN_MEMORY, "maximum": MAX_MEMORY},
    {"type": "string", **whole(_SIZE, "a size such as 512M or 2G (K, M, G, T: powers of 1024)")},
]}
# cpu_percent: a number, or text with '%' (no multipleOf 0.01 for "at most two
# decimals": validators compute it in floating point and refuse 0.07).
CPU_PERCENT = {"anyOf": [
    {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_CPU_PERCENT},
    {"type": "string", **whole(_PERCENT, "a percentage such as 50 or 150%")},
]}
NICE = {"type": "integer", "minimum": -20, "maximum": 19}  # nice
IMAGE_SCHEMA = text_schema(  # image
    whole(IMAGE, "an image reference such as registry.example/tool:1.2"),
    types=("string",),
)
# commands: a string (numbers are not taken as written), tabs allowed, and
# the program does not start with one of systemd's ExecStart= flags.
COMMAND_LINE = text_schema(
    matching(f"^[ \\t]*[^{PROGRAM_PREFIXES} \\t]",
             f"a command line; the program must not start with {' '.join(PROGRAM_PREFIXES)}"),
    types=("string",), tabs=True,
)
COMMANDS = text_or_list(COMMAND_LINE)
_CREDENTIAL = {"type": "string", **whole(CREDENTIAL_NAME, f"a file name: {CREDENTIAL_RULE}")}
CREDENTIALS = {"anyOf": [  # credential_names: text_or_list, each name once
    _CREDENTIAL, {"type": "array", "minItems": 1, "uniqueItems": True, "items": _CREDENTIAL}]}
ENVIRONMENT = {  # environment
    "type": "object",
    "propertyNames": whole(_ENV_NAME, "a variable name: letters, digits and _, not a digit first"),
    "additionalProperties": TEXT,
}


def mapping_schema(required: Iterable[str], properties: Mapping[str, Schema]) -> Schema:
    """A nested mapping of ``sub_entries``: these keys only."""
    return {
        "type": "object",
        "properties": dict(properties),
        "required": list(required),
        "additionalProperties": False,
    }
