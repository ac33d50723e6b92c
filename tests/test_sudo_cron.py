"""Developers on a cron host: the package's sudoers example, enabled, with
Debian's real sudo.

The package (built from the committed HEAD, as tests/test_package.py
builds it) is installed in a booted container with the checkout and the
test virtualenv hidden, so what runs is the package's ``/usr/bin/run-job``
on Debian's python3. ``/etc/process-control.yaml`` says ``backend: direct``,
so run-job runs the jobs itself, as on a host without systemd. Users:
``dev`` (in group process-control-dev) and ``other`` (not). The tests run in
this file's order on one box: the example is shipped and inactive, then
enabled as an operator would (``install`` + ``visudo -cf``), then used.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import hide_checkout
from tests.systemd_box import SystemdBox, require_systemd_box

pytestmark = pytest.mark.systemd

USER = "process-control"
GROUP = "process-control-dev"
JOBS = "/var/lib/process-control"
DEB_IN_BOX = "/root/process-control_all.deb"
EXAMPLE = "/usr/share/doc/process-control/examples/sudoers.d/process-control"
ENABLED = "/etc/sudoers.d/process-control"
AS_SERVICE = ["sudo", "-n", "-u", USER, "run-job"]
HINT = (f"use `sudo -u {USER} run-job ...` (members of group {GROUP}, "
        f"once the operator enabled {ENABLED})")
# No schedule: no timer of the box's systemd runs them; only run-job does.
WHO = ("name: Who\ncommand: /bin/sh -c 'id -un; pwd; cat notes.txt || echo no notes here; "
       "echo by $SUDO_USER'\n")
SLOW = "name: Slow\ncommand: /bin/sleep 300\n"
# What dev would like the service user to run: a job directory of their own.
EVIL_CONFIG = f"user: {USER}\nbackend: direct\njob_directory: /home/dev/jobs\n"
EVIL_JOB = "name: Evil\ncommand: /usr/bin/touch /var/log/process-control/pwned\n"


@pytest.fixture(scope="module")
def box(built: Path) -> Iterator[SystemdBox]:
    """The package installed on a host whose run-job runs jobs itself."""
    require_systemd_box()
    with SystemdBox() as booted:
        hide_checkout(booted)
        booted.write_file("/etc/process-control.yaml", f"user: {USER}\nbackend: direct\n")
        booted.write_file(f"{JOBS}/who.yaml", WHO)
        booted.write_file(f"{JOBS}/slow.yaml", SLOW)
        booted.write_file(DEB_IN_BOX, built.read_bytes())
        booted.run(["dpkg", "-i", DEB_IN_BOX], timeout=180)
        booted.run(["getent", "group", GROUP])  # the package made it
        booted.run(["useradd", "--create-home", "--groups", GROUP, "dev"])
        booted.run(["useradd", "--create-home", "other"])
        # a file a job's relative argument would name in dev's directory
        booted.write_file("/home/dev/notes.txt", "dev's notes\n")
        booted.write_file("/home/dev/evil.yaml", EVIL_CONFIG)
        booted.write_file("/home/dev/jobs/evil.yaml", EVIL_JOB)
        booted.run(["chown", "-R", "dev:dev", "/home/dev"])
        yield booted


def as_dev(box: SystemdBox, *args: str, user: str = "dev") -> tuple[int, str, str]:
    """``sudo -n -u process-control run-job ARGS`` as dev, from dev's home."""
    command = " ".join(["cd /home/dev &&", *(f"'{a}'" for a in AS_SERVICE + list(args))])
    result = box.run(["sh", "-c", command], user=user, check=False, timeout=30)
    return result.returncode, result.stdout, result.stderr


def running(box: SystemdBox) -> list[str]:
    return as_dev(box, "list", "--only-running")[1].split()


def test_the_example_is_shipped_and_not_active(box: SystemdBox) -> None:
    checked = box.run(["visudo", "-cf", EXAMPLE])
    assert checked.stdout.strip() == f"{EXAMPLE}: parsed OK"
    assert box.run(["test", "-e", ENABLED], check=False).returncode == 1
    code, _out, err = as_dev(box, "list")
    assert code == 1 and "a password is required" in err


@pytest.fixture(scope="module")
def enabled(box: SystemdBox) -> SystemdBox:
    """As the example's own comment says to enable it."""
    box.run(["install", "-m", "0440", EXAMPLE, ENABLED])
    assert box.run(["visudo", "-cf", ENABLED]).stdout.strip() == f"{ENABLED}: parsed OK"
    assert box.run(["visudo", "-c"]).returncode == 0  # the whole sudoers with it
    return box


def test_a_member_runs_a_job_as_the_service_user(enabled: SystemdBox) -> None:
    assert as_dev(enabled, "run", "who") == (0, "", "")  # a run that succeeds prints nothing
    code, out, err = as_dev(enabled, "logs", "who")
    assert code == 0 and err.startswith("-- run 1 of 1: /var/log/process-control/who/who-")
    lines = [line.split("\t")[-1] for line in out.splitlines()]
    # as the service user, in its home (/), not dev's directory; sudo says who
    assert USER in lines and "/" in lines and "by dev" in lines
    assert "no notes here" in lines and "dev's notes" not in lines
    history = enabled.run(["cat", "/var/cache/process-control/who.yaml"]).stdout
    assert "last_completion_status: success" in history


