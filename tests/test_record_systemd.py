"""History, failure mail and metrics on a systemd host, through the hooks
every generated service runs (``pc_systemd.record`` as ExecStartPre= and
ExecStopPost=), in a real systemd booted in a container.

One container for the module. A real SMTP server (aiosmtpd, saving to a
Maildir) runs inside it as a transient unit, since the container has no
network to the host. The timer test uses the job's own generated timer
(``* * * * *``), which starts ticking when the box is set up, so by the
time it runs (last) most of its minute has passed during the other tests.

The tests at the end need no container: the hooks' answers to bad input.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pc_systemd import history as hist
from pc_systemd import record
from tests.conftest import Site
from tests.systemd_box import SystemdBox, checkout_box

VENV = Path(sys.prefix)
PYTHON = str(VENV / "bin" / "python")
RUN_JOB = str(VENV / "bin" / "run-job")
JOBS = "/var/lib/process-control"
STATE = "/var/cache/process-control"  # the default; made by the first hook
METRICS = "/var/lib/node-exporter/process-control.prom"
MAILDIR = "/root/maildir"
SMTP_PORT = 8025
SMTP_UNIT = "pc-test-smtp.service"
USER = "pcuser"
FROM = "jobs@example.org"
TO = "oncall@example.org"

CONFIG = f"""\
user: {USER}
job_directory: {JOBS}
output_directory: /var/log/process-control
smtp_host: 127.0.0.1
smtp_port: {SMTP_PORT}
metrics_file: {METRICS}
"""
FAILMAIL = f"failmail: {{from_address: {FROM}, to_address: {TO}}}\n"

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
        command: /bin/sh -c "seq 1 25; exit 4"
        """
    ) + FAILMAIL,
    "down": "name: Down\ncommand: /bin/sh -c 'exit 5'\n" + FAILMAIL,
    "longrun": "name: Longrun\ncommand: /bin/sleep 60\n",
    "ticker": "name: Ticker\ncommand: /bin/echo tick\nschedule: '* * * * *'\n",
}

@pytest.fixture(scope="module")
def box() -> Iterator[SystemdBox]:
    with checkout_box() as booted:
        booted.run(["useradd", "--create-home", USER])
        booted.run(["mkdir", "-p", os.path.dirname(METRICS)])
        booted.write_file("/etc/process-control.yaml", CONFIG)
        for slug, text in JOB_FILES.items():
            booted.write_file(f"{JOBS}/{slug}.yaml", text)
        start_smtp(booted)
        booted.run([RUN_JOB, "--install-generator"])
        yield booted


# -- helpers -----------------------------------------------------------------------


def start_smtp(box: SystemdBox) -> None:
    box.run(["systemd-run", f"--unit={SMTP_UNIT}", "--collect", PYTHON, "-m", "aiosmtpd",
             "-n", "-l", f"127.0.0.1:{SMTP_PORT}", "-c", "aiosmtpd.handlers.Mailbox", MAILDIR])
    probe = f"import socket; socket.create_connection(('127.0.0.1', {SMTP_PORT}), 1).close()"
    box.wait_until(lambda: box.run([PYTHON, "-c", probe], check=False).returncode == 0,
                   timeout=20, what="the SMTP server listens")


