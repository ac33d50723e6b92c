"""The general YAML path: PyYAML (libyaml when available) composes the
document, which is turned into :mod:`.nodes` with bounds on depth and alias
expansion and only the plain YAML 1.1 scalar types allowed."""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

from .errors import PcError, Problem, one
from .nodes import MAX_DEPTH, MAX_NODES, YAML_KEY, Map, Node, Scalar, Seq

try:  # libyaml is several times faster; fall back for odd PyYAML builds
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _Loader = yaml.SafeLoader

_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
}


MAX_FLOW = 1000
_COLLECTION_TAGS = {"tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"}


def compose_nodes(text: str, shown: str) -> Node | None:
    """Compose one YAML document; syntax errors become one-line problems."""
    if text.count("[") + text.count("{") > MAX_FLOW:
        # Deep flow nesting recurses in PyYAML's composer; libyaml caps it,
        # a PyYAML built without that cap would overflow the C stack.
        raise one(shown, 1, YAML_KEY, f"more than {MAX_FLOW} flow collections ('[', '{{')")
    try:
        root = yaml.compose(text, Loader=_Loader)
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
    if root is None:
        return None
    return _Converter(shown).node(root, YAML_KEY, 0, top=True)


class _Converter:
    """yaml nodes -> our nodes, bounding the work an alias bomb could cause."""

    def __init__(self, shown: str) -> None:
        self.shown = shown
        self.count = 0
        self.constructor = SafeConstructor()

    def fail(self, node: yaml.Node, key: str, message: str) -> PcError:
        return PcError([Problem(self.shown, int(node.start_mark.line) + 1, key, message)])

    def node(self, node: yaml.Node, key: str, depth: int, top: bool = False) -> Node:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.fail(node, key, f"value is too large (more than {MAX_NODES} nodes "
                            "after aliases)")
        if depth > MAX_DEPTH:
            raise self.fail(node, key, f"value is nested more than {MAX_DEPTH} levels deep")
        line = int(node.start_mark.line) + 1
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, key, line)
        if node.tag not in _COLLECTION_TAGS and not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, key, f"unsupported YAML tag {node.tag}")
        if isinstance(node, yaml.SequenceNode):
            return Seq(tuple(self.node(item, key, depth + 1) for item in node.value), line)
        if isinstance(node, yaml.MappingNode):
            pairs = []
            for key_node, value_node in node.value:
                k = self.node(key_node, key, depth + 1)
                # below the top, errors name the top-level key they are under
                sub = k.text if top and isinstance(k, Scalar) else key
                pairs.append((k, self.node(value_node, sub, depth + 1)))
            return Map(tuple(pairs), line)
        raise self.fail(node, key, "unsupported YAML node")  # pragma: no cover

    def scalar(self, node: yaml.ScalarNode, key: str, line: int) -> Scalar:
        if node.tag not in _SCALAR_TAGS:
            raise self.fail(node, key, f"unsupported YAML tag {node.tag}")
        try:
            value = self.constructor.construct_object(node)
        except (ConstructorError, ValueError, OverflowError) as err:
            raise self.fail(node, key, f"bad value: {' '.join(str(err).split())}") from None
        return Scalar(value, str(node.value), line)
