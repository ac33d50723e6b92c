"""The general YAML path: PyYAML (libyaml when available) parses the
document into events, which are composed straight into :mod:`pc_systemd.model.nodes` with
bounds on nodes, depth and alias expansion, and only the plain YAML 1.1
scalar types allowed.

Not ``yaml.compose``: it builds the whole document before anything can be
counted, at about 4 us a node, so one file of 50,000 duplicate keys (which
fits in the size limit) cost 0.4 s, and 400 of them kept the generator
past systemd's 90 s limit.  Here parsing stops at the node that is one too
many, so no document costs more than :data:`.nodes.MAX_NODES` nodes' work.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import (
    AliasEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

from pc_systemd.model.errors import PcError, Problem, one
from pc_systemd.model.nodes import MAX_DEPTH, MAX_NODES, YAML_KEY, Map, Node, Scalar, Seq

try:  # libyaml is several times faster; fall back for odd PyYAML builds
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _Loader = yaml.SafeLoader

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

MAX_FLOW = 1000


def compose_nodes(text: str, shown: str) -> Node | None:
    """Compose one YAML document; syntax errors become one-line problems."""
    if text.count("[") + text.count("{") > MAX_FLOW:
        # Deep flow nesting recurses in PyYAML's parser; libyaml caps it,
        # a PyYAML built without that cap would overflow the C stack.
        raise one(shown, 1, YAML_KEY, f"more than {MAX_FLOW} flow collections ('[', '{{')")
    loader = _Loader(text)
    try:
        return _Composer(loader, shown).document()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = int(mark.line) + 1 if mark is not None else 1
        what = " ".join(str(err.problem or err.context or "syntax error").split())
        raise one(shown, line, YAML_KEY, what) from None
    except yaml.reader.ReaderError as err:
        line = text[: err.position].count("\n") + 1
        raise one(shown, line, YAML_KEY, f"unacceptable character {err.character!r}") from None
    except yaml.YAMLError as err:
        raise one(shown, 1, YAML_KEY, " ".join(str(err).split())) from None
    finally:
        loader.dispose()


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
            while not self.loader.check_event(yaml.SequenceEndEvent):
                items.append(self.node(key, depth + 1))
            self.loader.get_event()
            result = Seq(tuple(items), line)
        elif isinstance(event, MappingStartEvent):
            self._tag(event, _MAP_TAG, key)
            pairs = []
            while not self.loader.check_event(yaml.MappingEndEvent):
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
