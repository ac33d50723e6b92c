"""A job's output on a real systemd (in a container): control characters
shown, not obeyed, on a real pseudo-terminal through ``run``, ``logs`` and
``logs -f``, passed with ``--raw`` and to a pipe; a ``logging: file`` job
that makes its file 200 GB with ``truncate`` (4 KB on disk) does not make
``logs`` print 200 GB. The cron host's side: tests/test_job_output.py."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.systemd_box import SystemdBox, checkout_box
from tests.user_install import RUN_JOB

pytestmark = pytest.mark.systemd

ON_A_PTY = [sys.executable, str(Path(__file__).with_name("on_a_pty.py"))]
JOBS = "/var/lib/process-control"
USER = "pcuser"
CONFIG = f"user: {USER}\njob_directory: {JOBS}\noutput_directory: /var/log/process-control\n"
HOSTILE = "\x1b]0;TITLE\x07\x1b[31mRED"
SHOWN = "\\x1b]0;TITLE\\x07\\x1b[31mRED"
PRINTF = r"printf '\033]0;TITLE\007\033[31mRED\n'"

JOB_FILES = {
    # a moment alive after printing: journald tags the line with its run
    "loud": f"name: Loud\ncommand: /bin/sh -c \"{PRINTF}; sleep 0.2\"\n",
    "later": f"name: Later\ncommand: /bin/sh -c \"sleep 2; {PRINTF}; sleep 1\"\n",
    "grow": textwrap.dedent("""\
        name: Grow
        logging: file
        command: /bin/sh -c 'echo before; truncate -s 200G /dev/stdout; echo after'
        """),
}


@pytest.fixture(scope="module")
def box() -> Iterator[SystemdBox]:
    with checkout_box() as booted:
        booted.run(["useradd", "--create-home", USER])
        booted.write_file("/etc/process-control.yaml", CONFIG)
        for slug, text in JOB_FILES.items():
            booted.write_file(f"{JOBS}/{slug}.yaml", text)
        booted.run([RUN_JOB, "install-generator"])
        yield booted


def on_a_pty(box: SystemdBox, *args: str) -> tuple[int, str]:
    result = box.run([*ON_A_PTY, RUN_JOB, *args], check=False, timeout=120)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout


def test_run_and_logs_on_a_terminal_show_the_escapes(box: SystemdBox) -> None:
    code, out = on_a_pty(box, "run", "loud")
    assert (code, out) == (0, f"{SHOWN}\n")
    assert on_a_pty(box, "logs", "loud") == (0, f"{SHOWN}\n")
    assert on_a_pty(box, "--logs", "loud") == (0, f"{SHOWN}\n")


def test_raw_and_a_pipe_get_the_bytes_the_job_wrote(box: SystemdBox) -> None:
    assert on_a_pty(box, "run", "loud", "--raw") == (0, f"{HOSTILE}\n")
    assert on_a_pty(box, "logs", "loud", "--raw") == (0, f"{HOSTILE}\n")
    assert on_a_pty(box, "--logs", "loud", "--raw") == (0, f"{HOSTILE}\n")
    piped = box.run([RUN_JOB, "logs", "loud"])
    assert piped.stdout == f"{HOSTILE}\n"


def test_a_followed_run_on_a_terminal_shows_the_escapes(box: SystemdBox) -> None:
    unit = "process-control-later.service"
    box.systemctl("start", "--no-block", unit)
    box.wait_until(lambda: box.show(unit, "MainPID")["MainPID"] != "0", what="later to run")
    assert on_a_pty(box, "logs", "later", "-f") == (0, f"{SHOWN}\n")


def test_logs_of_a_job_that_made_its_file_200_gb(box: SystemdBox) -> None:
    code, out, err = (lambda r: (r.returncode, r.stdout, r.stderr))(
        box.run([RUN_JOB, "run", "grow"], check=False))
    assert (code, out) == (0, ""), err
    path = err.split("output in ", 1)[1].strip()
    size, blocks = box.run(["stat", "-c", "%s %b", path]).stdout.split()
    assert int(size) > 200 << 30 and int(blocks) * 512 < 1 << 20
    result = box.run([RUN_JOB, "logs", "grow"], check=False, timeout=60)
    assert (result.returncode, result.stdout) == (0, "before\nafter\n"), result.stderr
    said = result.stderr.splitlines()
    assert said[0] == f"-- run 1 of 1: {path}"
    assert said[1].startswith(f"-- {path}: ") and said[1].endswith(
        " bytes not shown: holes of a sparse file (nothing was written there; "
        "they read as NUL bytes)")
    assert len(said) == 2
