"""The global configuration's ``logging`` key (the original's
``logging.config.dictConfig`` mapping) gets the direct runner's own
messages, as the original's did: the configurations below are in the
original's format, its example's syslog handler included."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from pc_systemd.cron import direct, lock
from pc_systemd.model.jobset import find_job
from tests.conftest import Site

# The original's example, with the syslog socket moved into the test's directory.
ORIGINAL_LOGGING = """\
# Python logging config for process-control's own messages.
logging:
    version: 1
    formatters:
        runjob:
            format: 'run-job[%(process)d]: %(message)s'
    handlers:
        syslog:
            address: {address}
            class: logging.handlers.SysLogHandler
            level: DEBUG
            facility: daemon
            formatter: runjob
    loggers:
        process-control:
            handlers:
                - syslog
            level: DEBUG
    disable_existing_loggers: false
"""

JOB = """\
name: Audit parse
description: Parses the audit files
command:
    - /bin/true
    - /bin/sh -c "exit 3"
timeout: 10
"""

DAEMON_INFO, DAEMON_WARNING, DAEMON_ERR = 3 * 8 + 6, 3 * 8 + 4, 3 * 8 + 3


@pytest.fixture(autouse=True)
def own_logger_restored() -> Iterator[None]:
    """dictConfig changes the process's logging: undo it after each test."""
    raise_exceptions = logging.raiseExceptions
    yield
    logger = logging.getLogger(direct.OWN_LOGGER)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(logging.NOTSET)
    logging.raiseExceptions = raise_exceptions


@pytest.fixture
def syslog(site: Site) -> Iterator[socket.socket]:
    """A syslog socket of our own, as /dev/log is."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(site.root / "log.sock"))
    sock.setblocking(False)
    yield sock
    sock.close()


def received(sock: socket.socket) -> list[tuple[int, str]]:
    out = []
    with contextlib.suppress(BlockingIOError):
        while True:
            data = sock.recv(65536).decode().rstrip("\0")
            priority, _, message = data[1:].partition(">")
            out.append((int(priority), message))
    return out


def run(site: Site, slug: str) -> tuple[int, str]:
    out = io.StringIO()
    code = direct.run_job(site.config(), find_job(site.config(), slug), out=out)
    return code, out.getvalue()


def test_the_original_s_syslog_configuration_gets_the_runner_s_messages(
    site: Site, syslog: socket.socket
) -> None:
    site.configure_direct(ORIGINAL_LOGGING.format(address=site.root / "log.sock"))
    site.job("audit_parse", JOB)
    site.job("ok", "name: Fine\ncommand: /bin/true\n")
    code, printed = run(site, "audit_parse")
    assert (code, printed) == (1, "Audit parse failed with code 3\n")  # printed as before
    me = f"run-job[{os.getpid()}]: "
    messages = received(syslog)
    log = next(m for _, m in messages if m.startswith(me + "Logging to "))
    assert messages == [
        (DAEMON_INFO, me + "Running job Audit parse (audit_parse)"),
        (DAEMON_INFO, log),  # one log file per run, not per command
        (DAEMON_INFO, me + "Running command: /bin/true"),
        (DAEMON_INFO, me + 'Running command: /bin/sh -c "exit 3"'),
        (DAEMON_ERR, me + "Audit parse failed with code 3"),
    ]
    assert Path(log.removeprefix(me + "Logging to ")).parent == site.root / "log" / "audit_parse"
    assert run(site, "ok") == (0, "")
    assert [m.removeprefix(me) for _, m in received(syslog)][-1] == "Successfully completed ok."


def test_a_timeout_is_a_warning_then_the_reason(site: Site, syslog: socket.socket) -> None:
    site.configure_direct(ORIGINAL_LOGGING.format(address=site.root / "log.sock"))
    site.job("slow", "name: Slow\ncommand: sleep 30\ntimeout: 0.005\n")
    code, printed = run(site, "slow")
    assert (code, printed) == (1, "Slow timed out after 0.005 minutes\n")
    levels = [(priority, message.split(": ", 1)[1]) for priority, message in received(syslog)]
    assert levels[-2][0] == DAEMON_WARNING and "due to timeout" in levels[-2][1]
    assert levels[-1] == (DAEMON_ERR, "Slow timed out after 0.005 minutes")


def test_a_file_handler_and_a_syslog_that_is_down(site: Site) -> None:
    # No one listens on the socket: the messages are lost, without a traceback.
    site.configure_direct(
        ORIGINAL_LOGGING.format(address=site.root / "nobody.sock")
        .replace("                - syslog\n", "                - syslog\n                - file\n")
        .replace("    loggers:\n", f"""\
        file:
            class: logging.FileHandler
            filename: {site.root / 'own.log'}
            formatter: runjob
    loggers:
""")
    )
    site.job("ok", "name: Fine\ncommand: /bin/true\n")
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        assert run(site, "ok") == (0, "")
    assert stderr.getvalue() == ""
    lines = (site.root / "own.log").read_text().splitlines()
    assert lines[0] == f"run-job[{os.getpid()}]: Running job Fine (ok)"
    assert lines[-1] == f"run-job[{os.getpid()}]: Successfully completed ok."


def test_without_the_key_nothing_is_configured(site: Site) -> None:
    site.configure_direct()
    site.job("ok", "name: Fine\ncommand: /bin/true\n")
    assert run(site, "ok") == (0, "")
    assert logging.getLogger(direct.OWN_LOGGER).handlers == []


def test_a_mapping_that_cannot_be_applied_is_one_line_and_the_job_runs(site: Site) -> None:
    site.configure_direct("""\
        logging:
            version: 1
            handlers:
                gone:
                    class: logging.handlers.NoSuchHandler
            loggers:
                process-control:
                    handlers: [gone]
        """)
    site.job("ok", "name: Fine\ncommand: /bin/true\n")
    code, printed = run(site, "ok")
    assert code == 0
    (line,) = printed.splitlines()
    assert line.startswith(f"run-job: {site.config_file}:")
    assert ": logging: cannot be applied: Unable to configure handler 'gone'" in line
    assert "Traceback" not in printed


def test_a_skipped_run_is_an_info_line(site: Site, syslog: socket.socket) -> None:
    site.configure_direct(ORIGINAL_LOGGING.format(address=site.root / "log.sock"))
    site.job("overtime", "name: Long\ncommand: /bin/true\nallow_overtime: true\n")
    (site.root / "run").mkdir()
    with lock.acquire(str(site.root / "run" / "overtime.lock")):
        assert run(site, "overtime") == (0, "")
    (message,) = received(syslog)
    assert message == (DAEMON_INFO, f"run-job[{os.getpid()}]: Long skipped: the previous run "
                                    f"(pid {os.getpid()}) is still running")
