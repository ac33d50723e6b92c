"""Holds on a real systemd (Debian 12's 252 and 13's 257) with the package installed (polkitd, the
package's tmpfiles.d and polkit rule): a member of the developer group
disables a group of jobs, which stays stopped across reload, daemon-reload
and re-exec; a job with ``stop_after_failures: 2`` is stopped by its
failure-mail unit after two failed runs, and a member's reset restarts it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import install_package
from tests.debian_root import Release, root_of
from tests.systemd_box import SystemdBox, require_systemd_box

pytestmark = pytest.mark.systemd

JOBS = "/var/lib/process-control"
HOLDS = "/var/lib/process-control-holds"
WANTS = "/run/systemd/generator/timers.target.wants"
GROUP = "process-control-dev"
JOB_FILES = {
    "g1": "name: G1\ncommand: /bin/true\nschedule: '0 3 * * *'\ntag: batch\n",
    "g2": "name: G2\ncommand: /bin/true\nschedule: '0 4 * * *'\ntag: [other, batch]\n",
    "solo": "name: Solo\ncommand: /bin/true\nschedule: '0 5 * * *'\n",
    # fails until /etc/flaky-ok exists
    "flaky": ("name: Flaky\ncommand: /bin/sh -c 'echo flaky-run; test -e /etc/flaky-ok'\n"
              "schedule: '0 6 * * *'\nstop_after_failures: 2\n"),
}


@pytest.fixture(scope="module")
def box(built: Path, release: Release) -> Iterator[SystemdBox]:
    require_systemd_box()
    with SystemdBox(lower=root_of(release)) as booted:
        install_package(booted, built, JOB_FILES)
        booted.run(["useradd", "--create-home", "--groups", GROUP, "dev"])
        yield booted


def as_dev(box: SystemdBox, *argv: str) -> tuple[int, str, str]:
    done = box.run(list(argv), user="dev", check=False, timeout=120)
    return done.returncode, done.stdout, done.stderr


def active(box: SystemdBox, slug: str) -> str:
    return box.show(f"process-control-{slug}.timer", "ActiveState")["ActiveState"]


def wanted(box: SystemdBox, slug: str) -> bool:
    return box.run(["test", "-L", f"{WANTS}/process-control-{slug}.timer"],
                   check=False).returncode == 0


def test_the_package_makes_the_hold_directory_for_the_group(box: SystemdBox) -> None:
    assert box.run(["stat", "-c", "%U %G %a", HOLDS]).stdout == f"root {GROUP} 2775\n"
    # the service user (every job) may not write it
    done = box.run(["touch", f"{HOLDS}/group.batch"], user="process-control", check=False)
    assert done.returncode != 0


def test_a_member_disables_a_group_and_it_stays_stopped(box: SystemdBox) -> None:
    assert {slug: active(box, slug) for slug in ("g1", "g2", "solo")} == {
        "g1": "active", "g2": "active", "solo": "active"}
    code, out, err = as_dev(box, "run-job", "disable-group", "batch")
    assert code == 0, err
    assert "stopped process-control-g1.timer" in out and "stopped process-control-g2.timer" in out
    assert "group batch disabled: 2 job(s): g1, g2" in out
    assert (active(box, "g1"), active(box, "g2"), active(box, "solo")) == (
        "inactive", "inactive", "active")
    code, out, _err = as_dev(box, "run-job", "status", "--tag", "batch")
    assert code == 0 and "\tscheduling: disabled by group batch\n" in out
    assert out.count("scheduling: disabled by group batch") == 2 and "solo" not in out
    assert as_dev(box, "run-job", "list", "--tag", "other")[1] == "g2\n"
    # a deploy's reload, a daemon-reload, a re-exec, timers.target restarted: still stopped
    box.run(["run-job", "reload"])
    assert (active(box, "g1"), active(box, "g2")) == ("inactive", "inactive")
    for step in (["daemon-reload"], ["daemon-reexec"], ["restart", "timers.target"]):
        box.systemctl(*step)
        assert (active(box, "g1"), active(box, "g2"), active(box, "solo")) == (
            "inactive", "inactive", "active"), step
    assert not wanted(box, "g1") and not wanted(box, "g2") and wanted(box, "solo")
    # a job given the tag later, deployed while the group is disabled, is held too
    box.write_file(f"{JOBS}/g3.yaml", "name: G3\ncommand: /bin/true\nschedule: '0 2 * * *'\n"
                   "tag: batch\n")
    box.run(["run-job", "reload"])
    assert active(box, "g3") == "inactive" and not wanted(box, "g3")
    box.run(["rm", f"{JOBS}/g3.yaml"])
    box.run(["run-job", "reload"])
    # by hand it still runs
    code, _out, err = as_dev(box, "run-job", "run", "g1")
    assert code == 0, err
    # the original's style of flag
    code, out, err = as_dev(box, "run-job", "--enable-group", "batch")
    assert code == 0, err
    assert "started process-control-g1.timer" in out and "group batch enabled: 2 job(s)" in out
    assert (active(box, "g1"), active(box, "g2")) == ("active", "active")
    box.systemctl("daemon-reload")
    assert wanted(box, "g1") and wanted(box, "g2")
    assert "scheduling:" not in as_dev(box, "run-job", "status")[1]


def test_enabling_a_group_that_is_not_disabled_is_one_line(box: SystemdBox) -> None:
    code, out, err = as_dev(box, "run-job", "enable-group", "nothing")
    assert (code, out, err) == (1, "", "run-job: group nothing is not disabled\n")


def wait_for_mail(box: SystemdBox, runs: int) -> None:
    """Until the failure-mail unit has run ``runs`` times in all (the
    manager's record of each finished run; the unit itself is unloaded)."""
    def finished() -> int:
        return box.run(["journalctl", "-u", "process-control-mail@flaky.service", "-o", "cat",
                        "--no-pager"]).stdout.count("Deactivated successfully")

    box.wait_until(lambda: finished() >= runs, what=f"failure-mail unit run {runs} times")
    assert finished() == runs


def wait_for_stop(box: SystemdBox) -> None:
    box.wait_until(lambda: box.run(["test", "-e", f"{HOLDS}/stopped.flaky"],
                                   check=False).returncode == 0, what="stop record")
    box.wait_until(lambda: active(box, "flaky") == "inactive", what="flaky timer stopped")


def test_stop_after_two_failures_then_a_members_reset(box: SystemdBox) -> None:
    assert active(box, "flaky") == "active"
    code, _out, _err = as_dev(box, "run-job", "run", "flaky")
    assert code == 1
    wait_for_mail(box, 1)
    assert active(box, "flaky") == "active"  # one failure: still scheduled
    code, _out, _err = as_dev(box, "run-job", "run", "flaky")
    assert code == 1
    wait_for_stop(box)
    record = box.run(["cat", f"{HOLDS}/stopped.flaky"]).stdout
    assert record.startswith("2 ") and record.rstrip().endswith("process-control-monitor")
    code, out, _err = as_dev(box, "run-job", "status")
    assert ("\tscheduling: stopped after 2 consecutive failures (run-job reset flaky)\n"
            in out), out
    assert "\tnext run: none (held)\n" in out
    done = box.run(["check-jobs-icinga"], user="dev", check=False)
    assert done.returncode == 2, done.stdout
    assert "stopped after repeated failures: flaky" in done.stdout
    assert "stopped=1" in done.stdout
    for step in (["daemon-reload"], ["restart", "timers.target"]):
        box.systemctl(*step)
        assert active(box, "flaky") == "inactive", step
    assert "flaky: stopped after 2 consecutive failures" in box.run(
        ["journalctl", "-u", "process-control-mail@flaky.service", "-o", "cat",
         "--no-pager"]).stdout
    # the metrics: a reload (with a new configuration) does not start it either
    box.run(["install", "-d", "-o", "process-control-monitor", "/var/lib/pc-metrics"])
    box.write_file("/etc/process-control.yaml", "metrics_file: /var/lib/pc-metrics/pc.prom\n")
    try:
        box.run(["run-job", "reload"])
        assert active(box, "flaky") == "inactive"
        box.systemctl("start", "process-control-metrics.service")
        metrics = box.run(["cat", "/var/lib/pc-metrics/pc.prom"]).stdout
        assert 'process_control_job_stopped{job="flaky"} 1\n' in metrics
        assert 'process_control_job_stopped{job="g1"} 0\n' in metrics
    finally:
        box.run(["rm", "-f", "/etc/process-control.yaml"])
    box.run(["run-job", "reload"])
    assert active(box, "flaky") == "inactive"
    # runs by hand still work
    box.run(["touch", "/etc/flaky-ok"])
    code, out, err = as_dev(box, "run-job", "run", "flaky")
    assert (code, out) == (0, "flaky-run\n"), err
    assert active(box, "flaky") == "inactive"  # and it stays stopped until reset
    code, out, err = as_dev(box, "run-job", "reset", "flaky")
    assert (code, out) == (0, "started process-control-flaky.timer\nflaky: stop lifted\n"), err
    assert active(box, "flaky") == "active"
    box.systemctl("daemon-reload")
    assert wanted(box, "flaky")
    done = box.run(["check-jobs-icinga"], user="dev", check=False)
    assert done.returncode == 0, done.stdout
    # after a reset the failures count afresh: one more is not two
    box.run(["rm", "/etc/flaky-ok"])
    assert as_dev(box, "run-job", "run", "flaky")[0] == 1
    wait_for_mail(box, 3)
    assert active(box, "flaky") == "active"
    assert box.run(["test", "-e", f"{HOLDS}/stopped.flaky"], check=False).returncode != 0
    assert as_dev(box, "run-job", "run", "flaky")[0] == 1
    wait_for_stop(box)
    assert as_dev(box, "run-job", "--reset", "flaky")[0] == 0
    assert active(box, "flaky") == "active"


def test_a_non_member_may_not_hold_or_reset(box: SystemdBox) -> None:
    box.run(["useradd", "--create-home", "outsider"])
    for argv, what in ((["disable-group", "batch"], "disabling a group"),
                       (["reset", "flaky"], "resetting a job")):
        done = box.run(["run-job", *argv], user="outsider", check=False)
        assert done.returncode == 2
        assert done.stderr == f"run-job: {what} needs root or membership in group '{GROUP}'\n"
    # nor stop a job's timer through systemd: polkit asks for an administrator
    done = box.run(["systemctl", "--no-ask-password", "stop", "process-control-g1.timer"],
                   user="outsider", check=False)
    assert done.returncode != 0 and "Interactive authentication required" in done.stderr


@pytest.mark.parametrize("argv", [
    ["start", "process-control-g1.timer"],
    ["stop", "process-control-g1.service"],
    ["start", "process-control-g1.service"],
    ["stop", "process-control-metrics.timer"],
    ["stop", "systemd-tmpfiles-clean.timer"],
])
def test_the_monitor_user_may_stop_job_timers_only(box: SystemdBox, argv: list[str]) -> None:
    done = box.run(["systemctl", "--no-ask-password", *argv], user="process-control-monitor",
                   check=False)
    assert done.returncode != 0 and "Interactive authentication required" in done.stderr, argv
