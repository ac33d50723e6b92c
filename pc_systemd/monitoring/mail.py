"""Failure mail, as the original sent it, on both backends.

Once ``failure_threshold_for_mail`` consecutive runs of a job have failed,
every further failure is mailed from ``failmail.from_address`` to
``failmail.to_address`` with the original's subject
``Fail Mail (<host>) run-job: <reason>``. Where the original's body only
named the log file, this one carries the last lines of the failed run's
output and says how to see the rest, so the mail alone usually tells what
went wrong.

The mail goes over SMTP to ``smtp_host``:``smtp_port`` with a short
timeout: a mail server that is down must cost a log line, never the run's
history or its result (on cron hosts the runner sends it; on systemd hosts
``process-control-mail@<slug>.service``, :mod:`pc_systemd.monitoring.on_failure`).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from pc_systemd.core.safe_open import data_tail, open_file
from pc_systemd.model.config import Config
from pc_systemd.model.job import Job
from pc_systemd.systemd import journal

TAIL_LINES = 20
SMTP_TIMEOUT = 3.0  # seconds per SMTP step
JOURNAL_TIMEOUT = 1.5  # seconds journalctl may take
# Lines of the tail longer than this are cut: the mail is a pointer, not the log.
MAX_LINE = 1000
# How much of a log file's end is read to find its last lines.
TAIL_BYTES = 256 * 1024
# journal entries looked at for the tail; entries of other runs are dropped
# from them, so a few more than the lines wanted.
JOURNAL_ENTRIES = 200


class MailError(Exception):
    """The mail could not be sent; the message says why, in one line."""


@dataclass(frozen=True)
class RunOutput:
    """What the mail shows of a run's output."""

    lines: tuple[str, ...]  # its last lines, oldest first (at most TAIL_LINES)
    rest: tuple[str, ...]  # how to see all of it: one way per line
    problem: str | None = None  # why the lines could not be read, if they could not


@dataclass(frozen=True)
class FailedRun:
    reason: str  # one line, in the original's words
    consecutive_failures: int
    output: RunOutput
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    stopped: bool = False  # stop_after_failures reached: no longer scheduled


def due(job: Job, consecutive_failures: int) -> bool:
    """Whether a failure is mailed: the job has an address, and enough
    runs in a row have failed."""
    return job.failmail is not None and consecutive_failures >= job.failure_threshold_for_mail


def subject(host: str, reason: str) -> str:
    # A reason is one line, but it holds the job's name: never let it fold
    # or inject a header.
    return " ".join(f"Fail Mail ({host}) run-job: {reason}".split())


def _time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def body(job: Job, host: str, run: FailedRun) -> str:
    lines = [
        f"Job:     {job.name} ({job.slug})",
        f"Host:    {host}",
        f"Reason:  {run.reason}",
        f"Failed:  {run.consecutive_failures} run(s) in a row "
        f"(mail from {job.failure_threshold_for_mail} on)",
    ]
    if run.start is not None:
        lines.append(f"Started: {_time(run.start)}")
    if run.end is not None:
        lines.append(f"Ended:   {_time(run.end)}")
    if run.stopped:
        lines += ["", f"Stopped: after {run.consecutive_failures} consecutive failures the job "
                  "is no longer scheduled (stop_after_failures); runs by hand still work.",
                  f"         `run-job reset {job.slug}` schedules it again."]
    lines.append("")
    output = run.output
    if output.problem is not None:
        lines.append(f"Its output could not be read: {output.problem}")
    elif output.lines:
        lines.append(f"Last {len(output.lines)} line(s) of its output:")
        lines += [f"    {line}" for line in output.lines]
    else:
        lines.append("It printed nothing.")
    if output.rest:
        lines += ["", "All of its output:"]
        lines += [f"    {way}" for way in output.rest]
    return "\n".join(lines) + "\n"


def compose(job: Job, run: FailedRun, host: str | None = None) -> EmailMessage:
    assert job.failmail is not None
    host = host or socket.gethostname()
    message = EmailMessage()
    message["Subject"] = subject(host, run.reason)
    message["From"] = job.failmail.from_address
    message["To"] = job.failmail.to_address
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=host)
    message.set_content(body(job, host, run))
    return message


