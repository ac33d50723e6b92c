"""A cron host's run whose log file cannot be written (the direct runner,
:mod:`pc_systemd.cron.runlog`): real runs into a 1 MiB file system mounted on
the job's log directory, and into a log directory the service user cannot
write. The job runs to its own end, never blocked by its pipes; the reason
is recorded once in the run history and shown by ``status`` (text and
``--json``), ``logs`` and the failure mail (a real SMTP server)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from pc_systemd.cli.run_job import run_job
from pc_systemd.cron import direct
from pc_systemd.cron import history as hist
from tests import user_install
from tests.conftest import Site, mailed_output
from tests.direct_runs import cron_site, history, log_lines, make_job, run  # noqa: F401
from tests.mail_server import FROM, TO, Inbox, smtp  # noqa: F401  (fixtures)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="mounting and changing user need root (CI runs as root)")

NOBODY = 65534
LINE = "the job prints this line, forty bytes.."
# About 4 MB of output (7 MB logged) for a 1 MiB file system, then a last line.
LOUD = f"/bin/sh -c 'yes \"{LINE}\" | head -n 100000; echo last-line'"
FULL = re.compile(r"cannot write (?P<path>/\S+\.log): No space left on device "
                  r"\(the output after (?P<bytes>\d+) bytes is lost\)\Z")


@contextlib.contextmanager
def small_file_system(path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs on ``path``, unmounted at the end whatever happens."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M,mode=0750", "tmpfs", str(path)],
                   check=True)
    try:
        yield path
    finally:
        done = subprocess.run(["umount", str(path)], capture_output=True, text=True)
        if done.returncode != 0:  # never leave a mount behind, even a busy one
            subprocess.run(["umount", "--lazy", str(path)], check=True)
            raise AssertionError(f"umount {path}: {done.stderr}")


def invoke(site: Site, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(run_job, ["--config", str(site.config_file), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def status_note(site: Site, slug: str) -> tuple[str, str | None]:
    """The job's lines of ``status``, and its ``note`` in ``status --json``."""
    code, text, _ = invoke(site, "status")
    assert code == 0
    code, out, _ = invoke(site, "status", "--json")
    assert code == 0
    (found,) = [j for j in json.loads(out)["jobs"] if j["slug"] == slug]
    return text, found["note"]


def test_a_full_disk_mid_run_keeps_the_job_running_and_records_why(cron_site: Site) -> None:
    # timeout: a job left blocked on its pipe would fail the test, not hang it
    job = make_job(cron_site, command=[LOUD, f"touch {cron_site.root / 'second-ran'}"], timeout=1)
    with small_file_system(cron_site.root / "log" / "job"):
        status, out = run(cron_site, job)
        # The job's own outcome (the original's logging errors never
        # changed it), its pipes drained to the end, its next command run;
        # one line, which cron mails.
        assert status == 0, out
        assert (cron_site.root / "second-ran").exists()
        (said,) = out.splitlines()
        assert said.startswith("run-job: job: ")
        problem = said.removeprefix("run-job: job: ")
        found = FULL.match(problem)
        assert found, problem
        path = Path(found["path"])
        # The file holds what was written before the disk was full, and the
        # problem says how much that is.
        assert path.parent == cron_site.root / "log" / "job"
        assert 0 < int(found["bytes"]) == path.stat().st_size <= 1 << 20
        # It ends with a whole line (a write cut short is taken back).
        assert path.read_bytes().endswith(b"\n")
        lines = log_lines(path)
        assert lines[0] == ("INFO", "===========")
        assert lines[1][1].startswith("/bin/sh -c ")
        assert lines[2] == ("INFO", "-----------")
        assert set(lines[3:]) == {("INFO", LINE)}
        assert "\tlast-line" not in path.read_text()

        # Recorded once, in the run's entry of the history.
        (entry,) = history(cron_site).entries
        assert (entry.status, entry.code, entry.reason) == ("completed", 0, None)
        assert (entry.log, entry.log_problem) == (str(path), problem)
        assert direct.job_state(cron_site.config(), "job").log_problem == problem

        text, note = status_note(cron_site, "job")
        assert note == f"the last run's log file misses output: {problem}"
        assert f"\tnote: {note}\n" in text

        # logs: the file as it is, then why it ends there.
        code, shown, said_err = invoke(cron_site, "logs", "job")
        assert code == 0
        assert shown == path.read_text(errors="replace")
        assert said_err.splitlines()[:2] == [f"-- run 1 of 1: {path}", f"-- {problem}"]

    # A later run that logs everything has no note.
    assert run(cron_site, make_job(cron_site, command="echo fine")) == (0, "")
    assert status_note(cron_site, "job")[1] is None
    code, _shown, said_err = invoke(cron_site, "logs", "job")
    assert code == 0
    (header,) = said_err.splitlines()
    assert header.startswith("-- run 1 of 1: ")


