"""The package's layout: every module imports, the modules import one
another without a cycle, and the subpackages only import down the pipeline
cli -> broker -> views -> cron -> monitoring -> systemd -> model -> core.

Read from each module's module-level imports (those in ``if`` and ``try``
blocks at the top level too, ``TYPE_CHECKING`` ones included): an import
inside a function is a deliberate, commented exception that keeps a
dependency off a path (the generator's, a host's, a command's)."""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator, Mapping

import pytest

from tests.conftest import ROOT

PACKAGE = "pc_systemd"
# Each subpackage may import its own modules and those of the ones after it.
ORDER = ("cli", "broker", "views", "cron", "monitoring", "systemd", "model", "core")


def modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return found


def top_level_imports(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            yield from top_level_imports(node.body)
            yield from top_level_imports(node.orelse)
        elif isinstance(node, ast.Try):
            yield from top_level_imports(node.body)
            for handler in node.handlers:
                yield from top_level_imports(handler.body)
            yield from top_level_imports(node.orelse)
            yield from top_level_imports(node.finalbody)


def every_import(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node


def graph(found: Mapping[str, ast.Module], everywhere: bool = False) -> dict[str, set[str]]:
    """module -> the package's modules it imports at module level (with
    ``everywhere``, in functions too); ``from pc_systemd.model import
    fields`` names the module fields."""
    edges: dict[str, set[str]] = {}
    for name, tree in found.items():
        targets = edges.setdefault(name, set())
        for node in every_import(tree) if everywhere else top_level_imports(tree.body):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
            elif node.level == 0 and node.module and node.module.split(".")[0] == PACKAGE:
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    targets.add(sub if sub in found else node.module)
    return edges


def cycle(edges: Mapping[str, set[str]]) -> list[str] | None:
    """One import cycle (its modules in order, the first again at the end), or None."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return [*path[path.index(name):], name]
        if name in done:
            return None
        for target in sorted(edges.get(name, ())):
            found = visit(target, [*path, name])
            if found:
                return found
        done.add(name)
        return None

    for name in sorted(edges):
        found = visit(name, [])
        if found:
            return found
    return None


def subpackage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def upward(edges: Mapping[str, set[str]]) -> list[str]:
    """Imports that go up the order (or to a subpackage not in it)."""
    wrong = []
    for name, targets in sorted(edges.items()):
        own = subpackage(name)
        for target in sorted(targets):
            theirs = subpackage(target)
            if own is None or own == theirs:
                continue
            if own not in ORDER or theirs not in ORDER or ORDER.index(theirs) < ORDER.index(own):
                wrong.append(f"{name} -> {target}")
    return wrong


FOUND = modules()
EDGES = graph(FOUND)
ALL_EDGES = graph(FOUND, everywhere=True)


@pytest.mark.parametrize("name", sorted(FOUND))
def test_every_module_imports(name: str) -> None:
    importlib.import_module(name)


def test_the_modules_import_one_another_without_a_cycle() -> None:
    assert cycle(EDGES) is None


def test_subpackages_import_only_down_the_pipeline() -> None:
    assert {subpackage(name) for name in FOUND} - {None} == set(ORDER)
    assert upward(EDGES) == []


def test_imports_inside_functions_hide_no_cycle_and_go_down_too() -> None:
    assert cycle(ALL_EDGES) is None
    assert upward(ALL_EDGES) == []


def test_the_graph_is_read_from_module_level_imports_only() -> None:
    """The checks above see real imports, and would see a cycle or an import
    up the order; an import inside a function is not an edge."""
    assert "pc_systemd.model.config" in EDGES["pc_systemd.model.job"]
    assert "pc_systemd.model.fields" in EDGES["pc_systemd.model.config"]  # `import fields as f`
    assert "pc_systemd.model.config" in EDGES["pc_systemd.cron.crontab"]  # under TYPE_CHECKING
    assert "pc_systemd.model.job" not in EDGES["pc_systemd.cron.crontab"]  # in render_part
    assert "pc_systemd.model.job" in ALL_EDGES["pc_systemd.cron.crontab"]
    source = "from pc_systemd.b import x\nif True:\n    import pc_systemd.a\ndef f():\n    import pc_systemd.c\n"
    assert {n.lineno for n in top_level_imports(ast.parse(source).body)} == {1, 3}
    looped = {**EDGES, "pc_systemd.model.job": EDGES["pc_systemd.model.job"] | {"pc_systemd.model.jobset"}}
    assert cycle(looped) == ["pc_systemd.model.job", "pc_systemd.model.jobset", "pc_systemd.model.job"]
    up = {**EDGES, "pc_systemd.model.job": EDGES["pc_systemd.model.job"] | {"pc_systemd.views.report"}}
    assert upward(up) == ["pc_systemd.model.job -> pc_systemd.views.report"]


def test_no_test_module_imports_another() -> None:
    # What tests share lives in helper modules (conftest.py, systemd_box.py,
    # job_files.py, hostile_corpus.py, monitoring_box.py), so that running
    # one test module never collects or sets up another's.
    offenders = [
        f"{path.name}: {line.strip()}"
        for path in sorted((ROOT / "tests").glob("test_*.py"))
        for line in path.read_text().splitlines()
        if line.lstrip().startswith(("from tests.test_", "import tests.test_"))
    ]
    assert offenders == []
