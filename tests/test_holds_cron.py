"""Holds on a cron host: a real Debian cron daemon starts the cron lines
``cron-generate`` wrote (``run-job --job NAME``) every minute; the runner
skips a job of a group a member disabled, and a job stopped after
``stop_after_failures``, silently (cron mails nothing), while a job
beside them runs. (Runs by hand, and reset: tests/test_holds.py.)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.systemd_box import SystemdBox, checkout_box
from tests.user_install import CRON_GENERATE, RUN_JOB

pytestmark = pytest.mark.systemd

USER = "pcjob"
GROUP = "pcdev"
JOBS = "/var/lib/process-control"
STATE = "/var/cache/process-control"
HOLDS = "/var/lib/process-control-holds"
RUNNER = RUN_JOB  # the world-readable installation: cron runs it as USER
CONFIG = f"""\
user: {USER}
developer_group: {GROUP}
job_directory: {JOBS}
runner_path: {RUNNER}
output_crontab: /etc/cron.d/process-control
output_directory: /var/log/process-control
run_directory: /run/process-control
state_directory: {STATE}
hold_directory: {HOLDS}
backend: direct
"""
EVERY_MINUTE = "schedule: '* * * * *'\n"
JOB_FILES = {
    "free": "name: Free\ncommand: /bin/echo free\n" + EVERY_MINUTE,
    "held": "name: Held\ncommand: /bin/echo held\ntag: batch\n" + EVERY_MINUTE,
    "stopper": "name: Stopper\ncommand: /bin/sh -c 'echo boom; exit 3'\n"
               "stop_after_failures: 1\n" + EVERY_MINUTE,
}


@pytest.fixture(scope="module")
def box() -> Iterator[SystemdBox]:
    with checkout_box() as booted:
        yield booted


def history(box: SystemdBox, slug: str) -> list[dict[str, Any]]:
    done = box.run(["cat", f"{STATE}/{slug}.yaml"], check=False)
    if done.returncode != 0:
        return []
    entries: list[dict[str, Any]] = yaml.safe_load(done.stdout)["history"]
    return [e for e in entries if e["status"] != "started"]


def test_cron_skips_held_jobs_and_runs_the_others(box: SystemdBox) -> None:
    box.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER])
    box.run(["groupadd", GROUP])
    box.run(["useradd", "--create-home", "--groups", GROUP, "dev"])
    for directory in ("/var/log/process-control", "/run/process-control", STATE):
        box.run(["install", "-d", "-o", USER, "-m", "0755", directory])
    box.run(["install", "-d", "-o", "root", "-g", GROUP, "-m", "2775", HOLDS])
    box.write_file("/etc/process-control.yaml", CONFIG)
    for slug, text in JOB_FILES.items():
        box.write_file(f"{JOBS}/{slug}.yaml", text)
    box.run([CRON_GENERATE])
    crontab = box.run(["cat", "/etc/cron.d/process-control"]).stdout
    assert f"* * * * * {USER} {RUNNER} --job held\n" in crontab  # the cron file is unchanged
    done = box.run([RUNNER, "disable-group", "batch"], user="dev", check=False)
    assert (done.returncode, done.stdout) == (0, "group batch disabled: 1 job(s): held\n"), \
        done.stderr
    assert box.run(["stat", "-c", "%U %G", f"{HOLDS}/group.batch"]).stdout == f"dev {GROUP}\n"

    while time.time() % 60 > 50:  # start just after a minute boundary (see test_cron_daemon)
        time.sleep(1)
    box.systemctl("restart", "cron.service")
    box.wait_until(lambda: len(history(box, "free")) >= 2, timeout=140, interval=2,
                   what="two runs of the free job by cron")
    cron_log = box.run(["journalctl", "-u", "cron.service", "--no-pager", "-o", "cat"]).stdout
    assert cron_log.count(f"({USER}) CMD ({RUNNER} --job held)") >= 2, cron_log
    assert history(box, "held") == []  # started by cron, skipped by the runner
    stopper = history(box, "stopper")
    assert [e["status"] for e in stopper] == ["failed"], stopper  # the second was skipped
    assert cron_log.count(f"({USER}) CMD ({RUNNER} --job stopper)") >= 2, cron_log
    # cron mails what a job prints: only the one failed run printed anything
    assert cron_log.count("No MTA installed, discarding output") == 1, cron_log
    status = box.run([RUNNER, "status"], user=USER).stdout
    assert "\tscheduling: disabled by group batch\n" in status
    assert "\tscheduling: stopped after 1 consecutive failures (run-job reset stopper)\n" in status
