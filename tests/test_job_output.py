"""A job's output on the operator's terminal and from its log files, on a
cron host (the direct runner): control characters shown, not obeyed, on a
real pseudo-terminal; ``--raw`` and pipes pass them; a sparse log file's
holes are not printed, and the failure mail's tail still finds the last
lines. The same on a real systemd: tests/test_job_output_systemd.py."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pc_systemd.core import safe_open
from pc_systemd.core.terminal import JobOutput, escape
from pc_systemd.monitoring import mail
from tests.conftest import Site, within
from tests.on_a_pty import on_a_pty

# What the trial's job printed: sets the terminal's title, then its colour.
HOSTILE = "\x1b]0;TITLE\x07\x1b[31mRED"
SHOWN = "\\x1b]0;TITLE\\x07\\x1b[31mRED"
PRINTF = r"printf '\033]0;TITLE\007\033[31mRED\n'"
GIB = 1 << 30


def test_escape_shows_every_control_character_but_tab_and_newline() -> None:
    assert escape(HOSTILE) == SHOWN
    assert escape("a\tb\nc") == "a\tb\nc"
    assert escape("\r\x00\x7f\x9b é €") == "\\x0d\\x00\\x7f\\x9b é €"
    assert escape("C:\\x1b") == "C:\\x1b"  # a backslash is the job's (as journalctl)


def test_blocks_cut_in_a_character_and_bytes_that_are_not_utf8() -> None:
    out = io.BytesIO()
    shown = JobOutput(out, escape=True)
    data = "é\x1b€\n".encode() + b"\xff\xc3"
    for at in range(len(data)):  # every byte a block of its own
        shown.write(data[at : at + 1])
    shown.finish()
    assert out.getvalue() == "é\\x1b€\n\\xff\\xc3".encode()
    raw = io.BytesIO()
    JobOutput(raw, escape=False).write(data)
    assert raw.getvalue() == data
    after_a_cut = io.BytesIO()  # plain ASCII after the first byte of a character
    shown = JobOutput(after_a_cut, escape=True)
    for block in (b"ok\n", b"\xc3", b"abc\n"):
        shown.write(block)
    shown.finish()
    assert after_a_cut.getvalue() == b"ok\n\\xc3abc\n"


def run_job(site: Site, *args: str) -> list[str]:
    return [sys.executable, "-m", "pc_systemd.cli.run_job", "--config", str(site.config_file),
            *args]


@pytest.fixture
def loud(site: Site) -> Site:
    site.configure_direct()
    site.job("loud", f"name: Loud\ncommand: /bin/sh -c \"{PRINTF}\"\n")
    return site


def test_a_run_on_a_terminal_shows_the_escapes_and_raw_passes_them(loud: Site) -> None:
    code, out = on_a_pty(run_job(loud, "run", "loud"))
    assert code == 0 and f"\tINFO\t{SHOWN}\n".encode() in out, out
    assert b"\x1b" not in out and b"\x07" not in out
    code, out = on_a_pty(run_job(loud, "run", "loud", "--raw"))
    assert code == 0 and f"\tINFO\t{HOSTILE}\n".encode() in out
    code, out = on_a_pty(run_job(loud, "-j", "loud", "--raw"))  # the flag form
    assert code == 0 and f"\tINFO\t{HOSTILE}\n".encode() in out


def test_logs_on_a_terminal_show_the_escapes_and_a_pipe_gets_the_bytes(loud: Site) -> None:
    assert subprocess.run(run_job(loud, "run", "loud"), check=False).returncode == 0
    code, out = on_a_pty(run_job(loud, "logs", "loud"))
    assert code == 0 and f"\tINFO\t{SHOWN}\n".encode() in out and b"\x1b" not in out
    code, out = on_a_pty(run_job(loud, "--logs", "loud", "--raw"))
    assert code == 0 and f"\tINFO\t{HOSTILE}\n".encode() in out
    piped = subprocess.run(run_job(loud, "logs", "loud"), capture_output=True, check=False)
    assert piped.returncode == 0 and f"\tINFO\t{HOSTILE}\n".encode() in piped.stdout


def test_a_followed_run_on_a_terminal_shows_the_escapes(site: Site) -> None:
    site.configure_direct()
    site.job("slow", f"name: Slow\ncommand: /bin/sh -c \"sleep 1; {PRINTF}; sleep 1\"\n")
    runner = subprocess.Popen(run_job(site, "run", "slow"), stdout=subprocess.DEVNULL)
    try:
        logs = site.root / "log" / "slow"
        deadline = time.monotonic() + 30
        while not (logs.is_dir() and any(logs.iterdir())):
            assert time.monotonic() < deadline, "the run never started its log"
            time.sleep(0.05)
        code, out = within(60, lambda: on_a_pty(run_job(site, "logs", "slow", "-f")))
    finally:
        runner.wait(60)
    assert code == 0 and f"\tINFO\t{SHOWN}\n".encode() in out and b"\x1b" not in out


# -- sparse log files --------------------------------------------------------------


def sparse(path: Path, head: bytes, size: int, tail: bytes = b"") -> None:
    """``head``, a hole up to ``size``, then ``tail``: what a job's
    ``truncate -s`` of its log file leaves, and the lines written after."""
    with open(path, "wb") as file:
        file.write(head)
        file.truncate(size)
        file.seek(size)
        file.write(tail)
    assert os.stat(path).st_blocks * 512 < len(head) + len(tail) + (1 << 20)  # sparse


def test_a_copy_skips_the_holes_and_counts_them(tmp_path: Path) -> None:
    path = tmp_path / "log"
    sparse(path, b"first\n", 200 * GIB, b"last\n")
    out = io.BytesIO()
    fd = os.open(path, os.O_RDONLY)
    try:
        copy = within(30, lambda: safe_open.copy_to(fd, out))
    finally:
        os.close(fd)
    assert out.getvalue() == b"first\nlast\n"
    assert copy.skipped == 200 * GIB - len(b"first\n")


def test_logs_of_a_job_that_made_its_log_200_gb_print_what_it_wrote(site: Site) -> None:
    site.configure_direct()
    # The runner appends to the file: its last line lands after the hole.
    site.job("grow", 'name: Grow\ncommand: /bin/sh -c \'echo before; '
             'truncate -s 200G "$(ls -t "$0"/*.log | head -n 1)"\' ' + f"{site.root}/log/grow\n")
    assert subprocess.run(run_job(site, "run", "grow"), check=False).returncode == 0
    (log,) = (site.root / "log" / "grow").iterdir()
    assert log.stat().st_size > 200 * GIB and log.stat().st_blocks * 512 < 1 << 20
    result = within(60, lambda: subprocess.run(run_job(site, "logs", "grow"),
                                               capture_output=True, check=False))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert lines[3].endswith("\tINFO\tbefore") and lines[-1].endswith("end command output")
    assert len(result.stdout) < 4096
    said = result.stderr.decode().splitlines()
    assert said[-1].startswith(f"-- {log}: ") and "bytes not shown: holes of a sparse file" in said[-1]


def test_the_mails_tail_is_the_last_lines_before_a_trailing_hole(tmp_path: Path) -> None:
    path = tmp_path / "log"
    head = b"".join(b"line %d\n" % n for n in range(100_000))  # 600 KB: more than the tail
    sparse(path, head, 200 * GIB)
    lines = within(30, lambda: mail.tail_file(str(path), count=3))
    assert lines == ["line 99997", "line 99998", "line 99999"]
    # the runner's last line after the hole (it appends): the job's lines are still there
    sparse(path, head, 200 * GIB, b"---- end command output\n")
    lines = within(30, lambda: mail.tail_file(str(path), count=3))
    assert lines == ["line 99998", "line 99999", "---- end command output"]


def test_a_followed_file_skips_a_hole_made_while_following(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_bytes(b"one\n")
    fd = os.open(path, os.O_RDONLY)
    out = io.BytesIO()
    try:
        copy = safe_open.copy_to(fd, out)
        with open(path, "r+b") as file:  # the job, meanwhile
            file.truncate(100 * GIB)
            file.seek(100 * GIB)
            file.write(b"two\n")
        within(30, lambda: copy.to(out))
    finally:
        os.close(fd)
    assert out.getvalue() == b"one\ntwo\n" and copy.skipped == 100 * GIB - 4
