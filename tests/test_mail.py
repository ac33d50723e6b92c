"""Failure mail from the direct runner (cron hosts), received by a real SMTP
server (aiosmtpd) started by the test; the systemd side is in
test_record_systemd.py."""

from __future__ import annotations

import datetime as dt
import os
from email.message import EmailMessage
from pathlib import Path

import pytest
import yaml

from pc_systemd.cron import history as hist
from pc_systemd.cron import lock
from pc_systemd.model.config import builtin
from pc_systemd.model.jobset import find_job
from pc_systemd.monitoring import mail
from tests.conftest import Site, mailed_output
from tests.mail_server import (  # noqa: F401  (fixtures)
    FROM,
    HOST,
    TO,
    Inbox,
    Received,
    configure,
    failing,
    free_port,
    mailing_site,
    make_job,
    run,
    smtp,
)


def test_no_mail_before_the_threshold_then_one_per_failure(
    mailing_site: Site, smtp: tuple[Inbox, int]
) -> None:
    inbox, _port = smtp
    job = make_job(mailing_site, "flaky", **failing(failure_threshold_for_mail=2))
    assert run(mailing_site, job) == (1, ["Flaky failed with code 3"])
    assert inbox.received == []  # one failure: below the threshold
    assert run(mailing_site, job)[0] == 1
    (got,) = inbox.received
    assert got.mail_from == FROM
    assert got.rcpt_tos == (TO,)
    assert got.message["Subject"] == f"Fail Mail ({HOST}) run-job: Flaky failed with code 3"
    assert (got.message["From"], got.message["To"]) == (FROM, TO)
    assert got.body.splitlines()[:4] == [
        "Job:     Flaky (flaky)",
        f"Host:    {HOST}",
        "Reason:  Flaky failed with code 3",
        "Failed:  2 run(s) in a row (mail from 2 on)",
    ]
    # The end of the run's own log file, and where the rest is.
    log = hist.load(str(mailing_site.root / "state" / "flaky.yaml")).entries[-1].log
    assert log is not None
    assert mailed_output(got.body) == Path(log).read_text().splitlines()[-20:]
    assert mailed_output(got.body)[-2].endswith("\tERROR\tboom")
    assert got.body.endswith(f"All of its output:\n    {log}\n")
    # Every further failure mails too; a success ends the streak.
    run(mailing_site, job)
    assert len(inbox.received) == 2
    assert "Failed:  3 run(s) in a row" in inbox.received[1].body
    mailing_site.job("flaky", yaml.safe_dump({"name": "Flaky", **failing(
        failure_threshold_for_mail=2, command="/bin/true")}))
    assert run(mailing_site, find_job(mailing_site.config(), "flaky")) == (0, [])
    assert len(inbox.received) == 2


def test_a_timeout_is_mailed_in_the_originals_words(
    mailing_site: Site, smtp: tuple[Inbox, int]
) -> None:
    inbox, _port = smtp
    job = make_job(mailing_site, "slow", **failing(
        command="/bin/sh -c 'echo working; exec sleep 30'", timeout=0.01))
    assert run(mailing_site, job) == (1, ["Slow timed out after 0.01 minutes"])
    (got,) = inbox.received
    assert got.message["Subject"] == f"Fail Mail ({HOST}) run-job: Slow timed out after 0.01 minutes"
    assert any(line.endswith("\tINFO\tworking") for line in mailed_output(got.body))


def test_a_run_that_could_not_start_is_mailed_without_output(
    mailing_site: Site, smtp: tuple[Inbox, int]
) -> None:
    inbox, _port = smtp
    job = make_job(mailing_site, "busy", **failing())
    (mailing_site.root / "run").mkdir()
    with lock.acquire(lock.lock_path(str(mailing_site.root / "run"), "busy")):
        status, out = run(mailing_site, job)
    assert (status, out) == (1, [f"Busy not started: the previous run (pid {os.getpid()}) "
                                 "is still running"])
    (got,) = inbox.received
    assert got.message["Subject"].endswith(f"run-job: {out[0]}")
    assert ("Its output could not be read: the run has no log file (no command was started)"
            in got.body)


def test_a_job_without_failmail_sends_nothing(
    mailing_site: Site, smtp: tuple[Inbox, int]
) -> None:
    inbox, _port = smtp
    job = make_job(mailing_site, "quiet", command="/bin/false")
    assert run(mailing_site, job) == (1, ["Quiet failed with code 1"])
    assert inbox.received == []


