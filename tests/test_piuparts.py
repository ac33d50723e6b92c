"""The package's life cycle by Debian's own tool: piuparts installs the
package on a minimal Debian 12, removes it and purges it, and fails if
anything is left behind that was not there before (or if a maintainer
script fails).

piuparts builds its Debian 12 base from the Debian mirror once (about a
minute) and keeps it outside the checkout, in CACHE; later runs start from
that. Each run installs the package's dependencies from the mirror, so it
needs the network to the mirror. Run as root (chroots).

The chroot has no running systemd: the package takes its cron-host path
(``cron-generate`` in the postinst), the one that left
``/etc/cron.d/process-control`` after a purge before.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BUILD_ENV

pytestmark = pytest.mark.systemd

CACHE = Path("/var/cache/pc-systemd-test")
BASE = CACHE / "piuparts-bookworm.tgz"
SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# Left by the systemd package, which piuparts installs as a dependency and
# removes again, not by this one: its postinst makes /var/log/journal
# ("Enable persistent journal") and runs systemd-tmpfiles on its own
# provision.conf (/root/.ssh), systemd.conf (/var/{lib,cache,log}/private,
# /var/lib/systemd/coredump) and systemd-pstore.conf (/var/lib/systemd/pstore).
SYSTEMDS_LEFTOVERS = ("/root/.ssh/", "/var/cache/private/", "/var/lib/private/",
                      "/var/lib/systemd/coredump/", "/var/lib/systemd/pstore/",
                      "/var/log/journal/", "/var/log/private/")


def mirror() -> str:
    """The machine's own Debian mirror (as its apt uses), else Debian's."""
    try:
        for line in SOURCES.read_text().splitlines():
            if line.startswith("URIs:") and line.split()[1:]:
                return line.split()[1]
    except OSError:
        pass
    return DEFAULT_MIRROR


def need_piuparts() -> None:
    missing = [] if os.geteuid() == 0 else ["root"]
    missing += [] if shutil.which("piuparts", path=BUILD_ENV["PATH"]) else ["piuparts"]
    if not missing:
        return
    reason = "piuparts needs " + ", ".join(missing) + " (./dev.sh installs piuparts)"
    if "CI" in os.environ:
        pytest.fail(f"{reason} (CI is set: this test must run, not skip)", pytrace=False)
    pytest.skip(reason)


def test_install_remove_and_purge_leave_nothing_behind(built: Path) -> None:
    need_piuparts()
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "piuparts-bookworm.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one base at a time, made once
        base = ["-b", str(BASE)] if BASE.exists() else [f"--save={BASE}"]
        ignored = [f"--ignore={path}" for path in SYSTEMDS_LEFTOVERS]
        done = subprocess.run(
            ["piuparts", "--no-upgrade-test", "-d", "bookworm", "-m", mirror(), *base,
             *ignored, str(built)],
            env=BUILD_ENV, capture_output=True, text=True, timeout=1200,
        )
    output = done.stdout + done.stderr
    failures = [line for line in output.splitlines() if "FAIL" in line]
    assert done.returncode == 0, "\n".join(failures) + "\n" + output[-4000:]
    assert "PASS: All tests." in output, output[-4000:]
