"""The fast reader gives PyYAML's result on every document it accepts, and
accepts the job files people write."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from pc_systemd.model.errors import PcError
from pc_systemd.model.fastyaml import fast_parse
from pc_systemd.model.nodes import Map, Scalar
from pc_systemd.model.pyyaml_doc import compose_nodes
from tests.conftest import ROOT
from tests.test_job import BAD

WORDS = [
    "hello", "yes", "No", "ON", "off", "True", "null", "~", "0", "-0", "+5", "012", "0x1F",
    "1.50", ".5", "1e3", "1:30", "2024-01-02", "/bin/true", "-/bin/x", "a b", "a: b", "a #c",
    "a#b", "'q'", "\"dq\"", "'it''s'", "\"a\\\\b\"", "[a, b]", "[]", "{a: 1}", "*/5 * * * *",
    "30 2 * * mon-fri", "&a x", "*a", "!!str 5", "@x", "`x`", "%x", "|", ">", "? x", ":x",
    "=", "<<", "é", "1_000", ".inf", "NaN", "- x", "x:", "9:00", "a,b", "-", "--",
]
KEYS = ["name", "command", "schedule", "tag", "environment", "description", "on", "1", "x y"]


def random_document(rng: random.Random) -> str:
    lines = []
    for _ in range(rng.randint(0, 7)):
        key = rng.choice(KEYS)
        shape = rng.random()
        if shape < 0.5:
            lines.append(f"{key}: {rng.choice(WORDS)}")
        elif shape < 0.65:
            lines.append(f"{key}:")
            indent = " " * rng.choice([0, 2, 4])
            lines += [f"{indent}- {rng.choice(WORDS)}" for _ in range(rng.randint(0, 3))]
        elif shape < 0.8:
            lines.append(f"{key}:")
            indent = " " * rng.choice([2, 4])
            lines += [f"{indent}{rng.choice([*KEYS, 'A', 'PATH'])}: {rng.choice(WORDS)}"
                      for _ in range(rng.randint(0, 3))]
        elif shape < 0.9:
            lines.append(f"{key}: {rng.choice(['>', '|'])}")
            lines += ["    " + rng.choice(WORDS) for _ in range(rng.randint(0, 3))]
        else:
            lines.append(rng.choice(["# comment", "", "   ", "---", "  # indented", "\t"]))
    return "\n".join(lines) + rng.choice(["", "\n", "\n\n"])


def mutate(text: str, rng: random.Random) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 3)):
        pos = rng.randint(0, len(chars))
        if chars and rng.random() < 0.4:
            del chars[min(pos, len(chars) - 1)]
        else:
            chars.insert(pos, rng.choice(" :#-'\"[]{}>|&*!\n\\,xy0"))
    return "".join(chars)


def pyyaml(text: str) -> object:
    try:
        return compose_nodes(text, "f")
    except PcError:
        return "error"


def check(text: str) -> bool:
    fast = fast_parse(text)
    if fast is False:
        return False
    assert fast == pyyaml(text), text
    return True


# found by a longer run of the random comparison: white space after text blocks
TRICKY = [
    "description: >\n  # indented\n   \n\n",
    "environment:\n    A: ~\ntag: |\n   ? x\n    \na: b\n\n",
    "on: |\n |   a,b\n   \n",
    "tag: >\n    0x1F\n    1e3",
]


def corpus() -> list[str]:
    texts = [text for text, _ in BAD] + TRICKY
    texts += [p.read_text() for p in (ROOT / "examples" / "jobs").glob("*.yaml")]
    texts.append((ROOT / "job.example.yaml").read_text())
    texts.append((ROOT / "examples" / "process-control.example.yaml").read_text())
    return texts


def test_agrees_with_pyyaml_on_the_test_corpus() -> None:
    for text in corpus():
        check(text)


def test_agrees_with_pyyaml_on_random_and_mutated_documents() -> None:
    rng = random.Random(20261128)
    accepted = 0
    for _ in range(6000):
        text = random_document(rng)
        accepted += check(text)
        accepted += check(mutate(text, rng))
    assert accepted > 1000  # the comparison must exercise the fast reader


@pytest.mark.parametrize(
    "path", [*sorted((ROOT / "examples" / "jobs").glob("*.yaml")), ROOT / "job.example.yaml"],
    ids=lambda p: p.name,
)
def test_typical_job_files_take_the_fast_path(path: Path) -> None:
    assert fast_parse(path.read_text()) is not False


def test_lines_and_types() -> None:
    node = fast_parse("# c\n\nname: Off\ntimeout: 1.50\ntag:\n  - a\n  - 2\nenv: {a: 1}\n")
    assert node is False  # flow mappings go to PyYAML
    node = fast_parse("# c\n\nname: Off\ntimeout: 1.50\ntag:\n  - a\n  - 2\n")
    assert isinstance(node, Map) and node.line == 3
    (k1, v1), (_, v2), (_, v3) = node.items
    assert k1 == Scalar("name", "name", 3)
    assert v1 == Scalar(False, "Off", 3)
    assert v2 == Scalar(1.5, "1.50", 4)
    assert v3.line == 6


def test_empty_and_comment_only_documents() -> None:
    assert fast_parse("") is None
    assert fast_parse("# nothing\n\n") is None
