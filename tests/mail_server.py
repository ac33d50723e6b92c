"""A real SMTP server (aiosmtpd) for the direct runner's failure mail
(tests/test_mail.py, tests/test_retry_direct.py), and jobs that mail."""

from __future__ import annotations

import email
import email.policy
import io
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from pc_systemd.cron import direct
from pc_systemd.model.job import Job
from pc_systemd.model.jobset import find_job
from tests.conftest import Site

FROM = "jobs@example.org"
TO = "oncall@example.org"
HOST = socket.gethostname()


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage

    @property
    def body(self) -> str:
        part = self.message.get_body()
        assert part is not None
        content = part.get_content()
        assert isinstance(content, str)
        return content.replace("\r\n", "\n")  # as it went over the wire


class Inbox:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.received: list[Received] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(
            Received(str(envelope.mail_from), tuple(envelope.rcpt_tos), message)
        )
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


def configure(site: Site, port: int) -> None:
    # The service user is whoever runs the tests (root in CI), as in
    # test_direct_runner.py.
    site.configure_direct(
        f"""\
        smtp_host: 127.0.0.1
        smtp_port: {port}
        """
    )


@pytest.fixture
def mailing_site(site: Site, smtp: tuple[Inbox, int]) -> Site:
    configure(site, smtp[1])
    return site


def make_job(site: Site, slug: str, **keys: Any) -> Job:
    site.job(slug, yaml.safe_dump({"name": slug.capitalize(), **keys}))
    return find_job(site.config(), slug)


def run(site: Site, job: Job) -> tuple[int, list[str]]:
    out = io.StringIO()
    status = direct.run_job(site.config(), job, out=out)
    return status, out.getvalue().splitlines()


def failing(slug: str = "flaky", **keys: Any) -> dict[str, Any]:
    """Keys of a job that prints 30 lines and an error, then exits with 3."""
    return {
        "command": "/bin/sh -c 'seq 1 30; echo boom >&2; exit 3'",
        "failmail": {"from_address": FROM, "to_address": TO},
        **keys,
    }
