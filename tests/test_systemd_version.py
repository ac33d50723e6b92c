"""How the generator and ``validate`` learn systemd's version without D-Bus
(pc_systemd.model.systemd_version): from the library PID 1 has mapped, else
the installed one. On the real systemd 252 and 257 (as root and as a user)
in tests/test_package.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from pc_systemd.model import systemd_version
from tests.conftest import Site

MAPS_252 = """\
7f3c1a200000-7f3c1a2a1000 r--p 00000000 00:2e 1234 /usr/lib/x86_64-linux-gnu/systemd/libsystemd-core-252.so
7f3c1a400000-7f3c1a4c8000 r--p 00000000 00:2e 1235 /usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-252.so
"""


@pytest.mark.parametrize(("text", "version"), [
    (MAPS_252, 252),
    # after an upgrade, before the manager re-executed: what runs is still 252
    (MAPS_252.replace("252.so\n", "252.so (deleted)\n"), 252),
    ("7f00-7f01 r-xp 0 00:1 1 /usr/lib/systemd/libsystemd-shared-257.so\n", 257),
    # a distribution's tag after the number (Fedora's shared-lib-tag)
    ("7f00-7f01 r-xp 0 00:1 1 /usr/lib64/systemd/libsystemd-shared-255.4-1.fc40.so\n", 255),
    ("7f00-7f01 r-xp 0 00:1 1 /usr/lib/libc.so.6\n", None),  # PID 1 is not systemd
    ("/usr/lib/libsystemd-shared-.so", None),
])
def test_the_version_in_a_processs_maps(text: str, version: int | None) -> None:
    assert systemd_version.version_in(text) == version


def test_the_newest_installed_library(tmp_path: Path) -> None:
    for name in ("libsystemd-shared-252.so", "libsystemd-core-260.so", "libsystemd-shared-x.so",
                 "README"):
        (tmp_path / "a").mkdir(exist_ok=True)
        (tmp_path / "a" / name).touch()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "libsystemd-shared-257.so").touch()
    dirs = [str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "missing")]
    assert systemd_version.from_libraries(dirs) == 257
    assert systemd_version.from_libraries([str(tmp_path / "missing")]) is None


def test_the_running_manager_comes_before_the_installed_library(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    maps = tmp_path / "maps"
    maps.write_text(MAPS_252)
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "libsystemd-shared-257.so").touch()  # upgraded, not yet re-executed
    monkeypatch.setattr(systemd_version, "MAPS", str(maps))
    monkeypatch.setattr(systemd_version, "library_dirs", lambda: [str(lib)])
    systemd_version.forget()
    try:
        assert systemd_version.manager() == 252
        maps.unlink()  # unreadable (not root): the installed library
        systemd_version.forget()
        assert systemd_version.manager() == 257
    finally:
        systemd_version.forget()


def test_the_generators_cache_follows_the_version(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After an upgrade (252 to 257, say) every job file is read again: what
    the version allows decides which jobs get units."""
    from pc_systemd.model import file_cache
    from pc_systemd.systemd import generator

    monkeypatch.setattr(file_cache, "SETTLE_NS", 0)
    site.job("backoff", "name: B\ncommand: /bin/true\ntimeout: 1\n"
                        "retry: {attempts: 2, delay: 1, backoff: 2}\n")
    messages: list[str] = []

    def generate(version: int) -> int:
        monkeypatch.setattr(systemd_version, "manager", lambda: version)
        messages.clear()
        return generator.generate(str(tmp_path / f"out{version}"),
                                  lambda _level, text: messages.append(text),
                                  str(site.config_file), "/usr/bin/python3")

    monkeypatch.setattr(systemd_version, "manager", lambda: 252)
    generator.refresh_cache(str(site.config_file), "/usr/bin/python3")
    generate(252)  # from the cache
    assert "unchanged file(s) from the cache" in messages[-1], messages
    assert any("backoff is not possible on systemd 252" in m for m in messages), messages
    generate(257)
    assert not any("backoff" in m for m in messages), messages
    assert "from the cache" not in messages[-1], messages
    assert (tmp_path / "out257" / "process-control-backoff.service").is_file()
    text = (tmp_path / "out257" / "process-control-backoff.service").read_text()
    assert "RestartSteps=1" in text and "RestartMode=direct" in text
