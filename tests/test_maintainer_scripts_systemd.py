"""The package's maintainer scripts on a booted systemd 252 that ran the
original: they use Debian's python3 whatever comes first on root's PATH,
and a migration that fails fails the install with its reason.

A ``/usr/local/bin/python3`` that is not Debian's (a pyenv, a local build)
lacks this package; the scripts used to run ``python3 -m ...`` from PATH
with ``|| true``, so the original's cron file stayed active and every job
ran from cron and from its timer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, hide_checkout
from tests.systemd_box import SystemdBox, require_systemd_box

pytestmark = pytest.mark.systemd

ORIGINAL = (ROOT / "tests" / "data" / "original" / "cron.d" / "process-control").read_text()
CRON = "/etc/cron.d/process-control"
DEB = "/root/process-control_all.deb"
STUB = "#!/bin/sh\necho 'not the python3 of Debian' >&2\nexit 1\n"
JOB = "name: Hello\ncommand: /bin/true\nschedule: '*/5 * * * *'\n"


@pytest.fixture(scope="module")
def box(built: Path) -> Iterator[SystemdBox]:
    require_systemd_box()
    with SystemdBox() as booted:
        hide_checkout(booted)
        booted.write_file("/usr/local/bin/python3", STUB, mode=0o755)
        assert booted.run(["sh", "-c", "command -v python3"]).stdout == "/usr/local/bin/python3\n"
        booted.write_file(CRON, ORIGINAL)
        booted.write_file("/var/lib/process-control/hello.yaml", JOB)
        booted.write_file(DEB, built.read_bytes())
        yield booted


def test_a_failing_migration_fails_the_install_with_its_reason(box: SystemdBox) -> None:
    # /etc/cron.d read-only: the cron file cannot be renamed
    box.run(["mount", "--bind", "-o", "ro", "/etc/cron.d", "/etc/cron.d"])
    try:
        done = box.run(["dpkg", "-i", DEB], check=False, timeout=180)
    finally:
        box.run(["umount", "/etc/cron.d"])
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert (f"process-control: {CRON}: cannot rename it: Read-only file system; "
            "cron still runs it") in output
    assert "process-control: the cron file could not be moved aside" in output
    assert box.run(["cat", CRON]).stdout == ORIGINAL  # left as it was, and said so
    status = box.run(["dpkg-query", "-W", "-f", "${db:Status-Status}", "process-control"])
    assert status.stdout == "half-configured"


def test_with_another_python3_first_on_path_the_cron_file_is_moved_aside(
    box: SystemdBox,
) -> None:
    done = box.run(["dpkg", "--configure", "-a"], timeout=180)
    output = done.stdout + done.stderr
    assert box.run(["test", "-e", CRON], check=False).returncode == 1
    assert box.run(["cat", f"{CRON}.disabled"]).stdout == ORIGINAL
    why = f"moved {CRON} to {CRON}.disabled: systemd timers run these jobs now"
    assert f"process-control: {why}" in output, output
    assert "not the python3 of Debian" not in output, output
    box.sync_journal()
    journal = box.run(["journalctl", "--quiet", "--no-pager", "-o", "cat", "-t",
                       "process-control"]).stdout
    assert any(line.startswith(why) for line in journal.splitlines()), journal
    status = box.run(["dpkg-query", "-W", "-f", "${db:Status-Status}", "process-control"])
    assert status.stdout == "installed"
    assert box.show("process-control-hello.timer", "ActiveState") == {"ActiveState": "active"}


def test_removal_with_another_python3_first_on_path_moves_a_new_cron_file_aside(
    box: SystemdBox,
) -> None:
    box.systemctl("stop", "process-control-reload.path")  # the removal alone, not the watch
    box.write_file(CRON, ORIGINAL)
    done = box.run(["dpkg", "-r", "process-control"], timeout=180)
    output = done.stdout + done.stderr
    assert box.run(["test", "-e", CRON], check=False).returncode == 1
    assert f"process-control: moved {CRON} to {CRON}.disabled-" in output, output
    assert "not the python3 of Debian" not in output, output
