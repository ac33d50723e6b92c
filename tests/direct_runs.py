"""Helpers of the direct runner's tests (tests/test_direct_runner.py,
tests/test_retry_direct.py): a cron host's site, runs with real processes,
their histories and log lines."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pc_systemd.cron import direct
from pc_systemd.cron import history as hist
from pc_systemd.model.job import Job
from pc_systemd.model.jobset import find_job
from tests.conftest import Site

LINE = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\t(INFO|ERROR)\t(.*)\Z")
NAME = re.compile(r"(?P<slug>.+)-\d{8}-\d{6}\.log\Z")


@pytest.fixture
def cron_site(site: Site) -> Iterator[Site]:
    site.configure_direct()
    yield site
    # A failed test must not leave its sleeps behind: they write their
    # PIDs to *.pid files.
    for pidfile in site.root.glob("*.pid"):
        with contextlib.suppress(ValueError, OSError):
            pid = int(pidfile.read_text())
            if alive(pid) and Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"sleep\0"):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def start_runner(cron_site: Site) -> Iterator[Callable[[], subprocess.Popen[str]]]:
    """Start run-job as cron does, in a process of its own (killed at the end if still there)."""
    started: list[subprocess.Popen[str]] = []

    def start() -> subprocess.Popen[str]:
        runner = subprocess.Popen(
            [sys.executable, "-m", "pc_systemd.cli.run_job", "--config", str(cron_site.config_file),
             "--job", "job"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(runner)
        return runner

    yield start
    for runner in started:
        if runner.poll() is None:
            runner.kill()
        runner.communicate()


def make_job(site: Site, slug: str = "job", **keys: Any) -> Job:
    site.job(slug, yaml.safe_dump({"name": slug.capitalize(), **keys}))
    return find_job(site.config(), slug)


def run(site: Site, job: Job, **options: Any) -> tuple[int, str]:
    out = io.StringIO()
    status = direct.run_job(site.config(), job, out=out, **options)
    return status, out.getvalue()


def history(site: Site, slug: str = "job") -> hist.History:
    return hist.load(str(site.root / "state" / f"{slug}.yaml"))


def log_lines(path: str | Path) -> list[tuple[str, str]]:
    """(level, text) of each line, checking every line's shape on the way."""
    result = []
    for raw in Path(path).read_text(encoding="utf-8").split("\n")[:-1]:
        found = LINE.match(raw)
        assert found, f"not a log line: {raw!r}"
        stamp = dt.datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f")
        assert abs(stamp - dt.datetime.now()) < dt.timedelta(minutes=5)  # local time
        result.append((found.group(2), found.group(3)))
    return result


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def group_alive(pgid: int) -> list[int]:
    """Live processes of a process group, found independently of the runner's own scan."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except (FileNotFoundError, ProcessLookupError):
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def wait_for(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"{check} not true within {timeout} s"
        time.sleep(0.02)
    return value


def read_pid(path: Path) -> int:
    return int(wait_for(lambda: path.exists() and path.read_text().strip()))


# -- a run -----------------------------------------------------------------------
