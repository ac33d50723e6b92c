"""Output and failures survive the journal, with the package installed on a
real systemd, on Debian 12 (252) and Debian 13 (257): the jobs' journald
killed mid-run, journald still writing a loud run's output after it ended,
the namespace's retention, a reboot, a full disk under a job's log
directory.

One box for the module on each release: the package installed (the
checkout hidden), a real SMTP server (aiosmtpd) inside it for the failure
mail, the built-in configuration but for the mail server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.conftest import hide_checkout, install_package, mailed_output
from tests.debian_root import Release, root_of
from tests.monitoring_box import (
    FAILMAIL,
    MAILDIR,
    SMTP_PORT,
    SMTP_PYTHON,
    SMTP_UNIT,
    body,
    mails,
    unit,
)
from tests.systemd_box import SystemdBox, interpreter_binds, require_systemd_box

pytestmark = pytest.mark.systemd

JOURNALD = "systemd-journald@process-control.service"
NAMESPACE = "--namespace=process-control"
CONFIG = f"smtp_host: 127.0.0.1\nsmtp_port: {SMTP_PORT}\n"
LINES = 15_000
TORN = 100  # lines a killed journald may have read and not stored (one read buffer)
JOB_FILES = {
    # 15,000 lines over about 6 s: 30 bursts of 500, 0.2 s apart
    "chatty": ("name: Chatty\ncommand: /bin/sh -c 'i=0; while [ $i -lt 15000 ]; do "
               "echo chatty-$i; i=$((i+1)); if [ $((i % 500)) -eq 0 ]; then sleep 0.2; fi; "
               "done'\n"),
    # scheduled far from now (1 January, 03:00): it runs only when started
    "nightly": ("name: Nightly\ncommand: /bin/sh -c 'echo before the reboot; exit 4'\n"
                "schedule: '0 3 1 1 *'\n"),
    # 1.9 MB into a 1 MiB file system (seq exits 1 on its write error)
    "filler": "name: Filler\ncommand: /usr/bin/seq 1 300000\nlogging: file\n" + FAILMAIL,
    "denied": "name: Denied\ncommand: /bin/echo never shown\nlogging: file\n" + FAILMAIL,
    "loud": ("name: Loud\ncommand: /bin/sh -c 'seq 1 1000000; echo FINAL-LINE; exit 3'\n"
             "timeout: 10\n" + FAILMAIL),
    "pause": "name: Pause\ncommand: /bin/sh -c 'echo pause-start; sleep 3; echo pause-end'\n",
    "long": "name: Long\ncommand: /bin/sh -c 'echo long-start; exec sleep 600'\n",
}
STREAMS = "/run/systemd/journal.process-control/streams"
LOUD_END = "999999\n1000000\nFINAL-LINE\n"


@pytest.fixture(scope="module")
def box(built: Path, release: Release) -> Iterator[SystemdBox]:
    """On Debian 12 and on Debian 13 (journald's namespaces, drop-ins and
    sync differ between their systemd releases)."""
    require_systemd_box()
    lower = root_of(release)
    with SystemdBox(binds_ro=interpreter_binds(lower), lower=lower) as booted:
        booted.write_file("/etc/process-control.yaml", CONFIG)
        # the SMTP server runs from the test virtualenv: before the checkout is hidden
        start_smtp(booted)
        install_package(booted, built, JOB_FILES)
        booted.run(["useradd", "--create-home", "--groups", "process-control-dev", "dev"])
        yield booted


def start_smtp(box: SystemdBox) -> None:
    """The SMTP server, from the test virtualenv (before the checkout, and
    it, are hidden)."""
    box.run(["systemd-run", f"--unit={SMTP_UNIT}", "--collect", SMTP_PYTHON, "-m", "aiosmtpd",
             "-n", "-l", f"127.0.0.1:{SMTP_PORT}", "-c", "aiosmtpd.handlers.Mailbox", MAILDIR])
    probe = f"import socket; socket.create_connection(('127.0.0.1', {SMTP_PORT}), 1).close()"
    box.wait_until(lambda: box.run([SMTP_PYTHON, "-c", probe], check=False).returncode == 0,
                   timeout=20, what="the SMTP server listens")


def journald_pid(box: SystemdBox) -> int:
    return int(box.show(JOURNALD, "MainPID")["MainPID"])


def run_lines(box: SystemdBox, invocation: str) -> list[str]:
    out = box.run(["journalctl", NAMESPACE, f"_SYSTEMD_INVOCATION_ID={invocation}",
                   "-o", "cat", "--no-pager"], timeout=120).stdout
    return out.splitlines()


def start(box: SystemdBox, slug: str) -> str:
    """Start a job's run; its invocation ID (while it runs: systemd may
    forget a unit that ended well)."""
    box.systemctl("start", "--no-block", unit(slug))
    box.wait_until(lambda: box.show(unit(slug), "ActiveState")["ActiveState"] == "activating",
                   timeout=20, what=f"{slug} runs")
    return box.show(unit(slug), "InvocationID")["InvocationID"]


def test_running_jobs_keep_their_output_when_their_journald_is_killed(box: SystemdBox) -> None:
    invocation = start(box, "chatty")
    box.wait_until(lambda: len(run_lines(box, invocation)) >= 1000, timeout=30, interval=0.5,
                   what="chatty's first 1,000 lines in the journal")
    before = journald_pid(box)
    box.systemctl("kill", "--kill-who=main", "-s", "KILL", JOURNALD)
    box.wait_until(lambda: journald_pid(box) not in (0, before), timeout=10,
                   what="the jobs' journald back")
    box.wait_until(lambda: box.show(unit("chatty"), "ActiveState")["ActiveState"] != "activating",
                   timeout=60, what="chatty's end")
    assert box.show(unit("chatty"), "Result")["Result"] == "success"
    expected = [f"chatty-{i}" for i in range(LINES)]
    box.wait_until(lambda: len(run_lines(box, invocation)) >= LINES - TORN, timeout=60,
                   interval=1, what=f"chatty's {LINES} lines in the journal")
    got = run_lines(box, invocation)
    # What journald had read from a stream but not yet stored dies with it
    # (at most one read: measured 0 to 24 lines, and the line it cut):
    # never more, and every line after that is kept. Without the drop-in,
    # nothing after the kill was (4,300 of 15,000 kept).
    kept = set(got)
    missing = [i for i, line in enumerate(expected) if line not in kept]
    torn = [line for line in got if line not in set(expected)]
    assert len(missing) <= TORN and len(torn) <= 1, (len(got), missing[:5], torn)
    if missing:
        assert missing == list(range(missing[0], missing[0] + len(missing))), missing
        assert not torn or any(expected[i].endswith(torn[0]) for i in missing), torn
    assert got[-1] == expected[-1]


def test_the_shipped_retention_is_what_journald_reads(box: SystemdBox) -> None:
    shown = box.run(["systemd-analyze", "cat-config",
                     "systemd/journald@process-control.conf"]).stdout
    assert "# /usr/lib/systemd/journald@process-control.conf.d/10-process-control.conf" in shown
    keys = dict(line.split("=", 1) for line in shown.splitlines()
                if "=" in line and not line.startswith("#"))
    assert keys["SystemMaxUse"] == "8G" and keys["MaxRetentionSec"] == "4week"
    assert keys["Storage"] == "persistent" and keys["RateLimitIntervalSec"] == "0"
    # journald itself says so as it starts (systemd 252 reads a namespace's
    # main file from /etc only, its drop-ins from /usr/lib too)
    box.systemctl("restart", JOURNALD)
    said = box.run(["journalctl", NAMESPACE, "-o", "cat", "--boot", "--no-pager",
                    "MESSAGE_ID=ec387f577b844b8fa948f33cad9a75e6"]).stdout
    assert journald_max(said) == "8", said
    # and an operator's drop-in changes it, as the README tells
    box.write_file("/etc/systemd/journald@process-control.conf.d/50-retention.conf",
                   "[Journal]\nMaxRetentionSec=2week\nSystemMaxUse=6G\n")
    shown = box.run(["systemd-analyze", "cat-config",
                     "systemd/journald@process-control.conf"]).stdout
    assert shown.rindex("MaxRetentionSec=2week") > shown.rindex("MaxRetentionSec=4week")
    box.systemctl("restart", JOURNALD)
    said = box.run(["journalctl", NAMESPACE, "-o", "cat", "--boot", "--no-pager",
                    "MESSAGE_ID=ec387f577b844b8fa948f33cad9a75e6"]).stdout
    assert journald_max(said) == "6", said
    box.run(["rm", "-r", "/etc/systemd/journald@process-control.conf.d"])
    box.systemctl("restart", JOURNALD)


def journald_max(said: str) -> str | None:
    """The size limit, in GiB, the last of journald's "System Journal (...)
    is ..., max ..." lines names (252 writes "8.0G", 257 "8G")."""
    found = re.search(r", max (\d+)(?:\.0)?G, ", said.splitlines()[-1])
    return found.group(1) if found else None


