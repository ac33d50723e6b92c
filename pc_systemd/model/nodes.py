"""Job and configuration files as small, typed nodes that keep their lines.

Reading is bounded because job files come from developers: size, nesting
and alias expansion are capped, and non-UTF-8 bytes are reported with their
line.  The fast reader (:mod:`pc_systemd.model.fastyaml`) handles the plain YAML that job
files are made of; anything else goes through PyYAML (:mod:`pc_systemd.model.pyyaml_doc`),
which is imported only then.  Both produce the same nodes.
"""

from __future__ import annotations

import datetime
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Union

from pc_systemd.model.errors import PcError, Problem, one

MAX_BYTES = 256 * 1024  # job files are a few hundred bytes; this bounds parse time
MAX_DEPTH = 32
MAX_NODES = 2_000  # a job file has tens; each costs ~2 us to parse and check
FILE_KEY = "(file)"
YAML_KEY = "(yaml)"


# Parse nodes are built by the thousand at every generator run; a frozen
# dataclass's __init__ costs several times more, so these are plain slotted
# dataclasses that nothing mutates after parsing.
@dataclass(slots=True)
class Scalar:
    value: Any  # as PyYAML's SafeLoader constructs it (YAML 1.1 typing)
    text: str  # the scalar's text as written (after unquoting)
    line: int  # 1-based


@dataclass(slots=True)
class Seq:
    items: tuple[Node, ...]
    line: int


@dataclass(slots=True)
class Map:
    items: tuple[tuple[Node, Node], ...]
    line: int


Node = Union[Scalar, Seq, Map]  # noqa: UP007 - a runtime alias under `from __future__`


@dataclass(frozen=True)
class Entry:
    """One ``key: value`` of a mapping, with where it was written."""

    key: str
    value: Node
    source: str  # the file shown in messages

    @property
    def line(self) -> int:
        return self.value.line

    def problem(self, message: str, node: Node | None = None, subkey: str = "") -> PcError:
        where = node if node is not None else self.value
        key = f"{self.key}.{subkey}" if subkey else self.key
        return PcError([Problem(self.source, where.line, key, message)])


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
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise one(shown, 1, FILE_KEY, "not a regular file")
        if st.st_size > MAX_BYTES:
            raise one(shown, 1, FILE_KEY, f"file is larger than {MAX_BYTES} bytes")
        data = os.read(fd, MAX_BYTES + 1)
        while len(data) <= MAX_BYTES:  # short reads only on odd file systems
            more = os.read(fd, MAX_BYTES + 1 - len(data))
            if not more:
                break
            data += more
    except OSError as err:
        raise one(shown, 1, FILE_KEY, f"cannot read: {err.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:
        raise one(shown, 1, FILE_KEY, f"file is larger than {MAX_BYTES} bytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise one(shown, line, FILE_KEY, f"not valid UTF-8 (byte {data[err.start]:#04x})") from None


def parse(text: str, shown: str) -> Node | None:
    """One YAML document as nodes (None for an empty document)."""
    if len(text) > MAX_BYTES:  # read_text's limit, for text that did not come through it
        raise one(shown, 1, FILE_KEY, f"file is larger than {MAX_BYTES} bytes")
    from pc_systemd.model.fastyaml import fast_parse

    node = fast_parse(text)
    if node is not False:
        return node
    from pc_systemd.model.pyyaml_doc import compose_nodes

    return compose_nodes(text, shown)


def load(path: str, shown: str) -> Node | None:
    return parse(read_text(path, shown), shown)


def mapping_entries(node: Node | None, shown: str, what: str) -> Iterator[Entry]:
    """Yield the entries of a top-level mapping, refusing duplicates."""
    if node is None:
        raise one(shown, 1, FILE_KEY, f"empty file: expected a mapping of {what}")
    if not isinstance(node, Map):
        raise one(shown, node.line, FILE_KEY, f"expected a mapping of {what}")
    seen: dict[str, int] = {}
    for key_node, value_node in node.items:
        if not isinstance(key_node, Scalar) or not isinstance(key_node.value, str):
            raise one(shown, key_node.line, YAML_KEY, "keys must be plain strings")
        key = key_node.value
        if key in seen:
            raise one(shown, key_node.line, key, f"duplicate key (first at line {seen[key]})")
        seen[key] = key_node.line
        yield Entry(key, value_node, shown)


def scalar(entry: Entry, node: Node) -> Any:
    """The value of a node that must be a single value."""
    if isinstance(node, Scalar):
        return node.value
    kind = "a list" if isinstance(node, Seq) else "a mapping"
    raise entry.problem(f"expected a single value, got {kind}", node)


def to_python(entry: Entry, node: Node | None = None) -> Any:
    """The plain Python value of a node (for free-form mappings such as
    ``logging``)."""
    return _plain(entry, entry.value if node is None else node)


def _plain(entry: Entry, node: Node) -> Any:
    if isinstance(node, Scalar):
        return node.value
    if isinstance(node, Seq):
        return [_plain(entry, item) for item in node.items]
    result: dict[Any, Any] = {}
    for key_node, value_node in node.items:
        key = _plain(entry, key_node)
        if isinstance(key, (list, dict)):
            raise entry.problem("mapping keys must be scalars", key_node)
        if key in result:
            raise entry.problem(f"duplicate key {key!r}", key_node)
        result[key] = _plain(entry, value_node)
    return result


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
    return type(value).__name__