def test_a_failed_run_on_a_full_disk_mails_why_its_lines_are_not_its_last(
    cron_site: Site, smtp: tuple[Inbox, int],
) -> None:
    inbox, port = smtp
    cron_site.configure_direct(f"smtp_host: 127.0.0.1\nsmtp_port: {port}\n")
    job = make_job(cron_site, command=f"{LOUD[:-1]}; exit 3'",
                   failmail={"from_address": FROM, "to_address": TO})
    with small_file_system(cron_site.root / "log" / "job"):
        status, out = run(cron_site, job)
        assert status == 1
        reason, said = out.splitlines()
        assert reason == "Job failed with code 3"
        problem = said.removeprefix("run-job: job: ")
        assert FULL.match(problem), said
        (entry,) = history(cron_site).entries
        assert (entry.status, entry.reason, entry.log_problem) == ("failed", reason, problem)
        # the mail keeps the original's subject and reason, shows the end of
        # the file, and says why that is not the end of the run's output
        (got,) = inbox.received
        assert got.message["Subject"].endswith(f"run-job: {reason}")
        assert "\nReason:  Job failed with code 3\n" in got.body
        assert entry.log is not None
        quoted = mailed_output(got.body)
        assert quoted == Path(entry.log).read_text().splitlines()[-20:]
        after = got.body.split("\n".join(f"    {line}" for line in quoted) + "\n", 1)[1]
        assert after.startswith(f"These are not its last lines: {problem}\n")
    # status: the reason and the note
    text, note = status_note(cron_site, "job")
    assert f"failure ({reason})" in text
    assert note == f"the last run's log file misses output: {problem}"


@pytest.fixture
def shared_root() -> Iterator[Path]:
    """A directory other users can reach (pytest's tmp_path is root's alone)."""
    root = Path(tempfile.mkdtemp(prefix="pc-log-failures-", dir="/tmp"))
    try:
        root.chmod(0o755)
        yield root
    finally:
        shutil.rmtree(root)


def test_a_log_directory_the_service_user_cannot_write(
    shared_root: Path, smtp: tuple[Inbox, int],
) -> None:
    inbox, port = smtp
    user_install.installation()  # nobody runs an installation it can read
    site = Site(shared_root, shared_root / "jobs", shared_root / "process-control.yaml")
    site.jobs.mkdir(mode=0o755)
    for name in ("state", "run"):
        (shared_root / name).mkdir()
        os.chown(shared_root / name, NOBODY, NOBODY)
    # The job's log directory is root's: nobody may read it, not write it.
    logs = shared_root / "log" / "job"
    logs.mkdir(parents=True, mode=0o755)
    older = logs / "job-20250101-000000.log"
    older.write_text("2025-01-01 00:00:00,000\tINFO\tan older run\n")
    os.chown(older, NOBODY, NOBODY)
    site.configure(f"user: nobody\nbackend: direct\noutput_directory: {shared_root / 'log'}\n"
                   f"state_directory: {shared_root / 'state'}\n"
                   f"run_directory: {shared_root / 'run'}\n"
                   f"smtp_host: 127.0.0.1\nsmtp_port: {port}\n")
    site.config_file.chmod(0o644)
    make_job(site, command=f"touch {shared_root / 'ran'}",
             failmail={"from_address": FROM, "to_address": TO})
    done = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
         user_install.RUN_JOB, "--config", str(site.config_file), "--job", "job"],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        cwd="/", timeout=60,
    )
    # Not run: the job's output would go nowhere (as the systemd side's
    # file wrapper, which exits before the command).
    assert not (shared_root / "ran").exists()
    assert (done.returncode, done.stderr) == (1, "")
    (said,) = done.stdout.splitlines()
    found = re.fullmatch(r"Job failed: (cannot open its log file: (/\S+): Permission denied)",
                         said)
    assert found, said
    problem, path = found[1], Path(found[2])
    assert path.parent == logs and path.name.startswith("job-")
    entry = hist.load(str(shared_root / "state" / "job.yaml"), NOBODY).entries[-1]
    assert (entry.status, entry.reason, entry.log, entry.log_problem) == (
        "failed", said, None, problem)
    # status: the reason says it, once
    text, note = status_note(site, "job")
    assert f"failure ({said})" in text
    assert note is None
    # logs: the newest file is an older run's, and it says so
    code, shown, said_err = invoke(site, "logs", "job")
    assert (code, shown) == (0, older.read_text())
    last_run = (r"-- the last run \(started \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\): "
                + re.escape(problem))
    shown_older = f"-- run 1 of 1: {re.escape(str(older))}"
    assert re.fullmatch(f"{shown_older}\n{last_run}\n", said_err), said_err
    # and without any file
    older.unlink()
    code, shown, said_err = invoke(site, "logs", "job")
    assert (code, shown) == (1, "")
    none = f"run-job: job: no log files in {re.escape(str(logs))}"
    assert re.fullmatch(f"{last_run}\n{none}\n", said_err), said_err
    # the mail
    (got,) = inbox.received
    assert got.message["Subject"].endswith(f"run-job: {said}")
    assert ("Its output could not be read: the run has no log file (no command was started)"
            in got.body)