def send(config: Config, message: EmailMessage) -> None:
    """Hand the message to the configured SMTP server; :class:`MailError` if it fails."""
    import smtplib  # only a mail being sent pays for it (~7 ms of imports)

    where = f"{config.smtp_host}:{config.smtp_port}"
    try:
        # local_hostname given: smtplib's default (getfqdn) may wait on DNS.
        with smtplib.SMTP(config.smtp_host, config.smtp_port, socket.gethostname(),
                          timeout=SMTP_TIMEOUT) as smtp:
            refused = smtp.send_message(message)
    except (OSError, smtplib.SMTPException, UnicodeError) as err:
        raise MailError(f"{where}: {_one_line(err)}") from None
    if refused:
        raise MailError(f"{where} refused {', '.join(sorted(refused))}")


def notify(
    config: Config, job: Job, run: Callable[[], FailedRun], consecutive_failures: int,
    warn: Callable[[str], None],
) -> bool:
    """Mail a failed run if it is due; True if a mail was sent.

    ``run`` is only called (the output only read) when the mail is due.
    Problems are reported through ``warn``, one line each, never raised.
    """
    if not due(job, consecutive_failures):
        return False
    assert job.failmail is not None
    try:
        message = compose(job, run())
    except ValueError as err:  # an address email refuses as a header
        warn(f"failure mail to {job.failmail.to_address!r} not sent: {_one_line(err)}")
        return False
    try:
        send(config, message)
    except MailError as err:
        warn(f"failure mail to {job.failmail.to_address} not sent: {err}")
        return False
    return True


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if not isinstance(err, TimeoutError) else f"timed out ({text})"


def _cut(line: str) -> str:
    return line if len(line) <= MAX_LINE else line[:MAX_LINE] + " [...]"


# -- the output of a run ---------------------------------------------------------


def tail_file(path: str, count: int = TAIL_LINES, owner: int | None = None) -> list[str]:
    """The last ``count`` lines of a file, reading only its end.

    ``owner``: the uid the file must belong to (None: ours). The file lies
    in a directory the service user controls, and its lines go to an
    address a job file chooses: only a regular file of that user's own,
    opened without following a symlink or blocking (:mod:`pc_systemd.core.safe_open`),
    may be read, or the mail could carry any file its reader can read.
    """
    return tail_fd(open_file(path, os.geteuid() if owner is None else owner), count)


def tail_fd(fd: int, count: int = TAIL_LINES) -> list[str]:
    """The last ``count`` lines of an open file (closed here), reading only
    its end: the last TAIL_BYTES of its data, the holes of a sparse file
    (a job's ``truncate -s 200G`` of its log) left out."""
    try:
        start, data = data_tail(fd, os.fstat(fd).st_size, TAIL_BYTES)
    finally:
        os.close(fd)
    # a hole's edge reads as NUL bytes up to the end of a block
    lines = data.replace(b"\0", b"").decode("utf-8", "replace").splitlines()
    if start > 0 and lines:
        lines = lines[1:]  # the first one is cut
    return [_cut(line) for line in lines[-count:]]


def file_output(
    path: str | None, rest: Sequence[str] = (), owner: int | None = None
) -> RunOutput:
    """A run logged to a file (the direct runner, ``logging: file``);
    ``owner`` as for :func:`tail_file`."""
    if path is None:
        return RunOutput((), tuple(rest), "the run has no log file (no command was started)")
    ways = (path, *rest)
    try:
        return RunOutput(tuple(tail_file(path, owner=owner)), ways)
    except OSError as err:
        return RunOutput((), ways, f"{path}: {err.strerror or err}")


def journal_output(unit: str, invocation: str, start: int | None, slug: str) -> RunOutput:
    """A run logged to the journal (``logging: journal`` on systemd): the
    last lines of its output (:func:`pc_systemd.systemd.journal.output`),
    the run having started at ``start`` (microseconds; None: not known)."""
    rest = (f"journalctl --namespace={journal.NAMESPACE} _SYSTEMD_INVOCATION_ID={invocation}",
            f"run-job --logs {slug} (while it is the last run)")
    journal.sync()  # lines still in journald's buffers would be missing
    try:
        lines = [line for text in journal.output(unit, invocation, start, last=JOURNAL_ENTRIES,
                                                 timeout=JOURNAL_TIMEOUT)
                 for line in text.splitlines() or [""]]
    except journal.JournalError as err:
        return RunOutput((), rest, str(err))
    return RunOutput(tuple(_cut(line) for line in lines[-TAIL_LINES:]), rest)