def test_the_restart_drop_in_is_what_systemd_reads(box: SystemdBox) -> None:
    shown = box.show(JOURNALD, "Restart", "DropInPaths")
    assert shown["Restart"] == "always"
    assert "/usr/lib/systemd/system/systemd-journald@process-control.service.d/restart.conf" \
        in shown["DropInPaths"]


def run_loud(box: SystemdBox, user: str | None = None) -> EmailMessage:
    """``run-job run loud`` (as ``user``): every line shown, FINAL-LINE last,
    and its one-line reason; the run's failure mail."""
    before = len(mails(box))
    done = box.run(["run-job", "run", "loud"], user=user, check=False, timeout=300)
    assert done.returncode == 3, done.stderr
    assert done.stdout.endswith(LOUD_END), done.stdout[-200:]
    assert done.stdout.count("\n") == 1_000_001
    assert done.stderr == "Loud failed with code 3\n", done.stderr
    (mail,) = box.wait_until(lambda: mails(box)[before:], timeout=240, interval=1,
                             what="the failure mail of loud")
    return mail


def test_run_the_mail_and_logs_show_a_loud_runs_true_last_lines(box: SystemdBox) -> None:
    # journald stores a million lines well after the run ended: run-job run
    # (root) and the mail unit, unprivileged, wait until it has them
    text = body(run_loud(box))
    quoted = mailed_output(text)
    assert quoted[-1] == "FINAL-LINE", text
    assert quoted[-2] == "1000000"
    assert "still storing" not in text
    done = box.run(["run-job", "logs", "loud"], timeout=300)
    assert done.stdout.endswith(LOUD_END), done.stdout[-200:]
    assert done.stdout.count("\n") == 1_000_001
    assert "still arriving" not in done.stderr and "deleted" not in done.stderr


