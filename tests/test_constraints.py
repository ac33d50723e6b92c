"""What the set-up installs is pinned: a fresh machine tests what the last
green run tested (constraints.txt, used by ./dev.sh)."""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata

from tests.conftest import ROOT

# pip comes with the interpreter's venv module; the project is ours.
NOT_PINNED = {"pip", "pc-systemd"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins() -> dict[str, str]:
    found: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"constraints.txt: {line!r} is not NAME==VERSION"
        assert canonical(name) not in found, f"constraints.txt: {name} twice"
        found[canonical(name)] = version
    return found


def test_every_package_in_the_test_environment_is_at_its_pinned_version() -> None:
    pinned = pins()
    installed = {canonical(d.metadata["Name"]): d.version
                 for d in metadata.distributions(path=sys.path)}
    unpinned = sorted(set(installed) - set(pinned) - NOT_PINNED)
    assert unpinned == [], f"installed but not in constraints.txt: {unpinned}"
    differ = {name: (version, pinned[name]) for name, version in installed.items()
              if name in pinned and version != pinned[name]}
    assert differ == {}, f"installed vs pinned: {differ}"


def test_every_requirement_of_the_project_is_pinned() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted += extra
    names = {canonical(re.split(r"[<>=!~\[;\s]", req, maxsplit=1)[0]) for req in wanted}
    missing = sorted(names - set(pins()) - NOT_PINNED)
    assert missing == [], f"requirements with no pin in constraints.txt: {missing}"
