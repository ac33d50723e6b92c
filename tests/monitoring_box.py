"""A booted systemd for knowing when jobs fail (tests/test_monitoring_systemd.py,
tests/test_retry_systemd.py): the constants of its set-up, the real SMTP
server inside it, the mails it received, and the metrics and status of runs."""

from __future__ import annotations

import email
import email.policy
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.systemd_box import SystemdBox
from tests.user_install import PYTHON, RUN_JOB

# Our code runs from the world-readable installation (the mail and metrics
# units run it as their own users); the SMTP server from the test virtualenv.
SMTP_PYTHON = str(Path(sys.prefix) / "bin" / "python")
JOBS = "/var/lib/process-control"
METRICS_DIR = "/var/lib/node-exporter"
METRICS = f"{METRICS_DIR}/process-control.prom"
MAILDIR = "/root/maildir"
SMTP_PORT = 8025
SMTP_UNIT = "pc-test-smtp.service"
USER = "pcuser"
MONITOR = "process-control-monitor"
FROM = "jobs@example.org"
TO = "oncall@example.org"
FAILMAIL = f"failmail: {{from_address: {FROM}, to_address: {TO}}}\n"


def start_smtp(box: SystemdBox) -> None:
    # A stopped --collect unit is unloaded a moment later; systemd-run refuses
    # the name until then ("already loaded"), which made this test flaky.
    box.systemctl("reset-failed", SMTP_UNIT, check=False)
    box.wait_until(lambda: box.show(SMTP_UNIT, "LoadState")["LoadState"] == "not-found",
                   timeout=20, what="the stopped SMTP unit unloaded")
    box.run(["systemd-run", f"--unit={SMTP_UNIT}", "--collect", SMTP_PYTHON, "-m", "aiosmtpd",
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


def unit(slug: str) -> str:
    return f"process-control-{slug}.service"


def mail_unit(slug: str) -> str:
    return f"process-control-mail@{slug}.service"


def run(box: SystemdBox, slug: str) -> int:
    """Start the job's unit and wait for it, and for its failure mail unit
    (which OnFailure= starts once the run has failed) to have run."""
    before = len(box.invocations(mail_unit(slug)))
    code = box.systemctl("start", unit(slug), check=False).returncode
    if code != 0:
        box.wait_until(lambda: mail_done(box, slug, before), timeout=30,
                       what=f"{mail_unit(slug)} ran")
    return code


def mail_done(box: SystemdBox, slug: str, before: int) -> bool:
    active = box.show(mail_unit(slug), "ActiveState")["ActiveState"]
    return active in ("inactive", "failed") and len(box.invocations(mail_unit(slug))) > before


def status(box: SystemdBox, slug: str) -> dict[str, Any]:
    done = box.run([RUN_JOB, "--status", "--json"])
    (job,) = [j for j in json.loads(done.stdout)["jobs"] if j["slug"] == slug]
    assert isinstance(job, dict)
    return job


def metrics(box: SystemdBox) -> dict[str, dict[str, float]]:
    box.sync_journal()
    box.systemctl("start", "process-control-metrics.service")
    values: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(box.run(["cat", METRICS]).stdout):
        for sample in family.samples:
            values.setdefault(sample.name, {})[sample.labels["job"]] = sample.value
    return values


def job_metrics(box: SystemdBox, slug: str) -> dict[str, float]:
    prefix = "process_control_"
    return {name[len(prefix):]: by_job[slug]
            for name, by_job in metrics(box).items() if slug in by_job}


def mail_lines(box: SystemdBox, slug: str) -> list[str]:
    """What the failure-mail unit logged about the job."""
    box.run(["journalctl", "--sync"])
    out = box.run(["journalctl", "-u", mail_unit(slug), "-o", "cat", "--no-pager"]).stdout
    return [line for line in out.splitlines() if line.startswith("process-control mail:")]


def hostname(box: SystemdBox) -> str:
    return box.run(["hostname"]).stdout.strip()


def set_up(box: SystemdBox, config: str, jobs: Mapping[str, str],
           prepare: Sequence[Callable[[SystemdBox], None]] = ()) -> None:
    """The service user, process-control-monitor (as the package makes it),
    the metrics directory, then ``prepare``'s steps, the configuration and
    the job files, the SMTP server, and the generator installed."""
    box.run(["useradd", "--create-home", USER])
    box.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
             MONITOR])
    box.run(["install", "-d", "-o", MONITOR, "-m", "0755", METRICS_DIR])
    for step in prepare:
        step(box)
    box.write_file("/etc/process-control.yaml", config)
    for slug, text in jobs.items():
        box.write_file(f"{JOBS}/{slug}.yaml", text)
    start_smtp(box)
    box.run([RUN_JOB, "--install-generator"])
