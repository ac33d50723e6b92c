"""Knowing when jobs fail on a systemd host, from systemd's own records, in
a real systemd booted in a container: ``run-job --status``, failure mail
(``OnFailure=`` -> ``process-control-mail@<slug>.service``), the metrics
timer's service and ``check-jobs-icinga``.

Job services carry nothing of ours: nothing runs before or after a run, as
root or otherwise. The tests at the top hold that, with a job whose
environment sets every variable that could steer a program of ours run
with it (``HOSTILE_ENV``).

One container for the module. A real SMTP server (aiosmtpd, saving to a
Maildir) runs inside it as a transient unit, since the container has no
network to the host. ``process-control-monitor`` exists as the package
creates it, and owns the metrics directory.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Iterator

import pytest

from tests.conftest import mailed_output
from tests.monitoring_box import (
    FAILMAIL,
    FROM,
    JOBS,
    METRICS,
    MONITOR,
    PYTHON,
    RUN_JOB,
    SMTP_PORT,
    SMTP_UNIT,
    TO,
    USER,
    body,
    clear_mails,
    hostname,
    job_metrics,
    mail_lines,
    mail_unit,
    mails,
    run,
    set_up,
    start_smtp,
    status,
    unit,
)
from tests.systemd_box import SystemdBox, checkout_box

SPY = "/srv/spy"  # the preload library and what it saw; not under the sandbox's private dirs

CONFIG = f"""\
user: {USER}
job_directory: {JOBS}
output_directory: /var/log/process-control
smtp_host: 127.0.0.1
smtp_port: {SMTP_PORT}
metrics_file: {METRICS}
"""

# Every variable through which a job's Environment= could steer a program of
# ours run with it.
HOSTILE_ENV = f"""\
environment:
    LD_PRELOAD: {SPY}/libspy.so
    PATH: {SPY}/bin:/usr/bin:/bin
    OPENSSL_CONF: {SPY}/openssl.cnf
    PYTHONPATH: {SPY}/py
    SERVICE_RESULT: success
    EXIT_CODE: exited
    EXIT_STATUS: "0"
    MONITOR_SERVICE_RESULT: success
    MONITOR_EXIT_CODE: exited
    MONITOR_EXIT_STATUS: "0"
    MONITOR_UNIT: process-control-fine.service
    MONITOR_INVOCATION_ID: 0123456789abcdef0123456789abcdef
    PROCESS_CONTROL_CONFIG: {SPY}/evil.yaml
"""

JOB_FILES = {
    "fine": "name: Fine\ncommand: /bin/echo all good\n" + FAILMAIL,
    "flaky": textwrap.dedent(
        """\
        name: Flaky
        command: /bin/sh -c "seq 1 30; echo boom >&2; exit 3"
        failure_threshold_for_mail: 2
        """
    ) + FAILMAIL,
    "slow": textwrap.dedent(
        """\
        name: Slow
        command: /bin/sh -c "echo working; exec sleep 30"
        timeout: 0.02
        """
    ) + FAILMAIL,
    "tofile": textwrap.dedent(
        """\
        name: To a file
        logging: file
        command:
            - /bin/sh -c "seq 1 10"
            - /bin/sh -c "seq 11 25; exit 4"
        """
    ) + FAILMAIL,
    "down": "name: Down\ncommand: /bin/sh -c 'exit 5'\n" + FAILMAIL,
    "longrun": "name: Longrun\ncommand: /bin/sleep 60\n",
    "spied_ok": "name: Spied\ncommand: /bin/true\n" + FAILMAIL + HOSTILE_ENV,
    "spied_fail": "name: Spied failing\ncommand: /bin/false\n" + FAILMAIL + HOSTILE_ENV,
}

# Loaded into a process, it notes who that process runs as: the job's own
# processes (as the service user) in user.log, any root process in root.log.
SPY_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
__attribute__((constructor)) static void spy(void) {
    char line[512], exe[256] = "";
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) exe[n] = 0;
    int root = geteuid() == 0 || getuid() == 0;
    int fd = open(root ? "/srv/spy/root.log" : "/srv/spy/user.log",
                  O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return;
    int len = snprintf(line, sizeof line, "%d %d %s\n", (int)getuid(), (int)getpid(), exe);
    if (len > 0) write(fd, line, (size_t)len);
    close(fd);
}
"""
# A `journalctl` first in the job's PATH: anything of ours that took the
# job's PATH would run it.
FAKE_JOURNALCTL = f"#!/bin/sh\nid -u >> {SPY}/path.log\nexec /usr/bin/journalctl \"$@\"\n"


