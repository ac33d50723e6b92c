"""check-jobs-icinga, run as Icinga runs it: every status, exit code and the
performance data, from real job and history files."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pc_systemd.cron import history as hist
from pc_systemd.cron import lock
from tests.conftest import Site

PERFDATA = re.compile(r" \| ok=\d+ failing=\d+ running=\d+ invalid=\d+ stale=\d+\Z")
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def icinga_site(site: Site) -> Site:
    site.configure_direct()
    (site.root / "state").mkdir()
    return site


def check(site: Site, *args: str) -> tuple[int, str]:
    """Run the check as a program; its exit status and its one line."""
    done = subprocess.run(
        [sys.executable, "-m", "pc_systemd.cli.icinga", "--config", str(site.config_file), *args],
        capture_output=True, text=True, timeout=60,
        env={k: v for k, v in os.environ.items() if k != "PROCESS_CONTROL_CONFIG"},
    )
    assert done.stderr == ""
    assert done.stdout.endswith("\n") and done.stdout.count("\n") == 1, done.stdout
    return done.returncode, done.stdout[:-1]


def job(site: Site, slug: str, scheduled: bool = True, extra: str = "") -> Path:
    schedule = "schedule: '0 * * * *'\n" if scheduled else ""
    return site.job(slug, f"name: {slug}\ncommand: /bin/true\n{schedule}{extra}")


def ran(site: Site, slug: str, *statuses: str, ago: dt.timedelta = dt.timedelta(minutes=5),
        ) -> None:
    """Record finished runs (oldest first), the last one ending ``ago``."""
    path = str(site.root / "state" / f"{slug}.yaml")
    for n, status in enumerate(statuses):
        end = NOW - ago - dt.timedelta(minutes=len(statuses) - 1 - n)
        entry = hist.Entry(status, end, start=end - dt.timedelta(seconds=3), end=end, pid=n)
        hist.update(path, lambda h, e=entry: h.finished(e), print)  # type: ignore[misc]


def test_all_jobs_ok(icinga_site: Site) -> None:
    for slug in ("a", "b"):
        job(icinga_site, slug)
        ran(icinga_site, slug, "failed", "completed")
    job(icinga_site, "new")  # never ran: nothing wrong with it
    assert check(icinga_site) == (0, "JOBS OK | ok=3 failing=0 running=0 invalid=0 stale=0")


def test_no_jobs_at_all_is_ok(icinga_site: Site) -> None:
    assert check(icinga_site) == (0, "JOBS OK | ok=0 failing=0 running=0 invalid=0 stale=0")


def test_failing_jobs_are_critical(icinga_site: Site) -> None:
    for slug in ("c", "a", "b"):
        job(icinga_site, slug)
    ran(icinga_site, "a", "completed", "failed")
    ran(icinga_site, "b", "failed", "completed")
    ran(icinga_site, "c", "failed")
    assert check(icinga_site) == (
        2, "FAILING JOBS: a, c | ok=1 failing=2 running=0 invalid=0 stale=0")


def test_a_skipped_run_keeps_the_job_ok(icinga_site: Site) -> None:
    job(icinga_site, "a")
    ran(icinga_site, "a", "completed", "skipped")
    assert check(icinga_site) == (0, "JOBS OK | ok=1 failing=0 running=0 invalid=0 stale=0")


def test_invalid_job_files_and_histories_are_a_warning(icinga_site: Site) -> None:
    job(icinga_site, "good")
    icinga_site.job("broken", "name: Broken\n")  # no command
    job(icinga_site, "garbled")
    (icinga_site.root / "state" / "garbled.yaml").write_text("history: [\n")
    assert check(icinga_site) == (
        1, "WARNING: invalid: broken, garbled | ok=1 failing=0 running=0 invalid=2 stale=0")


def test_jobs_without_a_recent_success_are_stale(icinga_site: Site) -> None:
    icinga_site.configure_direct("stale_after: 1.5\n")
    hour = dt.timedelta(hours=1)
    job(icinga_site, "recent")
    ran(icinga_site, "recent", "completed", ago=hour)
    job(icinga_site, "old")
    ran(icinga_site, "old", "completed", ago=2 * hour)
    job(icinga_site, "skipping")  # only skips since an old success
    ran(icinga_site, "skipping", "completed", "skipped", "skipped", ago=2 * hour)
    job(icinga_site, "manual", scheduled=False)  # runs by hand: never stale
    ran(icinga_site, "manual", "completed", ago=100 * hour)
    job(icinga_site, "off", extra="disabled: true\n")
    ran(icinga_site, "off", "completed", ago=100 * hour)
    fresh = job(icinga_site, "deployed")  # no run yet, file just written
    old_file = job(icinga_site, "forgotten")  # no run since its file came, 2 h ago
    stamp = (NOW - 2 * hour).timestamp()
    os.utime(old_file, (stamp, stamp))
    assert fresh.stat().st_mtime > stamp
    assert check(icinga_site) == (
        1, "WARNING: stale: forgotten, old, skipping "
           "| ok=4 failing=0 running=0 invalid=0 stale=3")


def test_critical_outranks_warning_and_keeps_it(icinga_site: Site) -> None:
    icinga_site.configure_direct("stale_after: 1\n")
    job(icinga_site, "down")
    ran(icinga_site, "down", "failed", ago=dt.timedelta(hours=5))  # failing, not also stale
    job(icinga_site, "old")
    ran(icinga_site, "old", "completed", ago=dt.timedelta(hours=2))
    icinga_site.job("broken", "command: /bin/true\n")
    assert check(icinga_site) == (
        2, "FAILING JOBS: down; invalid: broken; stale: old "
           "| ok=0 failing=1 running=0 invalid=1 stale=1")


def test_running_jobs_are_counted(icinga_site: Site) -> None:
    job(icinga_site, "busy")
    ran(icinga_site, "busy", "failed")
    job(icinga_site, "idle")
    (icinga_site.root / "run").mkdir()
    with lock.acquire(lock.lock_path(str(icinga_site.root / "run"), "busy")):
        assert check(icinga_site) == (
            2, "FAILING JOBS: busy | ok=1 failing=1 running=1 invalid=0 stale=0")
    assert check(icinga_site)[1].endswith(" running=0 invalid=0 stale=0")


def test_every_line_carries_perfdata(icinga_site: Site) -> None:
    job(icinga_site, "a")
    for statuses in (("completed",), ("failed",)):
        ran(icinga_site, "a", *statuses)
        assert PERFDATA.search(check(icinga_site)[1])


def test_an_unusable_configuration_is_unknown(icinga_site: Site) -> None:
    icinga_site.config_file.write_text("no_such_key: 1\n")
    code, line = check(icinga_site)
    assert (code, line) == (3, f"UNKNOWN: {icinga_site.config_file}:1: no_such_key: "
                               "unknown configuration key")


def test_a_missing_job_directory_is_unknown(icinga_site: Site) -> None:
    icinga_site.jobs.rmdir()
    assert check(icinga_site) == (
        3, f"UNKNOWN: {icinga_site.jobs}: No such file or directory")


def test_poisoned_histories_are_invalid_never_a_crash_or_a_hang(icinga_site: Site) -> None:
    state = icinga_site.root / "state"
    secret = icinga_site.root / "secret"
    secret.write_text("history: []\nlast_completion_status: success\n")
    poisons = {
        "month13": lambda p: p.write_text(
            "history:\n- {status: failed, time: 2024-13-01 00:00:00}\n"),
        "offset": lambda p: p.write_text(
            "history:\n- {status: failed, time: '2024-01-01 00:00:00+99:00'}\n"),
        "year0": lambda p: p.write_text(
            "history:\n- {status: failed, time: 0000-01-01 00:00:00}\n"),
        "bigpid": lambda p: p.write_text(
            "history:\n- {status: failed, time: '2024-01-01', pid: " + "9" * 5000 + "}\n"),
        "binary": lambda p: p.write_bytes(b"\xff\xfe\x00history"),
        "link": lambda p: p.symlink_to(secret),
        "fifo": os.mkfifo,
        "huge": lambda p: (p.touch(), os.truncate(p, 1 << 30)),  # sparse: costs nothing
    }
    for slug, poison in poisons.items():
        job(icinga_site, slug)
        poison(state / f"{slug}.yaml")
    job(icinga_site, "fine")
    ran(icinga_site, "fine", "completed")
    invalid = ", ".join(sorted(poisons))
    assert check(icinga_site) == (
        1, f"WARNING: invalid: {invalid} | ok=1 failing=0 running=0 invalid=8 stale=0")


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_a_history_of_another_user_is_not_believed(icinga_site: Site) -> None:
    job(icinga_site, "a")
    ran(icinga_site, "a", "failed")
    os.chown(icinga_site.root / "state" / "a.yaml", 65534, 65534)
    assert check(icinga_site) == (
        1, "WARNING: invalid: a | ok=0 failing=0 running=0 invalid=1 stale=0")
