"""Read one YAML file into composed nodes, keeping line numbers for errors.

Job files come from developers, so reading is bounded: size, nesting and
alias expansion are capped, duplicate keys are errors (PyYAML would silently
keep the last one), and non-UTF-8 bytes are reported with their line.
"""

from __future__ import annotations

import datetime
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

from .errors import PcError, Problem, one

try:  # libyaml is several times faster; fall back for odd PyYAML builds
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _Loader = yaml.SafeLoader

MAX_BYTES = 1 << 20
MAX_DEPTH = 32
MAX_NODES = 10_000
FILE_KEY = "(file)"
YAML_KEY = "(yaml)"


def line_of(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


@dataclass(frozen=True)
class Entry:
    """One ``key: value`` of a mapping, with where it was written."""

    key: str
    value: yaml.Node
    source: str  # the file shown in messages

    @property
    def line(self) -> int:
        return line_of(self.value)

    def problem(self, message: str, node: yaml.Node | None = None, subkey: str = "") -> PcError:
        where = node if node is not None else self.value
        key = f"{self.key}.{subkey}" if subkey else self.key
        return PcError([Problem(self.source, line_of(where), key, message)])


def read_text(path: str, shown: str) -> str:
    """Read a file as UTF-8 text, refusing huge files and bad bytes."""
    try:
        # Symlinks were checked by the caller (they must stay inside the
        # job directory); O_NONBLOCK keeps a FIFO named like a job from
        # hanging the generator.
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as err:
        raise one(shown, 1, FILE_KEY, f"cannot open: {err.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise one(shown, 1, FILE_KEY, "not a regular file")
        with os.fdopen(fd, "rb") as handle:
            fd = -1
            data = handle.read(MAX_BYTES + 1)
    except OSError as err:
        raise one(shown, 1, FILE_KEY, f"cannot read: {err.strerror}") from None
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > MAX_BYTES:
        raise one(shown, 1, FILE_KEY, f"file is larger than {MAX_BYTES} bytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise one(shown, line, FILE_KEY, f"not valid UTF-8 (byte {data[err.start]:#04x})") from None


def compose(text: str, shown: str) -> yaml.Node | None:
    """Compose one YAML document; syntax errors become one-line problems."""
    try:
        return yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = int(mark.line) + 1 if mark is not None else 1
        what = " ".join(str(err.problem or err.context or "syntax error").split())
        raise one(shown, line, YAML_KEY, what) from None
    except yaml.YAMLError as err:
        raise one(shown, 1, YAML_KEY, " ".join(str(err).split())) from None


def mapping_entries(node: yaml.Node | None, shown: str, what: str) -> Iterator[Entry]:
    """Yield the entries of a top-level mapping, refusing duplicates."""
    if node is None:
        raise one(shown, 1, FILE_KEY, f"empty file: expected a mapping of {what}")
    if not isinstance(node, yaml.MappingNode):
        raise one(shown, line_of(node), FILE_KEY, f"expected a mapping of {what}")
    seen: dict[str, int] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
            raise one(shown, line_of(key_node), YAML_KEY, "keys must be plain strings")
        key = str(key_node.value)
        if key in seen:
            raise one(shown, line_of(key_node), key, f"duplicate key (first at line {seen[key]})")
        seen[key] = line_of(key_node)
        yield Entry(key, value_node, shown)


class _Counter:
    """Bounds the work of turning nodes into values (alias bombs)."""

    def __init__(self) -> None:
        self.nodes = 0


def to_python(entry: Entry, node: yaml.Node | None = None) -> Any:
    """The plain Python value of a node (for free-form mappings such as
    ``logging``), bounded in depth and size."""
    return _convert(entry, entry.value if node is None else node, 0, _Counter())


def _convert(entry: Entry, node: yaml.Node, depth: int, count: _Counter) -> Any:
    count.nodes += 1
    if count.nodes > MAX_NODES:
        raise entry.problem(f"value is too large (more than {MAX_NODES} nodes after aliases)")
    if depth > MAX_DEPTH:
        raise entry.problem(f"value is nested more than {MAX_DEPTH} levels deep", node)
    if isinstance(node, yaml.ScalarNode):
        return scalar(entry, node)
    if isinstance(node, yaml.SequenceNode):
        return [_convert(entry, item, depth + 1, count) for item in node.value]
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _convert(entry, key_node, depth + 1, count)
            if isinstance(key, (list, dict)):
                raise entry.problem("mapping keys must be scalars", key_node)
            if key in result:
                raise entry.problem(f"duplicate key {key!r}", key_node)
            result[key] = _convert(entry, value_node, depth + 1, count)
        return result
    raise entry.problem("unsupported YAML node", node)  # pragma: no cover


_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
}


def scalar(entry: Entry, node: yaml.Node) -> Any:
    """Construct a scalar with YAML 1.1 (PyYAML) typing, as the original read it."""
    if not isinstance(node, yaml.ScalarNode):
        kind = "a list" if isinstance(node, yaml.SequenceNode) else "a mapping"
        raise entry.problem(f"expected a single value, got {kind}", node)
    if node.tag not in _SCALAR_TAGS:
        raise entry.problem(f"unsupported YAML tag {node.tag}", node)
    try:
        return SafeConstructor().construct_object(node)
    except (ConstructorError, ValueError, OverflowError) as err:
        raise entry.problem(f"bad value: {' '.join(str(err).split())}", node) from None


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return "a date"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
