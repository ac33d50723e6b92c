"""Shared fixtures: a job directory and a global configuration in tmp_path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from pc_systemd.model.config import Config, load_config
from tests import user_install
from tests.debian_root import RELEASES, Release

if TYPE_CHECKING:
    from tests.systemd_box import SystemdBox

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


@dataclass
class Site:
    """A throw-away installation: config file + job directory."""

    root: Path
    jobs: Path
    config_file: Path

    def job(self, slug: str, text: str) -> Path:
        path = self.jobs / f"{slug}.yaml"
        path.write_text(textwrap.dedent(text))
        return path

    def configure(self, text: str = "") -> Path:
        body = f"job_directory: {self.jobs}\n" + textwrap.dedent(text)
        self.config_file.write_text(body)
        return self.config_file

    def configure_direct(self, extra: str = "") -> Path:
        """The direct backend, run by whoever runs the tests (root in CI,
        given as a uid), with its directories in this site."""
        return self.configure(
            f"user: {os.geteuid()}\nallow_root: true\nbackend: direct\n"
            f"output_directory: {self.root / 'log'}\nrun_directory: {self.root / 'run'}\n"
            f"state_directory: {self.root / 'state'}\n" + textwrap.dedent(extra)
        )

    def config(self) -> Config:
        return load_config(str(self.config_file), {})


def record_reads(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[list[str]]:
    """Replace ``owner.name``, a function whose second argument is a list of
    job file paths, by one that also records those files' names per call."""
    calls: list[list[str]] = []
    real = getattr(owner, name)

    def recording(*args: Any, **kwargs: Any) -> Any:
        calls.append([os.path.basename(p) for p in args[1]])
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, recording)
    return calls


def within(seconds: float, call: Callable[[], T]) -> T:
    """``call()``, failing the test if it has not returned in ``seconds``
    (in a daemon thread, so a call that hangs for good hangs nothing else)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = call()
        except BaseException as err:  # handed to the test below
            box["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The caches (pc_systemd.model.file_cache) go to the test's own directory,
    never the host's /var/cache or ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PROCESS_CONTROL_CACHE", str(tmp_path / "pc-cache"))


@pytest.fixture(autouse=True)
def _no_host_access_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``run-job reload`` as root writes polkit's and tmpfiles' files of the
    developer group in /etc (pc_systemd.systemd.access): in a test on this
    machine, under tmp_path instead (boxes have their own /etc)."""
    from pc_systemd.systemd import access

    fake = tmp_path / "host-access"
    for name in ("SHIPPED_RULE", "LOCAL_RULE", "GROUP_TMPFILES", "SOCKET_DROP_IN"):
        monkeypatch.setattr(access, name, str(fake / name / "file"))
    from pc_systemd.systemd import broker_protocol as protocol

    monkeypatch.setattr(protocol, "SOCKET", str(fake / "broker.sock"))
    monkeypatch.setattr(access, "TMPFILES", "true")


@pytest.fixture
def site(tmp_path: Path) -> Site:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    s = Site(tmp_path, jobs, tmp_path / "process-control.yaml")
    s.configure()
    return s


def mailed_output(body: str) -> list[str]:
    """The run's output lines a failure mail's body quotes (indented under
    their "Last N line(s)" heading)."""
    lines = body.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Last "))
    quoted = []
    for line in lines[start + 1:]:
        if not line.startswith("    "):
            break
        quoted.append(line[4:])
    return quoted


# -- the Debian package ------------------------------------------------------------


@pytest.fixture(scope="module", params=RELEASES, ids=lambda r: r.id)
def release(request: pytest.FixtureRequest) -> Release:
    """Each supported Debian release, for a module's box: the package tests
    run on a booted Debian 12 and a booted Debian 13 (``lower=root_of(release)``,
    tests/debian_root.py); pytest runs all of a module's tests on one before
    the other."""
    assert isinstance(request.param, Release)
    return request.param

# Debian's tools, not the test virtualenv's Python or a pyenv one first in PATH
BUILD_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root"}


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The .deb, built once from a fresh clone of the checkout's HEAD
    (tests/test_package.py, tests/test_access_systemd.py)."""
    if shutil.which("dpkg-buildpackage") is None and "CI" not in os.environ:
        pytest.skip("dpkg-buildpackage is not installed (./dev.sh installs it)")
    top = tmp_path_factory.mktemp("deb")
    src = top / "process-control"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(src)], check=True)
    result = subprocess.run(
        ["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src, env=BUILD_ENV,
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (deb,) = top.glob("process-control_*_all.deb")
    return deb


def hide_checkout(box: SystemdBox) -> None:
    """Nothing of the checkout, the test virtualenv or the world-readable
    installation of the tree visible inside ``box``, so everything that
    runs there comes from the package. (Under /tmp they
    are hidden already: the box has a /tmp of its own.)"""
    venv = Path(sys.prefix).resolve()
    for path in [*([ROOT] if venv.is_relative_to(ROOT) else [ROOT, venv]), user_install.PREFIX]:
        if box.run(["test", "-d", str(path)], check=False).returncode == 0:
            box.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", str(path)])
    assert box.run(["test", "-e", str(ROOT / "pyproject.toml")], check=False).returncode


def install_package(box: SystemdBox, built: Path, jobs: dict[str, str]) -> None:
    """In ``box``: the checkout hidden, these job files in the default job
    directory, then the package installed as an operator does (``dpkg -i``)."""
    hide_checkout(box)
    # A container image's policy-rc.d (Docker's: "101", no service starts)
    # would keep the package's socket from starting, as no host's does.
    box.run(["rm", "-f", "/usr/sbin/policy-rc.d"])
    for slug, text in jobs.items():
        box.write_file(f"/var/lib/process-control/{slug}.yaml", text)
    box.write_file("/root/process-control_all.deb", built.read_bytes())
    box.run(["dpkg", "-i", "/root/process-control_all.deb"], timeout=180)