def plant_spy(box: SystemdBox) -> None:
    box.run(["install", "-d", "-m", "0777", SPY, f"{SPY}/bin", f"{SPY}/py"])
    box.write_file(f"{SPY}/spy.c", SPY_C)
    box.run(["gcc", "-shared", "-fPIC", "-o", f"{SPY}/libspy.so", f"{SPY}/spy.c"])
    box.write_file(f"{SPY}/bin/journalctl", FAKE_JOURNALCTL, mode=0o755)
    box.write_file(f"{SPY}/py/sitecustomize.py",
                   f"open('{SPY}/root.log', 'a').write('python sitecustomize\\n')\n")
    box.write_file(f"{SPY}/openssl.cnf", "this is not an openssl configuration\n")
    box.write_file(f"{SPY}/evil.yaml", "user: root\nallow_root: true\n")
    # The spies see root: a root process given the job's LD_PRELOAD and PATH.
    box.run(["env", f"LD_PRELOAD={SPY}/libspy.so", f"PATH={SPY}/bin:/usr/bin:/bin",
             "sh", "-c", "journalctl --version"])
    assert len(spy_log(box, "root.log")) >= 1 and spy_log(box, "path.log") == ["0"]
    box.run(["rm", f"{SPY}/root.log", f"{SPY}/path.log"])


@pytest.fixture(scope="module")
def box() -> Iterator[SystemdBox]:
    with checkout_box() as booted:
        set_up(booted, CONFIG, JOB_FILES, prepare=[plant_spy])
        yield booted


# -- helpers -----------------------------------------------------------------------


def spy_log(box: SystemdBox, name: str) -> list[str]:
    return box.run(["sh", "-c", f"cat {SPY}/{name} 2>/dev/null || :"]).stdout.splitlines()


# -- nothing of ours on a job's run -----------------------------------------------


@pytest.mark.systemd
def test_a_job_service_runs_only_the_jobs_own_commands(box: SystemdBox) -> None:
    for slug in JOB_FILES:
        shown = box.show(unit(slug), "ExecStartPre", "ExecStartPost", "ExecStopPost",
                         "ExecStop", "ExecCondition")
        assert shown == {}, (slug, shown)  # systemctl shows no empty command list
        assert box.show(unit(slug), "ExecStart")["ExecStart"].startswith("{ path=/bin/")
    text = box.run(["systemctl", "cat", unit("spied_ok"), unit("tofile")]).stdout
    assert "+" not in "".join(line.partition("=")[2][:1] for line in text.splitlines()
                              if line.startswith("Exec"))
    assert "pc_systemd" not in text
    # The OnFailure= unit is the job's mail, and only where the job has mail.
    assert box.show(unit("spied_ok"), "OnFailure")["OnFailure"] == mail_unit("spied_ok")
    assert box.show(unit("longrun"), "OnFailure")["OnFailure"] == ""


@pytest.mark.systemd
def test_a_hostile_environment_reaches_no_process_but_the_jobs_own(box: SystemdBox) -> None:
    clear_mails(box)
    assert run(box, "spied_ok") == 0
    assert run(box, "spied_fail") != 0
    job_metrics(box, "spied_fail")  # the metrics writer ran too
    box.run([RUN_JOB, "--status"])
    box.run([PYTHON, "-m", "pc_systemd.cli.icinga"], check=False)
    # The spy was loaded by the jobs' own processes, as the service user ...
    uid = box.run(["id", "-u", USER]).stdout.strip()
    seen = spy_log(box, "user.log")
    assert seen and {line.split()[0] for line in seen} == {uid}
    # ... and by no root process, nor did anything take the job's PATH or
    # PYTHONPATH.
    assert spy_log(box, "root.log") == []
    assert spy_log(box, "path.log") == []
    # The mail unit ran, as its own user, and the result is systemd's.
    (got,) = mails(box)
    assert got["Subject"] == f"Fail Mail ({hostname(box)}) run-job: Spied failing failed with code 1"
    assert mail_lines(box, "spied_fail") == []
    last = status(box, "spied_fail")["last_run"]
    assert (last["status"], last["reason"]) == ("failure", "Spied failing failed with code 1")
    values = job_metrics(box, "spied_fail")
    assert (values["last_run_success"], values["last_run_exit_status"]) == (0, 1)
    assert job_metrics(box, "spied_ok")["last_run_success"] == 1


