"""An installation of this tree that every user can run, for the tests that
run our code as a user other than root.

The checkout and its virtualenv may live where only root can enter (a clone
under /root, a pyenv interpreter in root's home), so no other user may run
them. Operators install the package with Debian's python3 and Debian's
libraries; so does this: the tree is built into a wheel and installed into a
virtualenv of Debian's ``/usr/bin/python3`` that sees Debian's site packages
(PyYAML, Jinja2, click, pystemd), in a world-readable directory outside the
checkout. Built once per test session, from the working tree as it is.

Boxes from :func:`tests.systemd_box.checkout_box` see it at its own path,
read-only; everything of ours that runs in them (run-job as any user, the
generator and the units it writes, cron's runner) runs from it.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.systemd_box import SystemdBox

CHECKOUT = Path(__file__).resolve().parent.parent
DEBIAN_PYTHON = "/usr/bin/python3"
# One place per checkout, so its paths can be named before it is built.
# Not under /tmp or /var/tmp: our units' PrivateTmp= would hide it.
CACHE = Path("/var/cache/pc-systemd-test")
PREFIX = CACHE / (
    "install-" + hashlib.sha256(str(CHECKOUT).encode()).hexdigest()[:12])
PYTHON = str(PREFIX / "bin" / "python")
RUN_JOB = str(PREFIX / "bin" / "run-job")
CRON_GENERATE = str(PREFIX / "bin" / "cron-generate")

# A runtime dependency Debian 12 does not package (cron-descriptor, with what
# it imports): copied, at the versions constraints.txt pins, from the test
# virtualenv.
NOT_IN_DEBIAN = ("cron-descriptor", "typing-extensions")

# Debian's tools and no virtualenv of ours first on PATH.
_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root"}


def _run(argv: list[str], **kwargs: object) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, env=_ENV, check=False,
                          **kwargs)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {done.returncode}\n"
                           f"{done.stdout[-2000:]}{done.stderr[-2000:]}")


def _build_wheel(directory: Path) -> Path:
    # The test virtualenv's pinned setuptools builds it, offline.
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
          "--no-build-isolation", "--no-index", "--wheel-dir", str(directory), str(CHECKOUT)])
    (built,) = directory.glob("pc_systemd-*.whl")
    return built


@cache
def wheel() -> Path:
    """The wheel of the working tree, built once per session in a
    directory of its own (removed when the session ends), for boxes of
    another Debian release that install it with their own python3
    (:func:`install_in_box`)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    CACHE.chmod(0o755)
    directory = Path(tempfile.mkdtemp(prefix="wheel-", dir=CACHE))
    atexit.register(shutil.rmtree, directory, True)
    directory.chmod(0o755)
    return _build_wheel(directory)


def install_in_box(box: SystemdBox, built: Path) -> None:
    """What :func:`installation` makes, made inside ``box`` with the box's
    own ``/usr/bin/python3`` and Debian packages, at the same PREFIX (in the
    box's throw-away overlay): for a box of another Debian release, whose
    Python is not the host's."""
    staging = f"{PREFIX}.new"
    box.run([DEBIAN_PYTHON, "-m", "venv", "--system-site-packages", "--without-pip", staging])
    site = box.run(["sh", "-c", 'echo "$1"/lib/python3*/site-packages', "sh", staging])
    box.run([DEBIAN_PYTHON, "-c", _INSTALL_WHEEL, str(built), site.stdout.strip(),
             f"{staging}/bin", PYTHON])
    box.run([f"{staging}/bin/python", "-m", "compileall", "-q", site.stdout.strip()])
    box.run(["mv", staging, str(PREFIX)])
    box.run(["chmod", "-R", "u=rwX,go=rX", str(PREFIX)])


@cache
def installation() -> Path:
    """Build the wheel of the working tree and install it at PREFIX (mode
    0755 all the way down); removed when the session ends."""
    if not os.access(DEBIAN_PYTHON, os.X_OK):
        raise RuntimeError(f"{DEBIAN_PYTHON} is missing (./dev.sh installs Debian's python3)")
    CACHE.mkdir(parents=True, exist_ok=True)
    CACHE.chmod(0o755)
    work = Path(tempfile.mkdtemp(prefix="pc-test-wheel-"))
    try:
        wheel = _build_wheel(work / "dist")
        staging = Path(f"{PREFIX}.new-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        _run([DEBIAN_PYTHON, "-m", "venv", "--system-site-packages", "--without-pip",
              str(staging)])
        site = next((staging / "lib").glob("python3*/site-packages"))
        # Installed by Debian's own pip-less python: unpack the wheel and
        # write its entry points, as pip would.
        _run([DEBIAN_PYTHON, "-c", _INSTALL_WHEEL, str(wheel), str(site),
              str(staging / "bin"), str(PREFIX / "bin" / "python")])
        for name in NOT_IN_DEBIAN:
            _copy_distribution(name, site)
        _run([str(staging / "bin" / "python"), "-m", "compileall", "-q", str(site)])
        shutil.rmtree(PREFIX, ignore_errors=True)
        staging.rename(PREFIX)
        # venv follows the process umask; every user must read and run it.
        _run(["chmod", "-R", "u=rwX,go=rX", str(PREFIX)])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    atexit.register(shutil.rmtree, PREFIX, True)
    return PREFIX


def _copy_distribution(name: str, site: Path) -> None:
    """The files of an installed pure-Python distribution, into site."""
    dist = metadata.distribution(name)
    for file in dist.files or ():
        source = Path(str(dist.locate_file(file)))
        if file.parts[0] == ".." or source.suffix == ".pyc":
            continue  # its scripts, and byte code compileall writes again
        target = site / file
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


# Unpacks argv[1] (a pure-Python wheel) into argv[2] and writes a script in
# argv[3] per console entry point, run by argv[4].
_INSTALL_WHEEL = """
import configparser, sys, zipfile
from pathlib import Path
wheel, site, bindir, python = sys.argv[1:5]
with zipfile.ZipFile(wheel) as archive:
    archive.extractall(site)
    entry = next(n for n in archive.namelist() if n.endswith('.dist-info/entry_points.txt'))
    points = configparser.ConfigParser()
    points.read_string(archive.read(entry).decode())
for name, target in points['console_scripts'].items():
    module, _, function = target.partition(':')
    script = Path(bindir) / name
    script.write_text(f'#!{python}\\nimport sys\\nfrom {module} import {function}\\n'
                      f'sys.exit({function}())\\n')
    script.chmod(0o755)
"""

