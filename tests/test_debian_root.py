"""The Debian roots the boxes boot (tests/debian_root.py): the recipe's
hash names the cached root, and a box of the Debian 13 root runs systemd
257 while the cached root itself is never written."""

from __future__ import annotations

import secrets

import pytest

from tests import debian_root
from tests.debian_root import TRIXIE, os_release, recipe_hash, root_of
from tests.systemd_box import SystemdBox, require_systemd_box


def test_a_changed_recipe_names_another_root(monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = "http://deb.debian.org/debian"
    first = recipe_hash("trixie", mirror)
    assert first == recipe_hash("trixie", mirror)
    assert first != recipe_hash("forky", mirror)
    assert first != recipe_hash("trixie", "http://mirror.example.org/debian")
    monkeypatch.setattr(debian_root, "PACKAGES", (*debian_root.PACKAGES, "cron"))
    assert first != recipe_hash("trixie", mirror)


def test_the_hosts_own_release_is_its_root() -> None:
    assert str(root_of(debian_root.host_release())) == "/"


@pytest.mark.systemd
def test_a_debian_13_box_runs_systemd_257_and_leaves_the_root_alone() -> None:
    require_systemd_box()
    root = root_of(TRIXIE)
    assert os_release(root)["VERSION_ID"] == "13"
    mark = f"/etc/pc-test-{secrets.token_hex(4)}"
    with SystemdBox(lower=root) as box:
        assert box.run(["systemctl", "--version"]).stdout.split()[1] == "257"
        assert box.run(["systemctl", "is-system-running"], check=False).stdout.strip() in (
            "running", "degraded")
        box.write_file(mark, "written in the box\n")
        assert box.path(mark).read_text() == "written in the box\n"
        assert not (root / mark.lstrip("/")).exists()
    assert not (root / mark.lstrip("/")).exists()