def test_a_member_sees_status_and_list(enabled: SystemdBox) -> None:
    code, out, err = as_dev(enabled, "status")
    assert (code, err) == (0, "backend: direct\n")
    assert "who - Who" in out and "slow - Slow" in out
    assert as_dev(enabled, "list")[:2] == (0, "slow\nwho\n")
    assert as_dev(enabled, "--status")[0] == 0  # the original's flags too


def test_a_member_stops_a_running_job(enabled: SystemdBox) -> None:
    started = " ".join(f"'{a}'" for a in AS_SERVICE)
    enabled.run(["sh", "-c", f"{started} run slow >/home/dev/slow.out 2>&1 &"], user="dev")
    enabled.wait_until(lambda: running(enabled) == ["slow"], timeout=20,
                       what="the slow job to run")
    code, out, err = as_dev(enabled, "kill", "slow")
    assert (code, err) == (0, "")
    assert out.startswith("Slow (slow): sent SIGTERM to run-job (pid ")
    enabled.wait_until(lambda: running(enabled) == [], timeout=20, what="the slow job to stop")
    enabled.wait_until(
        lambda: "was terminated" in enabled.run(["cat", "/home/dev/slow.out"]).stdout,
        timeout=20, what="the run to report")
    assert enabled.run(["cat", "/home/dev/slow.out"]).stdout == (
        "Slow was terminated by SIGTERM\n")
    assert enabled.run(["pgrep", "-x", "sleep"], check=False).returncode == 1
    assert as_dev(enabled, "kill", "slow") == (1, "", "Slow (slow) is not running\n")


def test_another_configuration_is_refused_through_sudo(enabled: SystemdBox) -> None:
    assert as_dev(enabled, "--config", "/home/dev/evil.yaml", "run", "evil") == (
        2, "", "run-job: through sudo only /etc/process-control.yaml applies, "
               "not --config /home/dev/evil.yaml\n")
    # the environment does not get through: sudo resets it, or refuses to set it
    result = enabled.run(["sh", "-c", "PROCESS_CONTROL_CONFIG=/home/dev/evil.yaml "
                          + " ".join(AS_SERVICE) + " run evil"], user="dev", check=False)
    assert (result.returncode, result.stderr) == (
        2, "/var/lib/process-control/evil.yaml:1: job: no job named 'evil'\n")
    result = enabled.run(["sudo", "-n", "-u", USER, "PROCESS_CONTROL_CONFIG=/home/dev/evil.yaml",
                          "run-job", "run", "evil"], user="dev", check=False)
    code, err = result.returncode, result.stderr
    assert code == 1 and "not allowed to set the following environment variables" in err
    assert enabled.run(["test", "-e", "/var/log/process-control/pwned"],
                       check=False).returncode == 1


@pytest.mark.parametrize(("args", "line"), [
    (["reload"], "run-job: reload is root's work, not run through sudo (by uid {uid})\n"),
    (["install-generator"],
     "run-job: install-generator is root's work, not run through sudo (by uid {uid})\n"),
    (["validate", "/var/cache/process-control/who.yaml"],
     "run-job: through sudo validate takes no FILES: it runs nothing, "
     "so run `run-job validate FILES` as yourself\n"),
])
def test_roots_work_and_other_files_are_refused_through_sudo(
    enabled: SystemdBox, args: list[str], line: str
) -> None:
    uid = enabled.run(["id", "-u", "dev"]).stdout.strip()
    assert as_dev(enabled, *args) == (2, "", line.format(uid=uid))


def test_the_rule_gives_nothing_else(enabled: SystemdBox) -> None:
    for sudo in (["sudo", "-n", "-u", "root", "run-job", "list"],
                 ["sudo", "-n", "-u", USER, "/bin/sh", "-c", "id"],
                 ["sudo", "-n", "-u", USER, "-g", "root", "run-job", "list"]):
        result = enabled.run(sudo, user="dev", check=False)
        assert result.returncode == 1 and "a password is required" in result.stderr, sudo


def test_a_non_member_is_refused_by_sudo_and_told_the_group(enabled: SystemdBox) -> None:
    code, _out, err = as_dev(enabled, "run", "who", user="other")
    assert code == 1 and "a password is required" in err
    uid = enabled.run(["id", "-u", "other"]).stdout.strip()
    service = enabled.run(["id", "-u", USER]).stdout.strip()
    wrong = f"run-job: jobs run as user '{USER}' (uid {service}), not as uid {uid}: {HINT}\n"
    for args in (["run-job", "run", "who"], ["run-job", "--job", "who"],
                 ["run-job", "kill", "who"]):
        result = enabled.run(args, user="other", check=False)
        # (a run's lines go to stdout, as the original's, for cron's mail)
        assert (result.returncode, result.stdout + result.stderr) == (2, wrong), args
    result = enabled.run(["run-job", "logs", "who"], user="other", check=False)
    assert (result.returncode, result.stdout, result.stderr) == (
        2, "", f"run-job: /var/log/process-control: Permission denied: {HINT}\n")


def test_a_member_without_sudo_is_told_how(enabled: SystemdBox) -> None:
    uid = enabled.run(["id", "-u", "dev"]).stdout.strip()
    service = enabled.run(["id", "-u", USER]).stdout.strip()
    result = enabled.run(["run-job", "run", "who"], user="dev", check=False)
    assert (result.returncode, result.stdout + result.stderr) == (
        2, f"run-job: jobs run as user '{USER}' (uid {service}), not as uid {uid}: {HINT}\n")
