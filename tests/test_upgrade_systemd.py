"""An upgrade from the previous release of the package, on a booted
systemd 252 that ran the original: what the jobs and the administrator
have keeps, and no job runs twice or is missed across it.

The previous release is built from PREVIOUS (the commit before this
work on the life cycle), versioned just below this one; it is installed
over the original's cron file, runs an every-minute job that logs to its
own files and to the journal namespace, holds a group, and is then
upgraded with ``dpkg -i`` in the middle of a minute.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import BUILD_ENV, ROOT, hide_checkout
from tests.systemd_box import SystemdBox, require_systemd_box

pytestmark = pytest.mark.systemd

PREVIOUS = "4f991c042c80b935ada0b416cd44852ecfcf69d1"
ORIGINAL = (ROOT / "tests" / "data" / "original" / "cron.d" / "process-control").read_text()
CRON = "/etc/cron.d/process-control"
JOBS = "/var/lib/process-control"
HOLDS = "/var/lib/process-control-holds"
LOGS = "/var/log/process-control"
OLD_DEB = "/root/previous.deb"
NEW_DEB = "/root/process-control_all.deb"
TICK = ("name: Tick\ncommand: /bin/sh -c 'echo tick ran at $(date +%s)'\n"
        "schedule: '* * * * *'\nlogging: file\n")
NOISY = "name: Noisy\ncommand: /bin/sh -c 'echo noisy ran at $(date +%s)'\n"
HELD = "name: Held\ncommand: /bin/true\nschedule: '7 3 29 2 *'\ntag: batch\n"
UPGRADE_AT = 20.0  # second of the minute at which dpkg -i starts


@pytest.fixture(scope="module")
def previous(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The previous release's .deb, from a clone of the repository at PREVIOUS."""
    top = tmp_path_factory.mktemp("previous")
    src = top / "process-control"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(src)], check=True)
    subprocess.run(["git", "checkout", "--quiet", PREVIOUS], cwd=src, check=True)
    changelog = src / "debian" / "changelog"
    text = changelog.read_text()
    version = text.split("(", 1)[1].split(")", 1)[0]
    changelog.write_text(text.replace(f"({version})", f"({version}~previous)", 1))
    result = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src, env=BUILD_ENV,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (deb,) = top.glob("process-control_*~previous_all.deb")
    return deb


@dataclass(frozen=True)
class Upgraded:
    box: SystemdBox
    before: dict[str, list[str]]  # what was there just before the upgrade
    first_minute: int  # the first whole minute the tick job ran under the old release
    upgrade_minute: int  # the minute dpkg -i ran in
    output: str  # what dpkg -i printed


def listing(box: SystemdBox) -> dict[str, list[str]]:
    def files(pattern: str) -> list[str]:
        return sorted(box.run(["sh", "-c", f"ls -1d {pattern} 2>/dev/null || true"])
                      .stdout.split())

    return {
        "holds": files(f"{HOLDS}/*"),
        "run logs": files(f"{LOGS}/tick/*"),
        "journal": files("/var/log/journal/*.process-control/*.journal"),
        "cron": files(f"{CRON}*"),
    }


def version(box: SystemdBox) -> str:
    return box.run(["dpkg-query", "-W", "-f", "${Version}", "process-control"]).stdout


@pytest.fixture(scope="module")
def upgraded(built: Path, previous: Path) -> Iterator[Upgraded]:
    require_systemd_box()
    with SystemdBox() as box:
        hide_checkout(box)
        box.write_file(CRON, ORIGINAL)
        for slug, text in (("tick", TICK), ("noisy", NOISY), ("held", HELD)):
            box.write_file(f"{JOBS}/{slug}.yaml", text)
        box.write_file(OLD_DEB, previous.read_bytes())
        box.write_file(NEW_DEB, built.read_bytes())
        box.run(["dpkg", "-i", OLD_DEB], timeout=180)
        assert version(box).endswith("~previous")
        box.run(["run-job", "disable-group", "batch"])
        box.run(["run-job", "run", "noisy"], timeout=60)  # into the journal namespace
        first = (int(time.time()) // 60 + 1) * 60
        # one whole minute under the old release, then the upgrade mid-minute
        time.sleep(max(0.0, first + 60 + UPGRADE_AT - time.time()))
        box.sync_journal()
        before = listing(box)
        upgrade_minute = int(time.time()) // 60 * 60
        done = box.run(["dpkg", "-i", NEW_DEB], timeout=180)
        # the minute after the upgrade, and its run
        time.sleep(max(0.0, upgrade_minute + 60 + 5 - time.time()))
        yield Upgraded(box, before, first, upgrade_minute, done.stdout + done.stderr)


def test_the_new_release_is_installed(upgraded: Upgraded) -> None:
    assert not version(upgraded.box).endswith("~previous")
    assert "process-control: the cron file could not be moved aside" not in upgraded.output


def test_holds_are_kept_and_held_jobs_stay_stopped(upgraded: Upgraded) -> None:
    box = upgraded.box
    assert upgraded.before["holds"] == [f"{HOLDS}/group.batch"]
    assert listing(box)["holds"] == upgraded.before["holds"]
    # the upgrade's reload did not start the held job's timer again
    timer = box.show("process-control-held.timer", "ActiveState")
    assert timer == {"ActiveState": "inactive"}


def test_per_run_logs_and_the_journal_namespace_are_kept(upgraded: Upgraded) -> None:
    box = upgraded.box
    now = listing(box)
    assert upgraded.before["run logs"], upgraded.before
    assert set(upgraded.before["run logs"]) <= set(now["run logs"])
    assert upgraded.before["journal"], upgraded.before
    assert set(upgraded.before["journal"]) <= set(now["journal"])
    # the run from before the upgrade, read through the new release
    out = box.run(["run-job", "logs", "noisy"]).stdout
    assert "noisy ran at " in out, out


def test_the_migrations_result_is_kept(upgraded: Upgraded) -> None:
    box = upgraded.box
    assert upgraded.before["cron"] == [f"{CRON}.disabled"]
    assert listing(box)["cron"] == [f"{CRON}.disabled"]
    assert box.run(["cat", f"{CRON}.disabled"]).stdout == ORIGINAL


def tick_runs(box: SystemdBox) -> list[float]:
    """systemd's runs of the tick job: each run's first manager entry."""
    box.sync_journal()
    out = box.run(["journalctl", "--quiet", "--no-pager", "--output=json", "_PID=1",
                   "UNIT=process-control-tick.service"]).stdout
    first: dict[str, float] = {}
    for line in out.splitlines():
        entry = json.loads(line)
        if entry.get("INVOCATION_ID"):
            when = int(entry["__REALTIME_TIMESTAMP"]) / 1e6
            first[entry["INVOCATION_ID"]] = min(when, first.get(entry["INVOCATION_ID"], when))
    return sorted(first.values())


def test_no_run_twice_or_missed_across_the_upgrade(upgraded: Upgraded) -> None:
    box = upgraded.box
    watched = list(range(upgraded.first_minute, upgraded.upgrade_minute + 120, 60))
    runs = [int(when // 60) * 60 for when in tick_runs(box)]
    assert [runs.count(minute) for minute in watched] == [1] * len(watched), (watched, runs)
    # the job's own record, in its per-run log files
    out = box.run(["sh", "-c", f"cat {LOGS}/tick/*"]).stdout
    printed = [int(line.rsplit(" ", 1)[1]) // 60 * 60 for line in out.splitlines()
               if "tick ran at " in line]
    assert [printed.count(minute) for minute in watched] == [1] * len(watched), printed