def test_a_members_run_shows_a_loud_runs_true_last_lines(box: SystemdBox) -> None:
    # A member may neither sync journald nor read whose a stream is: run-job
    # waits while a stream begun during the run is open (it showed 223,148
    # lines of 1,000,001 when it only waited a moment)
    # (its failure mail, before the next test counts mails)
    assert mailed_output(body(run_loud(box, user="dev")))[-1] == "FINAL-LINE"


def test_another_jobs_stream_begun_during_a_run_keeps_root_waiting_for_nothing(
    box: SystemdBox,
) -> None:
    # Long begins (and keeps its output stream open) while Pause runs: root
    # reads whose each stream is and waits for Pause's own only
    box.systemctl("stop", unit("long"))
    done = box.run(["sh", "-c", "run-job run pause & run=$!; sleep 1; "
                    f"systemctl start --no-block {unit('long')}; wait $run"], timeout=120)
    try:
        assert done.stdout == "pause-start\npause-end\n" and done.stderr == ""
        assert box.show(unit("long"), "ActiveState")["ActiveState"] == "activating"
        owners = box.run(["sh", "-c", f"cat {STREAMS}/*"]).stdout
        assert f"UNIT={unit('long')}" in owners and f"UNIT={unit('pause')}" not in owners
        # (before, `logs` waited 20 s for it and said output was still arriving)
        shown = box.run(["run-job", "logs", "pause"], timeout=120)
        assert shown.stdout == "pause-start\npause-end\n"
        assert "still arriving" not in shown.stderr, shown.stderr
        # a member cannot tell whose a stream is: for them the rule stays the
        # time the stream began (and the wait its bound)
        (name, *_) = box.run(["ls", STREAMS]).stdout.split()
        read = box.run(["cat", f"{STREAMS}/{name}"], user="dev", check=False)
        assert read.returncode != 0 and "Permission denied" in read.stderr
    finally:
        box.systemctl("stop", unit("long"))


def test_logs_says_when_a_runs_output_was_deleted(box: SystemdBox) -> None:
    invocation = start(box, "chatty")
    box.wait_until(lambda: len(run_lines(box, invocation)) == LINES, timeout=60, interval=1,
                   what="chatty's lines in the journal")
    # journald's retention deletes the namespace's oldest files: as
    # `journalctl --vacuum-files` does with the archived ones
    box.run(["journalctl", NAMESPACE, "--rotate"])
    box.run(["journalctl", NAMESPACE, "--vacuum-files=1"])
    assert run_lines(box, invocation) == []
    done = box.run(["run-job", "logs", "chatty"], timeout=120)
    assert done.stdout == ""
    assert ("-- its output (if it printed any): deleted from the journal (journald's retention, "
            "/usr/lib/systemd/journald@process-control.conf.d)") in done.stderr