def test_a_mail_server_that_is_down_costs_one_line(site: Site) -> None:
    port = free_port()  # nothing listens there
    configure(site, port)
    job = make_job(site, "flaky", **failing())
    status, out = run(site, job)
    assert status == 1  # what the run's failure gives anyway
    assert out[0] == "Flaky failed with code 3"
    assert len(out) == 2
    assert out[1].startswith(f"run-job: failure mail to {TO} not sent: 127.0.0.1:{port}: ")
    assert "refused" in out[1].lower()
    entry = hist.load(str(site.root / "state" / "flaky.yaml")).entries[-1]
    assert (entry.status, entry.code, entry.reason) == ("failed", 3, "Flaky failed with code 3")


def test_a_successful_job_never_talks_to_the_mail_server(site: Site) -> None:
    configure(site, free_port())
    job = make_job(site, "fine", **failing(command="/bin/true"))
    assert run(site, job) == (0, [])


# -- the parts -------------------------------------------------------------------


def test_the_threshold_counts_consecutive_failures(site: Site) -> None:
    job = make_job(site, "flaky", **failing(failure_threshold_for_mail=3))
    assert [mail.due(job, n) for n in range(5)] == [False, False, False, True, True]
    no_address = make_job(site, "quiet", command="/bin/false")
    assert not mail.due(no_address, 10)


def test_the_subject_is_one_line_whatever_the_name() -> None:
    assert mail.subject("h", "A\nB\r\n failed with code 1") == \
        "Fail Mail (h) run-job: A B failed with code 1"


def test_tail_reads_only_the_end_of_a_big_file(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    lines = [f"{n} " + "x" * (n % 3000) for n in range(20000)]
    path.write_text("\n".join(lines) + "\n")
    got = mail.tail_file(str(path))
    assert len(got) == 20
    expected = [line if len(line) <= mail.MAX_LINE else line[:mail.MAX_LINE] + " [...]"
                for line in lines[-20:]]
    assert got == expected


def test_the_body_of_a_mail(site: Site) -> None:
    job = make_job(site, "flaky", **failing())
    start = dt.datetime(2024, 5, 1, 3, 0, 0, tzinfo=dt.UTC)
    run_ = mail.FailedRun("Flaky failed with code 3", 1,
                          mail.RunOutput(("a", "b"), ("journalctl _SYSTEMD_INVOCATION_ID=x",)),
                          start, start + dt.timedelta(seconds=61))
    message = mail.compose(job, run_, host="box")
    assert message["Subject"] == "Fail Mail (box) run-job: Flaky failed with code 3"
    assert message.get_content() == (
        "Job:     Flaky (flaky)\n"
        "Host:    box\n"
        "Reason:  Flaky failed with code 3\n"
        "Failed:  1 run(s) in a row (mail from 1 on)\n"
        "Started: 2024-05-01 03:00:00 UTC\n"
        "Ended:   2024-05-01 03:01:01 UTC\n"
        "\n"
        "Last 2 line(s) of its output:\n"
        "    a\n"
        "    b\n"
        "\n"
        "All of its output:\n"
        "    journalctl _SYSTEMD_INVOCATION_ID=x\n"
    )


def test_send_reports_an_unknown_host_in_one_line() -> None:
    config = builtin(smtp_host="no-such-host.invalid", smtp_port=25)
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = FROM, TO, "x"
    with pytest.raises(mail.MailError) as caught:
        mail.send(config, message)
    assert str(caught.value).startswith("no-such-host.invalid:25: ")
    assert "\n" not in str(caught.value)


def test_the_tail_refuses_links_and_files_of_others(tmp_path: Path) -> None:
    # The failure mail reads a file where the service user writes, and mails
    # it where a job file says: only the service user's own files qualify.
    secret = tmp_path / "secret"
    secret.write_text("root only\n")
    link = tmp_path / "job-20240101-000000.log"
    link.symlink_to(secret)
    assert mail.file_output(str(link)).problem is not None
    own = tmp_path / "own.log"
    own.write_text("a\nb\n")
    uid = os.stat(own).st_uid
    assert mail.file_output(str(own), owner=uid).lines == ("a", "b")
    refused = mail.file_output(str(own), owner=uid + 1)
    assert refused.lines == ()
    assert refused.problem == f"{own}: owned by uid {uid}, not by uid {uid + 1}"
