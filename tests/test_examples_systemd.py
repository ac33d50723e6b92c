"""The shipped example jobs, with the default sandbox, run on a real systemd."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.systemd_box import SystemdBox, checkout_box

pytestmark = pytest.mark.systemd

VENV = Path(sys.prefix)
JOBS = "/var/lib/process-control"
USER = "process-control"  # the built-in default user


@pytest.fixture(scope="module")
def box() -> Iterator[SystemdBox]:
    with checkout_box() as booted:
        booted.run(["useradd", "--create-home", USER])
        # no /etc/process-control.yaml: built-in defaults for every key
        # nightly_report's credential, in the default credentials_directory
        booted.run(["install", "-d", "-m", "0700", "/etc/process-control/credentials"])
        booted.write_file("/etc/process-control/credentials/nightly_report/report-token", "token\n")
        booted.run(["chmod", "0600", "/etc/process-control/credentials/nightly_report/report-token"])
        for job in sorted((ROOT / "examples" / "jobs").glob("*.yaml")):
            booted.write_file(f"{JOBS}/{job.name}", job.read_text())
        booted.run([str(VENV / "bin" / "run-job"), "--install-generator"])
        yield booted


@pytest.mark.parametrize(
    "unit",
    [
        "process-control-hello.service",
        "process-control-nightly_report.service",
        "process-control-month_start.service",
        "process-control-month_start.slow-start.service",
        "process-control-by_hand.service",
        "process-control-reindex.service",
    ],
)
def test_example_job_succeeds_in_its_sandbox(box: SystemdBox, unit: str) -> None:
    result = box.systemctl("start", unit, check=False)
    props = box.show(unit, "Result", "ExecMainStatus", "NoNewPrivileges", "ProtectSystem",
                     "PrivateTmp", "User")
    assert result.returncode == 0, (props, box.journal(unit)[-10:])
    assert props == {"Result": "success", "ExecMainStatus": "0", "NoNewPrivileges": "yes",
                     "ProtectSystem": "full", "PrivateTmp": "yes", "User": USER}


def test_file_logged_example_wrote_its_run_file(box: SystemdBox) -> None:
    box.systemctl("start", "process-control-nightly_report.service")
    out = box.run(["sh", "-c", "cat /var/log/process-control/nightly_report/*.log"]).stdout
    assert "/etc/os-release" in out


def test_the_sandbox_is_real_and_can_be_turned_off(box: SystemdBox) -> None:
    probe = ("/bin/sh -c 'touch /tmp/pc-marker-{0}; "
             "if test -d /proc/1; then echo {0}-sees-pid1; else echo {0}-no-pid1; fi'")
    box.write_file(f"{JOBS}/boxed.yaml", f"name: Boxed\ncommand: {probe.format('boxed')}\n")
    box.write_file(f"{JOBS}/open.yaml",
                   f"name: Open\ncommand: {probe.format('open')}\nsandbox: false\n")
    box.run([str(VENV / "bin" / "run-job"), "--reload"], check=False)
    for name in ("boxed", "open"):
        box.systemctl("start", f"process-control-{name}.service")
    # PrivateTmp: the boxed job's /tmp was its own; ProtectProc: it saw no PID 1
    assert box.run(["test", "-e", "/tmp/pc-marker-boxed"], check=False).returncode == 1
    assert box.run(["test", "-e", "/tmp/pc-marker-open"], check=False).returncode == 0
    boxed = box.journal("process-control-boxed.service", manager_messages=False)
    opened = box.journal("process-control-open.service", manager_messages=False)
    assert "boxed-no-pid1" in boxed and "open-sees-pid1" in opened