@pytest.mark.systemd
def test_our_units_run_as_neither_root_nor_the_service_user(box: SystemdBox) -> None:
    for name in (mail_unit("spied_fail"), "process-control-metrics.service"):
        shown = box.show(name, "DynamicUser", "User", "SupplementaryGroups")
        assert shown["DynamicUser"] == "yes", name
        assert shown["User"] == MONITOR
        assert "systemd-journal" in shown["SupplementaryGroups"].split()
    # The user systemd ran them as, from their own log lines' metadata.
    out = box.run(["journalctl", "-o", "json", "--output-fields=_UID",
                   "_SYSTEMD_UNIT=process-control-metrics.service"], check=False).stdout
    monitor_uid = box.run(["id", "-u", MONITOR]).stdout.strip()
    assert {json.loads(line)["_UID"] for line in out.splitlines()} <= {monitor_uid}


@pytest.mark.systemd
def test_another_user_holding_locks_on_our_files_delays_nothing(box: SystemdBox) -> None:
    # Everything of ours that another local user can open, locked by them.
    assert run(box, "fine") == 0
    job_metrics(box, "fine")
    holder = subprocess.Popen(
        ["nsenter", "-t", str(box.init_pid), "-a", "setpriv", "--reuid=nobody", "--regid=nogroup",
         "--clear-groups", "sh", "-c",
         f"for f in {METRICS} {JOBS}/fine.yaml /etc/process-control.yaml; do "
         "exec 3<\"$f\"; flock -n 3 && echo locked \"$f\"; exec 3<&-; done; "
         f"flock {METRICS} sleep 60"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().startswith("locked ")
        started = box.run(["date", "+%s.%N"]).stdout
        assert run(box, "fine") == 0
        values = job_metrics(box, "fine")  # the metrics service renames, never locks
        took = float(box.run(["date", "+%s.%N"]).stdout) - float(started)
        assert took < 10
        assert values["last_run_end_timestamp_seconds"] >= float(started) - 1
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.systemd
def test_a_poisoned_history_changes_nothing(box: SystemdBox) -> None:
    # The service user (any job) can write the state directory; nothing on
    # a systemd host reads it.
    box.run(["install", "-d", "-o", USER, "/var/cache/process-control"])
    box.write_file("/var/cache/process-control/fine.yaml",
                   "history:\n- {status: failed, time: '0000-01-01 00:00:00'}\n"
                   "last_completion_status: failure\nconsecutive_failures: 99\n")
    box.run(["chown", USER, "/var/cache/process-control/fine.yaml"])
    assert run(box, "fine") == 0
    assert status(box, "fine")["last_run"]["status"] == "success"
    assert job_metrics(box, "fine")["consecutive_failures"] == 0
    check = box.run([PYTHON, "-m", "pc_systemd.cli.icinga"], check=False)
    assert "Traceback" not in check.stdout + check.stderr
    assert "fine" not in check.stdout.partition("|")[0]


# -- what systemd records, as run-job, mail, metrics and icinga show it -----------


@pytest.mark.systemd
def test_a_run_is_shown_from_systemds_records(box: SystemdBox) -> None:
    assert run(box, "fine") == 0
    last = status(box, "fine")["last_run"]
    assert (last["status"], last["reason"]) == ("success", None)
    assert 0 <= last["duration_seconds"] < 10
    values = job_metrics(box, "fine")
    assert values["last_run_success"] == 1
    assert values["last_run_exit_status"] == 0
    assert values["consecutive_failures"] == 0
    assert values["last_success_timestamp_seconds"] == values["last_run_end_timestamp_seconds"]
    assert box.run(["stat", "-c", "%U %a", METRICS]).stdout.split() == [MONITOR, "644"]


@pytest.mark.systemd
def test_failures_are_counted_and_mailed_from_the_threshold_on(box: SystemdBox) -> None:
    clear_mails(box)
    assert run(box, "flaky") != 0
    assert mails(box) == []  # threshold 2: the first failure is not mailed
    assert job_metrics(box, "flaky")["consecutive_failures"] == 1
    assert run(box, "flaky") != 0
    (got,) = mails(box)
    invocation = box.invocations(unit("flaky"))[-1]
    assert got["Subject"] == f"Fail Mail ({hostname(box)}) run-job: Flaky failed with code 3"
    assert (got["From"], got["To"]) == (FROM, TO)
    assert (got["X-MailFrom"], got["X-RcptTo"]) == (FROM, TO)  # the envelope
    text = body(got)
    assert text.startswith("Job:     Flaky (flaky)\n")
    assert "Failed:  2 run(s) in a row (mail from 2 on)\n" in text
    assert "Started: " in text and "Ended:   " in text
    # The last 20 lines of the run's output, stderr's included.
    assert mailed_output(text) == [str(n) for n in range(12, 31)] + ["boom"]
    assert text.endswith(
        "All of its output:\n"
        f"    journalctl --namespace=process-control _SYSTEMD_INVOCATION_ID={invocation}\n"
        "    run-job --logs flaky (while it is the last run)\n"
    )
    values = job_metrics(box, "flaky")
    assert (values["last_run_success"], values["last_run_exit_status"],
            values["consecutive_failures"]) == (0, 3, 2)
    assert "last_success_timestamp_seconds" not in values


@pytest.mark.systemd
def test_a_run_killed_by_its_timeout_is_mailed_and_measured(box: SystemdBox) -> None:
    clear_mails(box)
    assert run(box, "slow") != 0
    assert box.show(unit("slow"), "Result")["Result"] == "timeout"
    (got,) = mails(box)
    assert got["Subject"] == f"Fail Mail ({hostname(box)}) run-job: Slow timed out after 0.02 minutes"
    assert mailed_output(body(got)) == ["working"]
    last = status(box, "slow")["last_run"]
    assert (last["status"], last["reason"]) == ("failure", "Slow timed out after 0.02 minutes")
    values = job_metrics(box, "slow")
    assert values["last_run_success"] == 0
    assert values["last_run_exit_status"] == -15
    assert 1.2 <= values["last_run_duration_seconds"] < 8
    assert values["consecutive_failures"] == 1


@pytest.mark.systemd
def test_a_file_logged_failure_mails_the_end_of_its_file(box: SystemdBox) -> None:
    clear_mails(box)
    assert run(box, "tofile") != 0
    logs = box.run(["sh", "-c", "ls /var/log/process-control/tofile/*.log"]).stdout.split()
    (log,) = logs  # both commands of the list wrote the run's one file
    assert box.run(["stat", "-c", "%U %a", log]).stdout.split() == [USER, "640"]
    # (setgid, from output_directory: the developer group reads the files)
    assert box.run(["stat", "-c", "%a", "/var/log/process-control/tofile"]).stdout.strip() == "2750"
    (got,) = mails(box)
    assert mailed_output(body(got)) == [str(n) for n in range(6, 26)]
    assert body(got).endswith(f"All of its output:\n    {log}\n")
    assert box.show(unit("tofile"), "ExecMainStatus")["ExecMainStatus"] == "4"


@pytest.mark.systemd
def test_a_run_stopped_by_hand_is_running_then_not_a_failure(box: SystemdBox) -> None:
    clear_mails(box)
    box.systemctl("start", "--no-block", unit("longrun"))
    box.wait_until(lambda: status(box, "longrun")["state"] == "running", what="running")
    check = box.run([PYTHON, "-m", "pc_systemd.cli.icinga"], check=False)
    assert " running=1 " in check.stdout, check.stdout
    box.systemctl("stop", unit("longrun"))
    check = box.run([PYTHON, "-m", "pc_systemd.cli.icinga"], check=False)
    assert " running=0 " in check.stdout, check.stdout
    assert mails(box) == []


@pytest.mark.systemd
def test_a_mail_server_that_is_down_changes_nothing_but_a_log_line(box: SystemdBox) -> None:
    clear_mails(box)
    box.systemctl("stop", SMTP_UNIT)
    try:
        assert run(box, "down") != 0
        assert box.show(unit("down"), "Result")["Result"] == "exit-code"
        (line,) = mail_lines(box, "down")
        assert line.startswith(
            f"process-control mail: failure mail to {TO} not sent: 127.0.0.1:{SMTP_PORT}: ")
        assert job_metrics(box, "down")["last_run_exit_status"] == 5
    finally:
        start_smtp(box)
    assert mails(box) == []


@pytest.mark.systemd
def test_icinga_reports_systemds_view(box: SystemdBox) -> None:
    check = box.run([PYTHON, "-m", "pc_systemd.cli.icinga"], check=False)
    assert check.returncode == 2, check.stdout
    failing = check.stdout.partition("FAILING JOBS: ")[2].partition(" |")[0].split(", ")
    assert {"flaky", "slow", "tofile", "down", "spied_fail"} <= set(failing)
    assert "fine" not in failing
    # An unprivileged monitoring user gets the same answer (over D-Bus).
    as_nobody = box.run([PYTHON, "-m", "pc_systemd.cli.icinga"], check=False, user="nobody")
    assert (as_nobody.returncode, as_nobody.stdout.partition(" |")[0]) == (
        2, check.stdout.partition(" |")[0])


@pytest.mark.systemd
def test_the_mail_unit_refuses_a_start_that_is_not_systemds(box: SystemdBox) -> None:
    # Started by hand, without MONITOR_*: one line, no mail.
    clear_mails(box)
    box.systemctl("start", mail_unit("fine"), check=False)
    (line,) = mail_lines(box, "fine")[-1:]
    assert "are not those of a run of fine" in line
    assert mails(box) == []
