"""Debian roots to boot in a :class:`tests.systemd_box.SystemdBox`.

Debian 12 (bookworm) is the host's own ``/``. Debian 13 (trixie) is built
once from Debian's packages -- ``debootstrap --variant=minbase`` with
systemd, then ``apt-get install`` in a chroot of what the package and its
tests need inside a box (the boxes have no network) -- and cached outside
the checkout, in ``/var/cache/pc-systemd-test/<release>-<hash>/root``, the
hash covering the recipe (release, mirror, packages, this builder's
version): a changed recipe builds a new root, an unchanged one is reused.
The root is built in a temporary directory next to it and renamed into
place when complete, under a lock, so concurrent test runs build it once
and never see half of one. A built root is never written again: it is the
read-only lower layer of every box's overlay.

``./dev.sh test`` builds it before the tests (``python -m tests.debian_root
trixie``); a test that needs it and finds it missing builds it too (about
two minutes here). Under ``CI`` a root that cannot be built fails the test;
elsewhere it skips it.

Other helpers may use it for their own measurements on systemd 257::

    from tests.debian_root import root_of
    with SystemdBox(lower=root_of("trixie")) as box: ...
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CACHE = Path("/var/cache/pc-systemd-test")
SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
RECIPE_VERSION = "1"  # change when the steps below change in a way the hash misses
BUILD_TIMEOUT = 1200.0

# The package's dependencies (debian/control), polkitd (its Recommends: the
# developer group's access goes through it), and pytest with what the
# library's tests import: they run under this release's Python too
# (tests/test_python_releases.py).
PACKAGES = (
    "python3-yaml", "python3-jinja2", "python3-click", "python3-pystemd", "polkitd",
    "python3-pytest", "python3-cronsim", "python3-jsonschema", "python3-prometheus-client",
    "python3-aiosmtpd",
)
BASE = ("systemd", "systemd-sysv", "dbus", "python3")
_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root",
        "DEBIAN_FRONTEND": "noninteractive"}


@dataclass(frozen=True)
class Release:
    """A Debian release the tests boot: its name, and its version's number."""

    codename: str
    number: int

    @property
    def id(self) -> str:
        return f"debian{self.number}"


BOOKWORM = Release("bookworm", 12)
TRIXIE = Release("trixie", 13)
RELEASES = (BOOKWORM, TRIXIE)


def host_release() -> str:
    """The host's own codename (from /etc/os-release)."""
    for line in Path("/etc/os-release").read_text().splitlines():
        key, _eq, value = line.partition("=")
        if key == "VERSION_CODENAME":
            return value.strip('"')
    return ""


def mirror() -> str:
    """The Debian mirror the host's apt uses (its first URIs: line)."""
    with contextlib.suppress(OSError):
        for line in SOURCES.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    return DEFAULT_MIRROR


def recipe_hash(codename: str, source: str) -> str:
    text = "\n".join([RECIPE_VERSION, codename, source, *BASE, *PACKAGES])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cached_root(codename: str) -> Path:
    """Where the root of ``codename`` is (or will be) cached."""
    return CACHE / f"{codename}-{recipe_hash(codename, mirror())}" / "root"


def build(codename: str) -> Path:
    """The root of ``codename``, built now unless it is already cached."""
    root = cached_root(codename)
    if root.is_dir():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{codename}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run may be building it
        if root.is_dir():
            return root
        root.parent.mkdir(exist_ok=True)
        work = root.parent / f"building-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        try:
            _debootstrap(codename, work)
            work.rename(root)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return root


def _debootstrap(codename: str, work: Path) -> None:
    source = mirror()
    _run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE)}", codename,
          str(work), source])
    # The network for apt, in the chroot only; the boxes have none.
    resolv = work / "etc" / "resolv.conf"
    resolv.unlink(missing_ok=True)
    shutil.copyfile("/etc/resolv.conf", resolv)
    with _mounted(work / "proc", "-t", "proc", "proc"):
        _run(["chroot", str(work), "apt-get", "update", "-qq"])
        _run(["chroot", str(work), "apt-get", "install", "-y", "-qq",
              "--no-install-recommends", *PACKAGES])
        _run(["chroot", str(work), "apt-get", "clean"])
    resolv.write_text("")
    # The boxes get their machine ID from nspawn; an empty file says "none yet".
    (work / "etc" / "machine-id").write_text("")


@contextlib.contextmanager
def _mounted(target: Path, *args: str) -> Iterator[None]:
    subprocess.run(["mount", *args, str(target)], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "--lazy", str(target)], check=False)


def _run(args: list[str]) -> None:
    result = subprocess.run(args, env=_ENV, capture_output=True, text=True,
                            timeout=BUILD_TIMEOUT)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited with {result.returncode}:\n"
                           f"{result.stdout[-3000:]}{result.stderr[-3000:]}")


def root_of(release: Release | str) -> Path:
    """The root to boot for ``release``: the host's ``/`` for its own
    release, else the cached root (built if missing). Fails the test under
    CI when it cannot be had, skips it elsewhere."""
    codename = release.codename if isinstance(release, Release) else release
    if codename == host_release():
        return Path("/")
    why = _cannot_build()
    if why is None:
        try:
            return build(codename)
        except (OSError, RuntimeError, subprocess.SubprocessError) as err:
            why = f"building the {codename} root failed: {err}"
    if "CI" in os.environ:
        pytest.fail(f"{why} (CI is set: these tests must run, not skip)", pytrace=False)
    pytest.skip(why)


def _cannot_build() -> str | None:
    if os.geteuid() != 0:
        return "building a Debian root needs root"
    if shutil.which("debootstrap") is None:
        return "debootstrap is not installed (./dev.sh installs it)"
    return None


def os_release(root: Path) -> dict[str, str]:
    """A root's /etc/os-release (through its usr/lib link, read in the root)."""
    path = root / "usr" / "lib" / "os-release"
    pairs = (line.partition("=") for line in path.read_text().splitlines())
    return {key: re.sub(r'^"(.*)"$', r"\1", value) for key, _eq, value in pairs if key}


def main(argv: list[str]) -> int:
    for codename in argv or [TRIXIE.codename]:
        if codename == host_release():
            print(f"{codename}: the host's own /")
            continue
        print(f"{codename}: {build(codename)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
