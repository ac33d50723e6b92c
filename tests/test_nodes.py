"""Job and configuration files read through PyYAML into nodes that keep
their line numbers, typed as YAML 1.1 (PyYAML's SafeLoader) types them."""

from __future__ import annotations

from pc_systemd.model.nodes import Map, Scalar, Seq, parse


def test_lines_and_types() -> None:
    node = parse("# c\n\nname: Off\ntimeout: 1.50\ntag:\n  - a\n  - 2\nenv: {a: 1}\n", "f")
    assert isinstance(node, Map) and node.line == 3
    (k1, v1), (_, v2), (_, v3), (_, v4) = node.items
    assert k1 == Scalar("name", "name", 3)
    assert v1 == Scalar(False, "Off", 3)
    assert v2 == Scalar(1.5, "1.50", 4)
    assert isinstance(v3, Seq) and v3.line == 6
    assert v3.items == (Scalar("a", "a", 6), Scalar(2, "2", 7))
    assert v4 == Map(((Scalar("a", "a", 8), Scalar(1, "1", 8)),), 8)


def test_empty_and_comment_only_documents() -> None:
    assert parse("", "f") is None
    assert parse("# nothing\n\n", "f") is None
