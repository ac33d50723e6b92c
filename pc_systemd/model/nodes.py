"""Job and configuration files as small, typed nodes that keep their lines.

Reading is bounded because job files come from developers: the size is
checked before anything is parsed, and nodes, nesting and alias expansion
are capped; non-UTF-8 bytes are reported with their line.  PyYAML (libyaml
where it is built in) parses the document into events, which are composed
here straight into the nodes, with only the plain YAML 1.1 scalar types
allowed.

Not ``yaml.compose``: it builds the whole document before anything can be
counted, at about 4 us a node, so one file of 50,000 duplicate keys (which
fits in the size limit) cost 0.4 s, and 400 of them kept the generator
past systemd's 90 s limit.  Here parsing stops at the node that is one too
many, so no document costs more than :data:`MAX_NODES` nodes' work.
"""

from __future__ import annotations

import datetime
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Union

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

from pc_systemd.model.errors import PcError, Problem, one

MAX_BYTES = 256 * 1024  # job files are a few hundred bytes; this bounds parse time
MAX_DEPTH = 32
MAX_NODES = 2_000  # a job file has tens; each costs ~2 us to parse and check
FILE_KEY = "(file)"
YAML_KEY = "(yaml)"
MAX_FLOW = 1000  # '[' and '{' in one document (see compose_nodes)
TAB_RULE = "YAML does not allow tabs for indenting"

try:  # libyaml is several times faster; fall back for odd PyYAML builds
    Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    Loader = yaml.SafeLoader


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


# -- PyYAML's events composed into nodes --------------------------------------

_STR = "tag:yaml.org,2002:str"
_SCALAR_TAGS = {
    _STR,
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
}
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MAP_TAG = "tag:yaml.org,2002:map"



def compose_nodes(text: str, shown: str) -> Node | None:
    """Compose one YAML document; syntax errors become one-line problems."""
    if text.count("[") + text.count("{") > MAX_FLOW:
        # Deep flow nesting recurses in PyYAML's parser; libyaml caps it,
        # a PyYAML built without that cap would overflow the C stack.
        raise one(shown, 1, YAML_KEY, f"more than {MAX_FLOW} flow collections ('[', '{{')")
    loader = Loader(text)
    try:
        return _Composer(loader, shown).document()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = int(mark.line) + 1 if mark is not None else 1
        what = " ".join(str(err.problem or err.context or "syntax error").split())
        if mark is not None and _is_tab(text, int(mark.index)):
            # PyYAML's "found character that cannot start any token" hides
            # the cause; the original's message named the tab.
            what = f"tab character at column {int(mark.column) + 1} ({TAB_RULE})"
        raise one(shown, line, YAML_KEY, what) from None
    except yaml.reader.ReaderError as err:
        line = text[: err.position].count("\n") + 1
        raise one(shown, line, YAML_KEY, f"unacceptable character {err.character!r}") from None
    except yaml.YAMLError as err:
        raise one(shown, 1, YAML_KEY, " ".join(str(err).split())) from None
    finally:
        loader.dispose()


def _is_tab(text: str, index: int) -> bool:
    return 0 <= index < len(text) and text[index] == "\t"


