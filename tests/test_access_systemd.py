"""Developers run their jobs without root: the installed package's broker,
polkit rule, journal namespace and directories, handed to a real systemd
(Debian 12's 252 and 13's 257) with a real polkitd, as a member of the developer group and as another user
(the broker's own refusals: tests/test_broker_systemd.py).

One box: the package installed (the checkout hidden), built-in defaults (no
/etc/process-control.yaml), users ``dev`` (in process-control-dev) and
``outsider``, and a unit that is not ours, ``other.service``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pc_systemd.systemd.access import MARK
from tests.conftest import install_package
from tests.debian_root import Release, root_of
from tests.systemd_box import SystemdBox, require_systemd_box

pytestmark = pytest.mark.systemd

GROUP = "process-control-dev"
JOB_FILES = {
    "hello": "name: Hello\ncommand: /bin/sh -c 'echo hello-output; echo second line'\n",
    "slow": "name: Slow\ncommand: /bin/sh -c 'echo slow-started; exec sleep 300'\n",
    "filed": "name: Filed\ncommand: /bin/echo filed-output\nlogging: file\n",
    "retrying": ("name: Retrying\ncommand: /bin/sh -c 'echo trying; exit 5'\ntimeout: 1\n"
                 "retry: {attempts: 1, delay: 0.02}\n"),
    "ticker": ("name: Ticker\ncommand: /bin/sh -c 'echo tick-1; sleep 2; echo tick-2; "
               "sleep 1; echo tick-3; exit 4'\n"),
    "fileticker": ("name: File ticker\nlogging: file\ncommand: /bin/sh -c 'echo tick-1; "
                   "sleep 2; echo tick-2; sleep 1; echo tick-3'\n"),
}
OTHER = ("[Service]\nType=oneshot\nRemainAfterExit=yes\n"
         "ExecStart=/bin/echo other-secret\n")


@pytest.fixture(scope="module")
def box(built: Path, release: Release) -> Iterator[SystemdBox]:
    require_systemd_box()
    with SystemdBox(lower=root_of(release)) as booted:
        booted.write_file("/etc/systemd/system/other.service", OTHER)
        install_package(booted, built, JOB_FILES)
        booted.run(["useradd", "--create-home", "--groups", GROUP, "dev"])
        booted.run(["useradd", "--create-home", "outsider"])
        booted.systemctl("start", "other.service")
        yield booted


def as_user(box: SystemdBox, user: str, *argv: str) -> tuple[int, str, str]:
    done = box.run(list(argv), user=user, check=False, timeout=120)
    return done.returncode, done.stdout, done.stderr


def refused_by_polkit(err: str) -> bool:
    # systemd's answer when polkit does not say yes and nobody may be asked
    return "Interactive authentication required" in err


# -- what a member may do -----------------------------------------------------------


def test_a_member_runs_a_job_and_sees_its_output(box: SystemdBox) -> None:
    code, out, err = as_user(box, "dev", "run-job", "run", "hello")
    assert (code, out) == (0, "hello-output\nsecond line\n"), err
    assert box.run(["id", "-nG", "dev"]).stdout.split().count(GROUP) == 1
    # and with the original's flag
    code, out, err = as_user(box, "dev", "run-job", "-j", "hello")
    assert (code, out) == (0, "hello-output\nsecond line\n"), err


def test_a_member_runs_a_job_with_retries(box: SystemdBox) -> None:
    # run-job clears the job's start limit first (polkit verb reset-failed)
    for _ in range(2):
        code, out, err = as_user(box, "dev", "run-job", "run", "retrying")
        assert (code, out) == (5, "trying\ntrying\n"), err
        assert "attempt 2 of 2" in err


def test_a_member_reads_a_jobs_output_from_the_journal(box: SystemdBox) -> None:
    as_user(box, "dev", "run-job", "run", "hello")
    code, out, err = as_user(box, "dev", "run-job", "logs", "hello")
    assert (code, out) == (0, "hello-output\nsecond line\n"), err
    assert err.startswith("-- run ") and "process-control-hello.service" in err
    assert err.endswith(": success\n")  # systemd's answer, though its records are unread
    as_user(box, "dev", "run-job", "run", "ticker")
    code, out, err = as_user(box, "dev", "run-job", "logs", "ticker")
    assert (code, out) == (0, "tick-1\ntick-2\ntick-3\n")
    assert err.endswith(": Ticker failed with code 4\n"), err
    code, out, _err = as_user(box, "dev", "run-job", "--logs", "hello", "--run", "1")
    assert (code, out) == (0, "hello-output\nsecond line\n")
    # journalctl itself: the jobs' namespace, nothing of the system journal
    code, out, _err = as_user(box, "dev", "journalctl", "--namespace=process-control",
                              "-o", "cat", "--no-pager")
    assert code == 0 and "hello-output" in out


def test_a_member_stops_a_running_job(box: SystemdBox) -> None:
    box.systemctl("start", "--no-block", "process-control-slow.service")
    box.wait_until(lambda: box.show("process-control-slow.service", "ActiveState")
                   ["ActiveState"] == "activating", what="slow job running")
    code, out, err = as_user(box, "dev", "run-job", "kill", "slow")
    assert code == 0, err
    assert out.startswith("Slow (slow): stopped process-control-slow.service")
    assert box.show("process-control-slow.service", "ActiveState")["ActiveState"] != "activating"


@pytest.mark.parametrize(("slug", "code"), [("ticker", 4), ("fileticker", 0)])
def test_a_member_follows_a_running_job_to_its_end(box: SystemdBox, slug: str,
                                                   code: int) -> None:
    unit = f"process-control-{slug}.service"
    box.systemctl("start", "--no-block", unit)
    box.wait_until(lambda: box.show(unit, "ActiveState")["ActiveState"] == "activating",
                   what=f"{slug} running")
    got, out, err = as_user(box, "dev", "run-job", "logs", slug, "--follow")
    assert (got, out) == (code, "tick-1\ntick-2\ntick-3\n"), err
    # not running any more: --follow shows the last run and ends
    got, out, err = as_user(box, "dev", "run-job", "logs", slug, "-f")
    assert (got, out) == (0, "tick-1\ntick-2\ntick-3\n"), err


def test_a_member_reads_logging_file_output_and_others_do_not(box: SystemdBox) -> None:
    code, _out, err = as_user(box, "dev", "run-job", "run", "filed")
    assert code == 0, err
    code, out, err = as_user(box, "dev", "run-job", "logs", "filed")
    assert (code, out) == (0, "filed-output\n"), err
    listing = box.run(["sh", "-c", "stat -c '%U %G %a' /var/log/process-control/filed "
                       "/var/log/process-control/filed/*.log"]).stdout.splitlines()
    assert listing == ["process-control process-control-dev 2750",
                       "process-control process-control-dev 640"]
    code, out, _err = as_user(box, "outsider", "sh", "-c",
                              "cat /var/log/process-control/filed/*.log")
    assert code != 0 and "filed-output" not in out


def test_a_member_sees_status_list_and_next(box: SystemdBox) -> None:
    for argv in (["status"], ["list"], ["next", "hello"], ["--status"], ["-l"]):
        code, _out, err = as_user(box, "dev", "run-job", *argv)
        assert code in (0, 1), (argv, err)  # 1: a job without a schedule for next
        assert "Traceback" not in err
    assert "hello" in as_user(box, "dev", "run-job", "list")[1].split()


# -- what a member may not do ------------------------------------------------------------


@pytest.mark.parametrize("argv", [
    # the jobs' own units too: run-job asks the broker (tests/test_broker_systemd.py)
    ["systemctl", "--no-ask-password", "start", "process-control-hello.service"],
    ["systemctl", "--no-ask-password", "--job-mode=flush", "start",
     "process-control-hello.service"],
    ["systemctl", "--no-ask-password", "stop", "process-control-slow.service"],
    ["systemctl", "--no-ask-password", "start", "process-control-hello.timer"],
    ["systemctl", "--no-ask-password", "stop", "other.service"],
    ["systemctl", "--no-ask-password", "start", "systemd-tmpfiles-clean.service"],
    ["systemctl", "--no-ask-password", "restart", "process-control-hello.service"],
    ["systemctl", "--no-ask-password", "start", "process-control-reload.service"],
    ["systemctl", "--no-ask-password", "start", "process-control-after-var.service"],
    ["systemctl", "--no-ask-password", "start", "process-control-mail@hello.service"],
    ["systemctl", "--no-ask-password", "restart", "process-control-hello.timer"],
    ["systemctl", "--no-ask-password", "stop", "process-control-reload.path"],
    ["systemctl", "--no-ask-password", "daemon-reload"],
])
def test_a_member_is_refused_anything_else(box: SystemdBox, argv: list[str]) -> None:
    code, _out, err = as_user(box, "dev", *argv)
    assert code != 0 and refused_by_polkit(err), err


def test_a_member_may_not_signal_restart_or_change_a_running_job(box: SystemdBox) -> None:
    # (systemctl kill / reset-failed of a unit that is not loaded fail before polkit)
    box.systemctl("start", "--no-block", "process-control-slow.service")
    try:
        box.wait_until(lambda: box.show("process-control-slow.service", "ActiveState")
                       ["ActiveState"] == "activating", what="slow job running")
        for verb in (["kill"], ["restart"], ["set-property", "--runtime"]):
            extra = ["CPUWeight=50"] if verb[0] == "set-property" else []
            code, _out, err = as_user(box, "dev", "systemctl", "--no-ask-password", *verb,
                                      "process-control-slow.service", *extra)
            assert code != 0 and refused_by_polkit(err), (verb, err)
    finally:
        box.systemctl("stop", "process-control-slow.service")


def test_the_rule_is_what_refuses_and_root_still_may(box: SystemdBox) -> None:
    # the same verbs root may use: the refusals above are polkit's, not systemd's
    box.systemctl("restart", "other.service")
    code, _out, err = as_user(box, "outsider", "systemctl", "--no-ask-password", "start",
                              "process-control-hello.service")
    assert code != 0 and refused_by_polkit(err)


def test_a_member_reads_no_other_services_journal(box: SystemdBox) -> None:
    assert "other-secret" in box.run(["journalctl", "-u", "other.service", "-o", "cat",
                                      "--no-pager"]).stdout
    for argv in (["journalctl", "-u", "other.service"], ["journalctl", "--namespace=*"],
                 ["journalctl", "--namespace=+process-control"]):
        _code, out, _err = as_user(box, "dev", *argv, "-o", "cat", "--no-pager")
        assert "other-secret" not in out, argv


def test_a_member_cannot_reload_or_install(box: SystemdBox) -> None:
    for argv in (["run-job", "reload"], ["run-job", "--reload"],
                 ["run-job", "uninstall-generator"]):
        code, _out, err = as_user(box, "dev", *argv)
        assert code == 2 and "Traceback" not in err, (argv, err)
    assert box.run(["test", "-e", "/usr/lib/systemd/system-generators/"
                    "process-control-generator"], check=False).returncode == 0


# -- another user ---------------------------------------------------------------------


def test_a_non_member_gets_one_line_naming_the_group(box: SystemdBox) -> None:
    for argv, what in ((["run", "hello"], "running a job"), (["-j", "hello"], "running a job"),
                       (["kill", "slow"], "stopping a job"),
                       (["logs", "hello"], "reading a job's output")):
        code, out, err = as_user(box, "outsider", "run-job", *argv)
        assert (code, out) == (2, ""), err
        assert err == f"run-job: {what} needs root or membership in group '{GROUP}'\n"


def test_a_non_member_reads_nothing_of_the_jobs_journal(box: SystemdBox) -> None:
    _code, out, _err = as_user(box, "outsider", "journalctl", "--namespace=process-control",
                             "-o", "cat", "--no-pager")
    assert "hello-output" not in out


# -- another developer_group -----------------------------------------------------------


def test_another_developer_group_moves_the_rights(box: SystemdBox) -> None:
    box.run(["groupadd", "ops"])
    box.run(["useradd", "--create-home", "--groups", "ops", "opsdev"])
    box.write_file("/etc/process-control.yaml", "developer_group: ops\n")
    # the rule an earlier version's reload wrote for that group: it let the
    # group's members start job units themselves
    rule = "/etc/polkit-1/rules.d/50-process-control.rules"
    box.write_file(rule, f"// {MARK}\npolkit.addRule(function (action, subject) {{\n"
                   '    if (subject.isInGroup("ops")) { return polkit.Result.YES; }\n});\n')
    try:
        done = box.run(["run-job", "reload"])
        assert f"run-job: removed {rule}" in done.stderr, done.stderr
        assert ("run-job: wrote /etc/systemd/system/process-control-broker.socket.d/"
                "50-developer-group.conf for developer_group 'ops'") in done.stderr
        assert ("run-job: wrote /etc/tmpfiles.d/process-control-developer-group.conf for "
                "developer_group 'ops'") in done.stderr, done.stderr
        assert box.run(["stat", "-c", "%G", "/run/process-control-broker.sock"]).stdout == "ops\n"
        code, out, err = as_user(box, "opsdev", "run-job", "run", "hello")
        assert (code, out) == (0, "hello-output\nsecond line\n"), err
        # the package's group no longer may: by our check, and by the socket
        assert as_user(box, "dev", "run-job", "run", "hello")[0] == 2
        # and neither group has any systemd permission of its own
        for user in ("dev", "opsdev"):
            code, _out, err = as_user(box, user, "systemctl", "--no-ask-password", "start",
                                      "process-control-hello.service")
            assert code != 0 and refused_by_polkit(err), err
    finally:
        box.run(["rm", "-f", "/etc/process-control.yaml"])
    done = box.run(["run-job", "reload"])
    assert ("run-job: removed /etc/systemd/system/process-control-broker.socket.d/"
            "50-developer-group.conf") in done.stderr
    assert "run-job: removed /etc/tmpfiles.d/process-control-developer-group.conf" in done.stderr
    assert box.run(["stat", "-c", "%G", "/run/process-control-broker.sock"]).stdout == (
        f"{GROUP}\n")
    code, out, err = as_user(box, "dev", "run-job", "run", "hello")
    assert (code, out) == (0, "hello-output\nsecond line\n"), err