def mails(box: SystemdBox) -> list[EmailMessage]:
    """Messages the SMTP server received, oldest first."""
    names = box.run(["ls", "-1", f"{MAILDIR}/new"], check=False).stdout.split()
    # Maildir names carry a per-process counter "Q<n>": the arrival order.
    names.sort(key=lambda name: int(re.search(r"Q(\d+)", name).group(1)))  # type: ignore[union-attr]
    found = []
    for name in names:
        raw = box.run(["cat", f"{MAILDIR}/new/{name}"]).stdout
        message = email.message_from_string(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        found.append(message)
    return found


def clear_mails(box: SystemdBox) -> None:
    box.run(["sh", "-c", f"rm -f {MAILDIR}/new/*"])


def body(message: EmailMessage) -> str:
    part = message.get_body()
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


def quoted_output(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Last "))
    out = []
    for line in lines[start + 1:]:
        if not line.startswith("    "):
            break
        out.append(line[4:])
    return out


def unit(slug: str) -> str:
    return f"process-control-{slug}.service"


def run(box: SystemdBox, slug: str) -> int:
    return box.systemctl("start", unit(slug), check=False).returncode


def history(box: SystemdBox, slug: str) -> hist.History:
    return hist.parse(box.run(["cat", f"{STATE}/{slug}.yaml"]).stdout)


def last_entry(box: SystemdBox, slug: str) -> hist.Entry:
    return history(box, slug).entries[-1]


def last_status(box: SystemdBox, slug: str) -> str | None:
    """The newest entry's status; None while there is no history yet."""
    done = box.run(["cat", f"{STATE}/{slug}.yaml"], check=False)
    if done.returncode != 0:
        return None
    entries = hist.parse(done.stdout).entries
    return entries[-1].status if entries else None


def metrics(box: SystemdBox) -> dict[str, dict[str, float]]:
    values: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(box.run(["cat", METRICS]).stdout):
        for sample in family.samples:
            values.setdefault(sample.name, {})[sample.labels["job"]] = sample.value
    return values


def job_metrics(box: SystemdBox, slug: str) -> dict[str, float]:
    prefix = "process_control_"
    return {name[len(prefix):]: by_job[slug]
            for name, by_job in metrics(box).items() if slug in by_job}


def hook_lines(box: SystemdBox, slug: str) -> list[str]:
    """What the hooks logged about the job (their stderr is the journal)."""
    box.run(["journalctl", "--sync"])
    out = box.run(["journalctl", "-u", unit(slug), "-o", "cat", "--no-pager"]).stdout
    return [line for line in out.splitlines() if "process-control record:" in line]


def owner_and_mode(box: SystemdBox, path: str) -> str:
    return box.run(["stat", "-c", "%U %a", path]).stdout.strip()


def hostname(box: SystemdBox) -> str:
    return box.run(["hostname"]).stdout.strip()


# -- systemd -----------------------------------------------------------------------


@pytest.mark.systemd
def test_a_run_is_recorded_in_the_shared_history_for_the_service_user(box: SystemdBox) -> None:
    assert run(box, "fine") == 0
    (invocation,) = box.invocations(unit("fine"))
    entries = history(box, "fine").entries
    assert [(e.status, e.invocation, e.code, e.reason) for e in entries] == [
        ("completed", invocation, 0, None)]
    (entry,) = entries
    assert entry.start is not None and entry.end is not None
    assert dt.timedelta(0) < entry.end - entry.start < dt.timedelta(seconds=10)
    assert history(box, "fine").last_completion_status == "success"
    # Written by root, handed to the service user; the directory too.
    assert owner_and_mode(box, STATE) == f"{USER} 755"
    assert owner_and_mode(box, f"{STATE}/fine.yaml") == f"{USER} 644"
    assert owner_and_mode(box, f"{STATE}/fine.yaml.lock") == f"{USER} 644"
    assert hook_lines(box, "fine") == []
    assert job_metrics(box, "fine")["last_run_success"] == 1
    assert job_metrics(box, "fine")["last_run_start_timestamp_seconds"] == \
        entry.start.timestamp()


@pytest.mark.systemd
def test_the_direct_runner_can_take_over_the_history(box: SystemdBox) -> None:
    # A host switching to cron: its runner, as the service user, keeps the
    # history root's hooks wrote.
    direct = (CONFIG.replace(f"metrics_file: {METRICS}\n", "")
              .replace("/var/log/process-control", f"/home/{USER}/logs"))
    box.write_file("/etc/pc-direct.yaml", direct + "backend: direct\nrun_directory: /run/pc-direct\n")
    box.run(["install", "-d", "-o", USER, "/run/pc-direct"])
    before = len(history(box, "fine").entries)
    done = box.run([RUN_JOB, "--config", "/etc/pc-direct.yaml", "--job", "fine"], user=USER,
                   check=False)
    assert (done.returncode, done.stderr) == (0, ""), done.stdout
    entries = history(box, "fine").entries
    assert len(entries) == before + 1
    assert (entries[-1].status, entries[-1].invocation) == ("completed", None)
    assert entries[-1].pid is not None


@pytest.mark.systemd
def test_failures_are_counted_and_mailed_from_the_threshold_on(box: SystemdBox) -> None:
    clear_mails(box)
    assert run(box, "flaky") != 0
    entry = last_entry(box, "flaky")
    assert (entry.status, entry.code, entry.reason) == ("failed", 3, "Flaky failed with code 3")
    assert history(box, "flaky").consecutive_failures == 1
    assert mails(box) == []  # threshold 2: the first failure is not mailed
    assert run(box, "flaky") != 0
    assert history(box, "flaky").consecutive_failures == 2
    (got,) = mails(box)
    invocation = box.invocations(unit("flaky"))[-1]
    assert last_entry(box, "flaky").invocation == invocation
    assert got["Subject"] == f"Fail Mail ({hostname(box)}) run-job: Flaky failed with code 3"
    assert (got["From"], got["To"]) == (FROM, TO)
    assert (got["X-MailFrom"], got["X-RcptTo"]) == (FROM, TO)  # the envelope
    text = body(got)
    assert text.startswith("Job:     Flaky (flaky)\n")
    assert "Failed:  2 run(s) in a row (mail from 2 on)\n" in text
    # The last 20 lines of the run's output, stderr's included.
    assert quoted_output(text) == [str(n) for n in range(12, 31)] + ["boom"]
    assert text.endswith(
        "All of its output:\n"
        f"    journalctl _SYSTEMD_INVOCATION_ID={invocation}\n"
        "    run-job --logs flaky (while it is the last run)\n"
    )
    values = job_metrics(box, "flaky")
    assert (values["last_run_success"], values["last_run_exit_status"],
            values["consecutive_failures"]) == (0, 3, 2)


@pytest.mark.systemd
def test_a_run_killed_by_its_timeout_is_recorded_mailed_and_measured(box: SystemdBox) -> None:
    clear_mails(box)
    assert run(box, "slow") != 0
    assert box.show(unit("slow"), "Result")["Result"] == "timeout"
    entry = last_entry(box, "slow")
    assert (entry.status, entry.code, entry.reason) == (
        "failed", -15, "Slow timed out after 0.02 minutes")
    assert entry.duration is not None and 1.2 <= entry.duration < 8
    (got,) = mails(box)
    assert got["Subject"] == f"Fail Mail ({hostname(box)}) run-job: Slow timed out after 0.02 minutes"
    assert quoted_output(body(got)) == ["working"]
    values = job_metrics(box, "slow")
    assert values["last_run_success"] == 0
    assert values["last_run_exit_status"] == -15
    assert values["last_run_duration_seconds"] == pytest.approx(entry.duration)
    assert values["consecutive_failures"] == 1
    assert "last_success_timestamp_seconds" not in values


@pytest.mark.systemd
def test_a_file_logged_failure_mails_the_end_of_its_file(box: SystemdBox) -> None:
    clear_mails(box)
    assert run(box, "tofile") != 0
    entry = last_entry(box, "tofile")
    assert (entry.status, entry.code) == ("failed", 4)
    assert entry.log is not None and entry.log.startswith("/var/log/process-control/tofile/")
    (got,) = mails(box)
    assert quoted_output(body(got)) == [str(n) for n in range(6, 26)]
    assert body(got).endswith(f"All of its output:\n    {entry.log}\n")


@pytest.mark.systemd
def test_a_run_stopped_by_hand_is_running_then_terminated_by_sigterm(box: SystemdBox) -> None:
    box.systemctl("start", "--no-block", unit("longrun"))
    box.wait_until(lambda: last_status(box, "longrun") == "started", what="the started entry")
    check = box.run([PYTHON, "-m", "pc_systemd.icinga"], check=False)
    assert " running=1 " in check.stdout, check.stdout
    box.systemctl("stop", unit("longrun"))
    entry = last_entry(box, "longrun")
    assert (entry.status, entry.code, entry.reason) == (
        "failed", -15, "Longrun was terminated by SIGTERM")
    assert len(history(box, "longrun").entries) == 1  # the started entry became this one
    check = box.run([PYTHON, "-m", "pc_systemd.icinga"], check=False)
    assert check.returncode == 2
    assert check.stdout.startswith("FAILING JOBS: ")
    assert "longrun" in check.stdout and " running=0 " in check.stdout


@pytest.mark.systemd
def test_a_mail_server_that_is_down_changes_nothing_but_a_log_line(box: SystemdBox) -> None:
    clear_mails(box)
    box.systemctl("stop", SMTP_UNIT)
    try:
        assert run(box, "down") != 0
        assert box.show(unit("down"), "Result")["Result"] == "exit-code"  # as without mail
        entry = last_entry(box, "down")
        assert (entry.status, entry.code, entry.reason) == ("failed", 5, "Down failed with code 5")
        assert job_metrics(box, "down")["last_run_exit_status"] == 5
        (line,) = hook_lines(box, "down")
        assert line.startswith(
            f"process-control record: failure mail to {TO} not sent: 127.0.0.1:{SMTP_PORT}: ")
        # A successful run never needs the server.
        assert run(box, "fine") == 0
        assert box.show(unit("fine"), "Result")["Result"] == "success"
    finally:
        start_smtp(box)
    assert mails(box) == []


@pytest.mark.systemd
def test_a_timer_started_run_is_recorded_with_metrics(box: SystemdBox) -> None:
    # Nobody starts ticker by hand: only its timer (* * * * *) can have run it.
    box.wait_until(lambda: last_status(box, "ticker") == "completed",
                   timeout=75, interval=1, what="a timer-started run of ticker")
    entry = last_entry(box, "ticker")
    assert (entry.code, entry.reason) == (0, None)
    assert entry.invocation in box.invocations(unit("ticker"))
    triggered = box.show("process-control-ticker.timer", "LastTriggerUSec")["LastTriggerUSec"]
    assert triggered not in ("", "n/a")
    assert entry.start is not None and entry.start.second < 5  # at a whole minute
    values = job_metrics(box, "ticker")
    assert values["last_run_success"] == 1
    assert values["last_run_start_timestamp_seconds"] == entry.start.timestamp()


# -- the hooks' answers to bad input (no container needed) ------------------------


def hook(args: list[str], env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    done = subprocess.run([sys.executable, "-I", "-m", "pc_systemd.record", *args],
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", **(env or {})},
                          timeout=60)
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    return done.returncode, done.stderr.splitlines()


INVOCATION = {"INVOCATION_ID": "0123456789abcdef0123456789abcdef"}


@pytest.fixture
def hook_site(site: Site) -> Site:
    site.configure(f"user: {os.geteuid()}\nallow_root: true\nstate_directory: {site.root}/state\n")
    return site


def test_the_hooks_refuse_bad_input_in_one_line(hook_site: Site) -> None:
    cfg = str(hook_site.config_file)
    prefix = "process-control record: "
    assert hook([]) == (2, [prefix + record.USAGE])
    assert hook(["start", "../etc", "--config", cfg], INVOCATION) == (
        2, [prefix + "bad job name '../etc'"])
    assert hook(["start", "job", "--config", cfg]) == (
        2, [prefix + "$INVOCATION_ID is not set: the hooks are run by systemd"])
    assert hook(["stop", "job", "--config", cfg], INVOCATION) == (
        2, [prefix + "$SERVICE_RESULT is not set: 'stop' is run by systemd's ExecStopPost="])
    assert hook(["start", "job", "--config", "/nonexistent.yaml"], INVOCATION) == (
        1, [prefix + "/nonexistent.yaml:1: (file): configuration file does not exist"])
    assert not (hook_site.root / "state").exists()


def test_a_run_of_a_job_whose_file_is_gone_is_still_recorded(hook_site: Site) -> None:
    cfg = str(hook_site.config_file)
    assert hook(["start", "gone", "--config", cfg], INVOCATION) == (0, [])
    env = {**INVOCATION, "SERVICE_RESULT": "exit-code", "EXIT_CODE": "exited",
           "EXIT_STATUS": "7"}
    code, lines = hook(["stop", "gone", "--config", cfg], env)
    assert code == 0
    assert lines == [f"process-control record: {hook_site.jobs}/gone.yaml:1: job: no job named "
                     "'gone' (the run is recorded, no mail is sent)"]
    (entry,) = hist.load(str(hook_site.root / "state" / "gone.yaml")).entries
    assert (entry.status, entry.code, entry.reason, entry.invocation) == (
        "failed", 7, "gone failed with code 7", INVOCATION["INVOCATION_ID"])
    assert entry.start is not None and entry.end is not None and entry.start <= entry.end


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"SERVICE_RESULT": "success", "EXIT_CODE": "exited", "EXIT_STATUS": "0"},
         ("completed", 0, None)),
        ({"SERVICE_RESULT": "exit-code", "EXIT_CODE": "exited", "EXIT_STATUS": "3"},
         ("failed", 3, "Job failed with code 3")),
        ({"SERVICE_RESULT": "timeout", "EXIT_CODE": "killed", "EXIT_STATUS": "TERM"},
         ("failed", -15, "Job timed out after 0.5 minutes")),
        ({"SERVICE_RESULT": "signal", "EXIT_CODE": "killed", "EXIT_STATUS": "TERM"},
         ("failed", -15, "Job was terminated by SIGTERM")),
        ({"SERVICE_RESULT": "signal", "EXIT_CODE": "killed", "EXIT_STATUS": "KILL"},
         ("failed", -9, "Job was killed by signal SIGKILL")),
        ({"SERVICE_RESULT": "core-dump", "EXIT_CODE": "dumped", "EXIT_STATUS": "SEGV"},
         ("failed", -11, "Job was killed by signal SIGSEGV (core dumped)")),
        ({"SERVICE_RESULT": "resources"},
         ("failed", None, "Job failed: systemd reports resources")),
        ({"SERVICE_RESULT": "signal", "EXIT_CODE": "killed", "EXIT_STATUS": "BOGUS"},
         ("failed", None, "Job failed: systemd reports signal")),
    ],
)
def test_what_systemd_reports_becomes_the_originals_words(
    env: dict[str, str], expected: tuple[str, int | None, str | None]
) -> None:
    got = record.result("Job", 0.5, env)
    assert (got.status, got.code, got.reason) == expected


def test_started_and_finished_entries_are_matched_by_invocation() -> None:
    now = dt.datetime.now(dt.UTC)
    first = hist.Entry("started", now, start=now, invocation="a" * 32)
    second = hist.Entry("started", now, start=now, invocation="b" * 32)
    history = hist.History().started(first).started(second)
    done = hist.Entry("failed", now, start=now, end=now, invocation="a" * 32)
    assert [e.status for e in history.finished(done).entries] == ["failed", "started"]
    assert hist.parse(hist.dump(history)).entries[1].invocation == "b" * 32