class _Composer:
    """Events -> our nodes, as PyYAML's composer and SafeLoader's resolver
    would make them, counting every node (an alias counts as many nodes as
    it expands to) so that an alias bomb or a flood of keys stops early."""

    def __init__(self, loader: Any, shown: str) -> None:
        self.loader = loader
        self.shown = shown
        self.count = 0
        # anchor -> (node, nodes it stands for, where it was set)
        self.anchors: dict[str, tuple[Node, int, Any]] = {}
        self.open: set[str] = set()  # anchors of the collections being composed
        self.constructor = SafeConstructor()
        self.values: dict[tuple[str, str], Any] = {}  # (tag, text) -> value: all immutable

    def fail(self, mark: Any, key: str, message: str) -> PcError:
        return PcError([Problem(self.shown, int(mark.line) + 1, key, message)])

    def document(self) -> Node | None:
        get: Any = self.loader.get_event
        check = self.loader.check_event
        get()  # stream start
        if check(StreamEndEvent):
            return None
        start = get()  # document start
        root = self.node(YAML_KEY, 0, True)
        get()  # document end
        if not check(StreamEndEvent):
            raise ComposerError("expected a single document in the stream", start.start_mark,
                                "but found another document", get().start_mark)
        return root

    def node(self, key: str, depth: int, top: bool = False) -> Node:
        event = self.loader.get_event()
        if isinstance(event, AliasEvent):
            mark: Any = event.start_mark
            found = self.anchors.get(event.anchor or "")
            if found is None:
                if event.anchor in self.open:
                    raise self.fail(mark, key, "an alias inside the value it names "
                                    "(a recursive alias)")
                raise ComposerError(None, None, "found undefined alias", mark)
            self._counted(found[1], mark, key)
            return found[0]
        before = self.count
        self._counted(1, event.start_mark, key)
        if depth > MAX_DEPTH:
            raise self.fail(event.start_mark, key,
                            f"value is nested more than {MAX_DEPTH} levels deep")
        anchor = event.anchor
        if anchor is not None and anchor in self.anchors:
            raise ComposerError(f"found duplicate anchor {anchor!r}; first occurrence",
                                self.anchors[anchor][2], "second occurrence", event.start_mark)
        line = int(event.start_mark.line) + 1
        if anchor is not None:
            self.open.add(anchor)
        result: Node
        if isinstance(event, ScalarEvent):
            result = self.scalar(event, key, line)
        elif isinstance(event, SequenceStartEvent):
            self._tag(event, _SEQ_TAG, key)
            items = []
            while not self.loader.check_event(SequenceEndEvent):
                items.append(self.node(key, depth + 1))
            self.loader.get_event()
            result = Seq(tuple(items), line)
        elif isinstance(event, MappingStartEvent):
            self._tag(event, _MAP_TAG, key)
            pairs = []
            while not self.loader.check_event(MappingEndEvent):
                k = self.node(key, depth + 1)
                # below the top, errors name the top-level key they are under
                sub = k.text if top and isinstance(k, Scalar) else key
                pairs.append((k, self.node(sub, depth + 1)))
            self.loader.get_event()
            result = Map(tuple(pairs), line)
        else:  # pragma: no cover - the parser gives only the events above here
            raise self.fail(event.start_mark, key, "unsupported YAML node")
        if anchor is not None:
            self.open.discard(anchor)
            self.anchors[anchor] = (result, self.count - before, event.start_mark)
        return result

    def _counted(self, nodes: int, mark: Any, key: str) -> None:
        self.count += nodes
        if self.count > MAX_NODES:
            raise self.fail(mark, key, f"value is too large (more than {MAX_NODES} nodes "
                            "after aliases)")

    def _tag(self, event: Any, default: str, key: str) -> None:
        tag = event.tag
        if tag is not None and tag != "!" and tag != default:
            raise self.fail(event.start_mark, key, f"unsupported YAML tag {tag}")

    def scalar(self, event: Any, key: str, line: int) -> Scalar:
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        if tag not in _SCALAR_TAGS:
            raise self.fail(event.start_mark, key, f"unsupported YAML tag {tag}")
        text = event.value
        if tag == _STR:
            return Scalar(text, text, line)
        value = self.values.get((tag, text), self.values)
        if value is self.values:
            node = yaml.ScalarNode(tag, text, event.start_mark, event.end_mark, event.style)
            try:
                value = self.constructor.construct_object(node)
            except (ConstructorError, ValueError, OverflowError) as err:
                raise self.fail(event.start_mark, key,
                                f"bad value: {' '.join(str(err).split())}") from None
            self.values[tag, text] = value
        return Scalar(value, text, line)