def test_a_full_disk_under_a_file_logged_job_is_recorded_by_its_run(box: SystemdBox) -> None:
    directory = "/var/log/process-control/filler"
    box.run(["install", "-d", "-o", "process-control", "-g", "process-control-dev",
             "-m", "2750", directory])
    box.run(["mount", "-t", "tmpfs", "-o", "size=1M,mode=2750,uid=process-control,"
             "gid=process-control-dev", "tmpfs", directory])
    said = f"process-control: cannot write {directory}/filler-"
    why = ".log: No space left on device (its file system was full when the run ended"
    try:
        before = len(mails(box))
        assert box.run(["systemctl", "start", unit("filler")], check=False).returncode != 0
        (mail,) = box.wait_until(lambda: mails(box)[before:], timeout=120, interval=1,
                                 what="the failure mail of filler")
        text = body(mail)
        assert said in text and why in text, text
        assert "Filler failed with code 1" in mail["Subject"]
        logs = box.run(["run-job", "logs", "filler"])
        assert f"\n-- {said}" in logs.stderr and why in logs.stderr, logs.stderr
        assert logs.stdout.startswith("1\n2\n3\n")
    finally:
        box.run(["umount", directory])
    # the disk has room again (the tmpfs is gone): what the run recorded stays
    job = status_of(box, "filler")
    assert job["state"] == "failed" and said in str(job["note"]) and why in str(job["note"]), job
    assert said in box.run(["run-job", "status"]).stdout
    logs = box.run(["run-job", "logs", "filler"], check=False)
    assert logs.returncode == 1 and f"-- {said}" in logs.stderr, logs.stderr
    assert f"filler: no log files in {directory}" in logs.stderr


def test_a_log_file_the_wrapper_cannot_make_is_named_where_the_run_is_shown(
        box: SystemdBox) -> None:
    directory = "/var/log/process-control/denied"
    box.run(["install", "-d", "-o", "root", "-g", "root", "-m", "0755", directory])
    before = len(mails(box))
    assert box.run(["systemctl", "start", unit("denied")], check=False).returncode != 0
    (mail,) = box.wait_until(lambda: mails(box)[before:], timeout=120, interval=1,
                             what="the failure mail of denied")
    quoted = mailed_output(body(mail))
    said = f"process-control: cannot write {directory}/denied-"
    assert quoted[-1].startswith(said), quoted
    assert quoted[-1].endswith(".log: Permission denied"), quoted
    assert "never shown" not in body(mail)
    job = status_of(box, "denied")
    assert job["state"] == "failed" and said in str(job["note"]), job
    assert str(job["note"]).endswith(".log: Permission denied"), job
    assert said in box.run(["run-job", "status"]).stdout
    logs = box.run(["run-job", "logs", "denied"], check=False)
    assert logs.returncode == 1 and f"-- {said}" in logs.stderr, logs.stderr


def status_of(box: SystemdBox, slug: str) -> dict[str, object]:
    done = box.run(["run-job", "status", "--json"])
    (job,) = [j for j in json.loads(done.stdout)["jobs"] if j["slug"] == slug]
    assert isinstance(job, dict)
    return job


def test_a_failure_before_a_reboot_is_a_failure_after_it(box: SystemdBox) -> None:
    # last in the module: the reboot ends the SMTP server
    assert box.run(["systemctl", "start", unit("nightly")], check=False).returncode != 0
    before = status_of(box, "nightly")
    assert before["state"] == "failed"
    box.reboot()
    hide_checkout(box)  # the reboot took the mount that hid it
    # systemd knows the timer's service, which has not run since the boot
    shown = box.show(unit("nightly"), "LoadState", "ActiveState", "InactiveExitTimestamp")
    assert shown == {"LoadState": "loaded", "ActiveState": "inactive",
                     "InactiveExitTimestamp": ""}, shown
    after = status_of(box, "nightly")
    assert after["state"] == "failed", after
    # (from the journal's records now, D-Bus's before: the same run, to the millisecond)
    was, now = before["last_run"], after["last_run"]
    assert isinstance(was, dict) and isinstance(now, dict)
    assert (now["status"], now["reason"]) == (was["status"], was["reason"]) == (
        "failure", "Nightly failed with code 4")
    assert now["start"][:19] == was["start"][:19], (was, now)
    text = box.run(["run-job", "status"]).stdout
    assert "Nightly failed with code 4" in text, text
    check = box.run(["check-jobs-icinga"], check=False)
    assert check.returncode == 2, check.stdout + check.stderr
    failing = check.stdout.partition("FAILING JOBS: ")[2].partition(" |")[0].split(", ")
    assert "nightly" in failing, check.stdout
