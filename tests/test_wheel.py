"""The wheel and the sdist, installed with pip into fresh virtualenvs as a
pip user would (dependencies from the package index), away from the
checkout: the installed generator renders a ``logging: file`` job, and
nothing it writes or reads is in the source tree.

Built once for this module from a clean clone of the checkout's HEAD, with
Debian's ``python3 -m build`` (no network: the build needs only setuptools).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT

CLEAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def run(args: list[str | Path], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """A command with a plain environment (no PYTHONPATH, no virtualenv), in cwd."""
    environ = {"PATH": CLEAN_PATH, "LANG": "C.UTF-8", "HOME": str(cwd), **env}
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=environ, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@dataclass(frozen=True)
class Dists:
    wheel: Path
    sdist: Path
    source: Path  # the clone they were built from

    def templates(self) -> list[str]:
        return sorted(p.name for p in (self.source / "templates").glob("*.j2"))


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    """The wheel and the sdist, built from a fresh clone."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    top = tmp_path_factory.mktemp("dist")
    src = top / "src"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(src)], check=True)
    run(["/usr/bin/python3", "-m", "build", "--no-isolation", "--outdir", top / "out", src],
        cwd=top)
    (wheel,) = (top / "out").glob("*.whl")
    (sdist,) = (top / "out").glob("*.tar.gz")
    return Dists(wheel, sdist, src)


@pytest.fixture(scope="module")
def venv(dists: Dists, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel installed by pip, dependencies and all."""
    top = tmp_path_factory.mktemp("wheel-venv")
    env = top / "venv"
    run([sys.executable, "-m", "venv", env], cwd=top)
    run([env / "bin" / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check",
         dists.wheel], cwd=top)
    return env


def test_the_wheel_carries_the_templates_and_the_commands(dists: Dists) -> None:
    names = zipfile.ZipFile(dists.wheel).namelist()
    templates = sorted(n for n in names if n.startswith("pc_systemd/templates/"))
    assert templates == [f"pc_systemd/templates/{name}" for name in dists.templates()]
    assert templates
    (entry_points,) = (n for n in names if n.endswith(".dist-info/entry_points.txt"))
    scripts = zipfile.ZipFile(dists.wheel).read(entry_points).decode()
    for command in ("run-job", "cron-generate", "check-jobs-icinga",
                    "process-control-generator"):
        assert re.search(rf"^{command} = ", scripts, re.M), scripts


def test_the_installed_generator_renders_a_file_logged_job(venv: Path, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "report.yaml").write_text("name: Report\ncommand: /bin/echo hi\n"
                                      "schedule: '0 3 * * *'\nlogging: file\n")
    config = tmp_path / "process-control.yaml"
    config.write_text(f"job_directory: {jobs}\n")
    out = tmp_path / "units"
    run([venv / "bin" / "process-control-generator", out, out, out], cwd=tmp_path,
        PROCESS_CONTROL_CONFIG=str(config), PROCESS_CONTROL_CACHE=str(tmp_path / "cache"))
    service = (out / "process-control-report.service").read_text()
    assert (out / "timers.target.wants" / "process-control-report.timer").exists()
    assert "/var/log/process-control/report" in service
    every_unit = "".join(p.read_text() for p in out.glob("*.*") if p.is_file())
    assert str(ROOT) not in every_unit
    # every file an Exec line names is one the virtualenv (or the system) has
    for line in every_unit.splitlines():
        if line.startswith("Exec"):
            for word in re.findall(r"(?:^|[\s=\"'])(/[^\s\"']+)", line):
                if word.startswith(("/var/log/", "/run/")):
                    continue
                assert os.path.exists(word), line
    reload_service = (out / "process-control-reload.service").read_text()
    assert f"{venv}/bin/python" in reload_service


def test_install_generator_from_the_wheel_names_no_checkout(venv: Path, tmp_path: Path) -> None:
    wrapper = run([venv / "bin" / "python", "-c",
                   "from pc_systemd.systemd.install import wrapper_text; print(wrapper_text())"],
                  cwd=tmp_path).stdout
    assert "-m pc_systemd.systemd.generator" in wrapper
    assert str(ROOT) not in wrapper


def test_the_sdist_installs_with_its_templates(dists: Dists, tmp_path: Path) -> None:
    env = tmp_path / "venv"
    run([sys.executable, "-m", "venv", env], cwd=tmp_path)
    # no dependencies: this is about what the sdist carries
    run([env / "bin" / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "--no-deps", dists.sdist], cwd=tmp_path)
    package = run([env / "bin" / "python", "-c",
                   "import os, pc_systemd; print(os.path.dirname(pc_systemd.__file__))"],
                  cwd=tmp_path).stdout.strip()
    installed = sorted(os.listdir(os.path.join(package, "templates")))
    assert installed == dists.templates()
    assert (env / "bin" / "process-control-generator").exists()
