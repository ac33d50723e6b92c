"""The direct runner (cron hosts), with real processes: what a run does,
what it leaves behind, and what it records."""

from __future__ import annotations

import datetime as dt
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pc_systemd.cron import direct, lock
from pc_systemd.model.config import Config
from pc_systemd.model.job import Job
from tests.conftest import Site, within
from tests.direct_runs import (  # noqa: F401  (fixtures)
    LINE,
    NAME,
    alive,
    cron_site,
    group_alive,
    history,
    log_lines,
    make_job,
    read_pid,
    run,
    start_runner,
    wait_for,
)


def test_a_successful_run_prints_nothing_and_records_completed(cron_site: Site) -> None:
    job = make_job(cron_site, command="true")
    assert run(cron_site, job) == (0, "")
    h = history(cron_site)
    (entry,) = h.entries
    assert entry.status == "completed" and entry.code == 0 and entry.pid == os.getpid()
    assert entry.reason is None and entry.start is not None and entry.end is not None
    assert h.last_completion_status == "success" and h.consecutive_failures == 0
    assert lock.holder(str(cron_site.root / "run" / "job.lock")) is None


def test_the_log_file_is_in_the_originals_place_and_format(cron_site: Site) -> None:
    # The pauses order the two streams' lines; within one stream order is kept anyway.
    script = (
        "echo out1; sleep 0.05; echo err1 >&2; sleep 0.05; "
        "printf 'caf\\303\\251 \\377\\nno newline'"
    )
    job = make_job(cron_site, command=[f"sh -c {script!r}", "echo second"])
    before = time.time()
    assert run(cron_site, job) == (0, "")
    (log,) = (cron_site.root / "log" / "job").iterdir()
    found = NAME.match(log.name)
    assert found and found.group("slug") == "job"
    stamp = dt.datetime.strptime(log.name, "job-%Y%m%d-%H%M%S.log")
    assert abs(stamp.timestamp() - before) < 2  # named for the run's start, local time
    lines = log_lines(log)
    first_pid = re.fullmatch(r"sh -c .* \((\d+)\)", lines[1][1])
    assert first_pid, lines[1]
    assert lines == [
        ("INFO", "==========="),
        ("INFO", f"sh -c {script!r} ({first_pid.group(1)})"),
        ("INFO", "-----------"),
        ("INFO", "out1"),
        ("ERROR", "err1"),
        ("INFO", "caf\u00e9 \ufffd"),  # invalid UTF-8 replaced, the file stays readable
        ("INFO", "no newline"),
        ("INFO", "----------- end command output"),
        ("INFO", "==========="),
        ("INFO", lines[9][1]),
        ("INFO", "-----------"),
        ("INFO", "second"),
        ("INFO", "----------- end command output"),
    ]
    assert re.fullmatch(r"echo second \(\d+\)", lines[9][1])
    assert history(cron_site).entries[0].log == str(log)
    assert direct.last_log(cron_site.config(), job) == str(log)


def test_a_command_list_stops_at_the_first_failure(cron_site: Site) -> None:
    marks = cron_site.root
    job = make_job(
        cron_site,
        command=[f"touch {marks / 'first'}", "sh -c 'exit 3'", f"touch {marks / 'third'}"],
    )
    assert run(cron_site, job) == (1, "Job failed with code 3\n")
    assert (marks / "first").exists()
    assert not (marks / "third").exists()
    (entry,) = history(cron_site).entries
    assert (entry.status, entry.code, entry.reason) == ("failed", 3, "Job failed with code 3")
    assert history(cron_site).last_completion_status == "failure"


def test_a_missing_program_fails_with_code_127(cron_site: Site) -> None:
    job = make_job(cron_site, command="/nonexistent/program --flag")
    status, out = run(cron_site, job)
    assert (status, out) == (1, "Job failed with code 127\n")
    lines = log_lines(direct.last_log(cron_site.config(), job) or "")
    assert ("ERROR", "cannot run /nonexistent/program: No such file or directory") in lines


def test_the_environment_is_added_to_the_inherited_one(
    cron_site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PC_INHERITED", "from-cron")
    job = make_job(
        cron_site,
        command="""sh -c 'echo "$PC_ADDED $PC_NUMBER $PC_INHERITED"'""",
        environment={"PC_ADDED": True, "PC_NUMBER": 123},
    )
    assert run(cron_site, job) == (0, "")
    lines = log_lines(direct.last_log(cron_site.config(), job) or "")
    assert ("INFO", "True 123 from-cron") in lines


def test_slow_start_runs_the_slow_start_command(cron_site: Site) -> None:
    job = make_job(cron_site, command="echo normal", slow_start_command="echo slow")
    assert run(cron_site, job, slow_start=True) == (0, "")
    lines = log_lines(direct.last_log(cron_site.config(), job) or "")
    assert ("INFO", "slow") in lines and ("INFO", "normal") not in lines


def test_slow_start_without_a_slow_start_command_is_refused(cron_site: Site) -> None:
    job = make_job(cron_site, command="echo normal")
    assert run(cron_site, job, slow_start=True) == (
        2, "run-job: job: the job has no slow_start_command\n"
    )
    assert not (cron_site.root / "state" / "job.yaml").exists()


@pytest.mark.parametrize("user", ["nobody", "65534", "no-such-user-here"])
def test_only_the_service_user_may_run_jobs(site: Site, user: str) -> None:
    site.configure(f"user: {user}\nstate_directory: {site.root / 'state'}\n"
                   f"run_directory: {site.root / 'run'}\n")
    job = make_job(site, command=f"touch {site.root / 'ran'}")
    status, out = run(site, job)
    assert status == 2
    assert out.startswith("run-job: ") and out.count("\n") == 1
    assert ("jobs run as user" in out) != ("does not exist" in out)
    if "jobs run as user" in out:  # and how a developer gets to be that user
        assert f"use `sudo -u {user} run-job ...` (members of group process-control-dev" in out
    assert not (site.root / "ran").exists()
    assert not (site.root / "state").exists() and not (site.root / "run").exists()


def test_commands_start_in_the_users_home_not_where_run_job_was_started(
    cron_site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through sudo the directory run-job starts in is the developer's:
    a job's relative arguments must not name their files."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    job = make_job(cron_site, command="pwd")
    assert run(cron_site, job) == (0, "")
    lines = log_lines(direct.last_log(cron_site.config(), job) or "")
    home = pwd.getpwuid(os.geteuid()).pw_dir
    assert ("INFO", home if os.path.isdir(home) else "/") in lines
    assert ("INFO", str(elsewhere)) not in lines


# -- stopping processes ----------------------------------------------------------


def test_a_timeout_kills_the_whole_process_tree(cron_site: Site) -> None:
    """The grandchild (and the shell) ignore SIGTERM: SIGKILL after the grace."""
    pidfile = cron_site.root / "grandchild.pid"
    job = make_job(
        cron_site,
        command=f"""sh -c 'trap "" TERM; sleep 300 & echo $! > {pidfile}; wait'""",
        timeout=0.01,
    )
    start = time.monotonic()
    status, out = run(cron_site, job, kill_grace=0.3)
    took = time.monotonic() - start
    assert (status, out) == (1, "Job timed out after 0.01 minutes\n")
    assert 0.6 <= took < 3
    grandchild = read_pid(pidfile)
    assert not alive(grandchild)
    (entry,) = history(cron_site).entries
    assert entry.reason == "Job timed out after 0.01 minutes" and entry.code == -signal.SIGKILL
    assert log_lines(entry.log or "")[-1] == ("INFO", "----------- end command output")


def test_the_timeout_spans_the_whole_command_list(cron_site: Site) -> None:
    job = make_job(cron_site, command=["sleep 0.2", "sleep 30", "true"], timeout=0.005)
    start = time.monotonic()
    assert run(cron_site, job) == (1, "Job timed out after 0.005 minutes\n")
    assert time.monotonic() - start < 2
    assert history(cron_site).entries[0].code == -signal.SIGTERM


def test_processes_a_command_leaves_behind_are_stopped(cron_site: Site) -> None:
    """The background sleep keeps the output pipe open: the original waited
    for it; here it is stopped when the command exits, as systemd does."""
    pidfile = cron_site.root / "left.pid"
    job = make_job(cron_site, command=f"sh -c 'sleep 300 & echo $! > {pidfile}; echo bye'")
    start = time.monotonic()
    assert run(cron_site, job) == (0, "")
    assert time.monotonic() - start < 3
    assert not alive(read_pid(pidfile))
    assert ("INFO", "bye") in log_lines(direct.last_log(cron_site.config(), job) or "")


# -- one run at a time -----------------------------------------------------------


@pytest.mark.parametrize("overtime", [False, True])
def test_a_run_while_the_lock_is_held(cron_site: Site, overtime: bool) -> None:
    job = make_job(cron_site, command=f"touch {cron_site.root / 'ran'}", allow_overtime=overtime)
    (cron_site.root / "run").mkdir()
    with lock.acquire(str(cron_site.root / "run" / "job.lock")):
        status, out = run(cron_site, job)
    assert not (cron_site.root / "ran").exists()
    (entry,) = history(cron_site).entries
    assert f"the previous run (pid {os.getpid()}) is still running" in (entry.reason or "")
    if overtime:
        assert (status, out) == (0, "")
        assert entry.status == "skipped"
        assert history(cron_site).last_completion_status == "skipped"
    else:
        assert status == 1 and out == f"{entry.reason}\n"
        assert entry.status == "failed"
        assert history(cron_site).consecutive_failures == 1


@pytest.mark.parametrize("overtime", [False, True])
def test_two_concurrent_runs_only_one_runs(
    cron_site: Site, start_runner: Callable[[], subprocess.Popen[str]], overtime: bool
) -> None:
    runs = cron_site.root / "runs"
    make_job(cron_site, command=f"sh -c 'echo $$ >> {runs}; sleep 1'", allow_overtime=overtime)
    runners = [start_runner() for _ in range(2)]
    results = sorted((r.wait(30), r.stdout.read() if r.stdout else "") for r in runners)
    assert len(runs.read_text().split()) == 1
    statuses = sorted(e.status for e in history(cron_site).entries)
    if overtime:
        assert [code for code, _ in results] == [0, 0]
        assert statuses == ["completed", "skipped"]
    else:
        assert [code for code, _ in results] == [0, 1]
        assert "still running" in results[1][1]
        assert statuses == ["completed", "failed"]
    # The loser is recorded at once, the winner a second later.
    assert history(cron_site).last_completion_status == "success"
    assert history(cron_site).consecutive_failures == 0


def start_sleeping(
    site: Site, start_runner: Callable[[], subprocess.Popen[str]]
) -> tuple[Job, subprocess.Popen[str], int]:
    """A job whose command sleeps, run by a runner process: the job, the
    runner and the command's PID."""
    pidfile = site.root / "command.pid"
    job = make_job(site, command=f"sh -c 'echo $$ > {pidfile}; exec sleep 300'")
    runner = start_runner()
    return job, runner, read_pid(pidfile)


def test_a_killed_runner_frees_the_lock_and_takes_its_command_along(
    cron_site: Site, start_runner: Callable[[], subprocess.Popen[str]]
) -> None:
    job, runner, command = start_sleeping(cron_site, start_runner)
    state = direct.job_state(cron_site.config(), "job")
    assert (state.running, state.pid) == (True, runner.pid)
    runner.send_signal(signal.SIGKILL)
    runner.wait(10)
    wait_for(lambda: not alive(command), timeout=5)  # PR_SET_PDEATHSIG
    assert not direct.job_state(cron_site.config(), "job").running

    job = make_job(cron_site, command="true")
    assert run(cron_site, job) == (0, "")
    statuses = [(e.status, e.pid) for e in history(cron_site).entries]
    assert statuses == [("started", runner.pid), ("completed", os.getpid())]


def test_sigterm_ends_the_run_and_records_it(
    cron_site: Site, start_runner: Callable[[], subprocess.Popen[str]]
) -> None:
    pidfile = cron_site.root / "grandchild.pid"
    make_job(cron_site, command=f"sh -c 'sleep 300 & echo $! > {pidfile}; wait'")
    runner = start_runner()
    grandchild = read_pid(pidfile)
    runner.send_signal(signal.SIGTERM)
    out, err = runner.communicate(timeout=10)
    assert (runner.returncode, out, err) == (128 + signal.SIGTERM, "Job was terminated by SIGTERM\n",
                                             "")
    assert not alive(grandchild)
    (entry,) = history(cron_site).entries
    assert (entry.status, entry.reason) == ("failed", "Job was terminated by SIGTERM")


def test_kill_job_stops_the_running_instance(
    cron_site: Site, start_runner: Callable[[], subprocess.Popen[str]]
) -> None:
    job, runner, command = start_sleeping(cron_site, start_runner)
    status, message = direct.kill_job(cron_site.config(), job)
    assert (status, message) == (0, f"Job (job): sent SIGTERM to run-job (pid {runner.pid})")
    assert runner.wait(10) == 128 + signal.SIGTERM
    assert not alive(command)
    assert history(cron_site).entries[0].reason == "Job was terminated by SIGTERM"


def test_kill_job_by_another_user_says_how_to_become_the_service_user(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.configure(f"user: nobody\nbackend: direct\nrun_directory: {site.root / 'run'}\n")
    job = make_job(site, command="true")
    monkeypatch.setattr(direct.os, "geteuid", lambda: 1234)  # neither root nor nobody
    assert direct.kill_job(site.config(), job) == (
        2, f"run-job: jobs run as user 'nobody' (uid {NOBODY}), not as uid 1234: "
           "use `sudo -u nobody run-job ...` (members of group process-control-dev, "
           "once the operator enabled /etc/sudoers.d/process-control)")
    monkeypatch.setattr(direct.os, "geteuid", lambda: 0)  # root may stop any run
    assert direct.kill_job(site.config(), job) == (1, "Job (job) is not running")
    # the group named is the configuration's
    site.configure(f"user: nobody\nbackend: direct\nrun_directory: {site.root / 'run'}\n"
                   "developer_group: jobs-team\n")
    monkeypatch.setattr(direct.os, "geteuid", lambda: 1234)
    assert "(members of group jobs-team, once" in direct.kill_job(site.config(), job)[1]


def test_kill_job_when_not_running(cron_site: Site) -> None:
    job = make_job(cron_site, command="true")
    assert direct.kill_job(cron_site.config(), job) == (1, "Job (job) is not running")
    # A live PID in an unlocked file (a run that just ended) is not a run.
    (cron_site.root / "run").mkdir()
    (cron_site.root / "run" / "job.lock").write_text(f"{os.getpid()}\n")
    assert direct.kill_job(cron_site.config(), job) == (1, "Job (job) is not running")


# -- status and history ----------------------------------------------------------


def test_job_state_after_runs(cron_site: Site) -> None:
    config: Config = cron_site.config()
    empty = direct.job_state(config, "job")
    assert empty == direct.JobState(False, None, "unknown", None, None, None, 0, None)
    job = make_job(cron_site, command="sleep 0.2")
    assert run(cron_site, job)[0] == 0
    job = make_job(cron_site, command="false")
    assert run(cron_site, job)[0] == 1
    state = direct.job_state(config, "job")
    assert (state.running, state.pid, state.last_status) == (False, None, "failure")
    assert state.consecutive_failures == 1
    assert state.last_duration is not None and state.last_duration < 0.2  # the `false` run
    assert state.last_start is not None and state.last_end is not None
    assert state.last_start.tzinfo is not None
    assert state.last_log == history(cron_site).entries[-1].log == direct.last_log(config, job)


def test_last_log_is_the_newest_by_name(cron_site: Site) -> None:
    job = make_job(cron_site, command="true")
    directory = cron_site.root / "log" / "job"
    directory.mkdir(parents=True)
    for name in ["job-20240101-120000.log", "job-20240101-120000-2.log",
                 "job-20231231-235959-9.log", "job-2-20250101-000000.log", "notes.txt"]:
        (directory / name).touch()
    (directory / ".run-1234").symlink_to("job-20240101-120000.log")
    assert direct.last_log(cron_site.config(), job) == str(directory / "job-20240101-120000-2.log")


def test_a_corrupt_history_is_reported_and_the_job_still_runs(cron_site: Site) -> None:
    (cron_site.root / "state").mkdir()
    (cron_site.root / "state" / "job.yaml").write_text("history: [\x00 broken\n")
    assert direct.job_state(cron_site.config(), "job").problem is not None
    job = make_job(cron_site, command="true")
    status, out = run(cron_site, job)
    assert status == 0
    assert out.startswith("run-job: ") and "unreadable run history" in out
    assert out.count("\n") == 1  # reported once, then replaced
    assert history(cron_site).last_completion_status == "success"


@pytest.mark.parametrize(
    "poison",
    ["month 13", "+99:00", "symlink", "fifo", "huge", "alias bomb"],
)
def test_a_poisoned_history_never_stops_a_run(cron_site: Site, poison: str) -> None:
    state = cron_site.root / "state"
    state.mkdir()
    path = state / "job.yaml"
    secret = cron_site.root / "secret"
    secret.write_text("history: []\nlast_completion_status: failure\n")
    if poison == "month 13":
        path.write_text("history:\n- {status: failed, time: 2024-13-01 00:00:00}\n")
    elif poison == "+99:00":
        path.write_text("history:\n- {status: failed, time: 2024-01-01 00:00:00+99:00}\n")
    elif poison == "symlink":
        path.symlink_to(secret)
    elif poison == "fifo":
        os.mkfifo(path)
    elif poison == "huge":
        with path.open("wb") as handle:
            handle.truncate(1 << 30)
    else:
        path.write_text("a: &a [x, x]\nhistory: [*a, *a]\n")
    config = cron_site.config()
    assert within(10, lambda: direct.job_state(config, "job")).problem is not None
    job = make_job(cron_site, command="true")
    status, out = within(10, lambda: run(cron_site, job))
    assert status == 0
    assert out.startswith(f"run-job: {path}: unreadable run history (") and out.count("\n") == 1
    assert history(cron_site).last_completion_status == "success"
    assert secret.read_text().endswith("failure\n")  # never written through the link


def test_what_a_run_leaves_is_not_for_other_users(cron_site: Site) -> None:
    job = make_job(cron_site, command="echo private")
    assert run(cron_site, job) == (0, "")
    root = cron_site.root
    (log,) = (root / "log" / "job").iterdir()
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in (
        root / "run", root / "run" / "job.lock", root / "state", root / "state" / "job.yaml",
        root / "state" / "job.yaml.lock", root / "log", root / "log" / "job", log)}
    assert modes == {
        root / "run": 0o700, root / "run" / "job.lock": 0o600,
        root / "state": 0o750, root / "state" / "job.yaml": 0o640,
        root / "state" / "job.yaml.lock": 0o600,
        root / "log": 0o750, root / "log" / "job": 0o750, log: 0o640,
    }


def test_a_log_directory_left_open_to_others_is_closed(cron_site: Site) -> None:
    directory = cron_site.root / "log" / "job"
    directory.mkdir(parents=True)
    directory.chmod(0o755)  # as older versions made it
    old = directory / "job-20240101-120000.log"
    old.write_text("older output\n")
    old.chmod(0o644)
    job = make_job(cron_site, command="true")
    assert run(cron_site, job) == (0, "")
    assert stat.S_IMODE(directory.stat().st_mode) == 0o750
    assert stat.S_IMODE(old.stat().st_mode) == 0o640


# -- another local user ----------------------------------------------------------

# Run as another user (uid 65534) with the system Python: open each file
# read-only, as anyone may open a file others can read, and hold an flock on
# it until killed; one line per file, then "done".
SQUATTER = """
import fcntl, os, sys, time
for path in sys.argv[1:]:
    try:
        fd = os.open(path, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        print("locked", path)
    except OSError as err:
        print("refused", path, err.errno)
print("done", flush=True)
time.sleep(300)
"""
NOBODY = 65534


@pytest.fixture
def shared_site() -> Iterator[Site]:
    """A site other users can reach (a pytest tmp_path is 0700, which would
    hide everything in it from them and prove nothing)."""
    root = Path(tempfile.mkdtemp(prefix="pc-other-user-", dir="/tmp"))
    try:
        root.chmod(0o755)
        (root / "jobs").mkdir()
        (root / "metrics").mkdir(mode=0o755)  # a textfile collector's directory
        shared = Site(root, root / "jobs", root / "process-control.yaml")
        shared.configure_direct(f"metrics_file: {root / 'metrics' / 'jobs.prom'}\n")
        yield shared
    finally:
        shutil.rmtree(root)


def squat_as_nobody(paths: list[Path]) -> tuple[subprocess.Popen[str], dict[str, str]]:
    squatter = subprocess.Popen(
        ["/usr/bin/python3", "-c", SQUATTER, *map(str, paths)],
        user=NOBODY, group=NOBODY, extra_groups=[], cwd="/",
        stdout=subprocess.PIPE, text=True,
    )
    assert squatter.stdout is not None
    said = {}
    while (line := squatter.stdout.readline()) not in ("done\n", ""):
        what, path, *_ = line.split()
        said[path] = what
    return squatter, said


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a process as another user")
def test_another_user_cannot_take_our_locks_or_delay_a_run(shared_site: Site) -> None:
    root = shared_site.root
    locks = [root / "run" / "job.lock", root / "state" / "job.yaml.lock",
             root / "metrics" / "jobs.prom.lock"]
    job = make_job(shared_site, command="true")

    # As created: nobody can open, so nobody can lock, even where an admin
    # opened the directories up.
    assert run(shared_site, job) == (0, "")
    for directory in (root / "run", root / "state"):
        for opened in (False, True):
            if opened:
                directory.chmod(0o755)
            squatter, said = squat_as_nobody(locks)
            squatter.kill()
            squatter.communicate()
            assert said == {str(p): "refused" for p in locks}, (opened, said)

    # Left open to others by an older version, and already locked by
    # another user: the run replaces each lock file and is not held up.
    for path in locks:
        path.chmod(0o644)
    squatter, said = squat_as_nobody(locks)
    try:
        assert said == {str(p): "locked" for p in locks}
        for attempt in range(2):
            started = time.monotonic()
            assert run(shared_site, job) == (0, ""), attempt
            assert time.monotonic() - started < 2.0, attempt
        assert [stat.S_IMODE(p.stat().st_mode) for p in locks] == [0o600] * 3
        assert [e.status for e in history(shared_site).entries] == ["completed"] * 3
        prom = (root / "metrics" / "jobs.prom").read_text()
        assert 'process_control_last_run_success{job="job"} 1' in prom
        assert squatter.poll() is None  # still holding what it locked: nothing of ours
    finally:
        squatter.kill()
        squatter.communicate()


# -- priority and limits -----------------------------------------------------------

# What each command reports about itself: its nice value (/proc/self/stat
# field 19, as the kernel holds it) and its I/O class.
PROBE = "sh -c 'cut -d\" \" -f19 /proc/self/stat; ionice -p $$'"


def output_lines(site: Site) -> list[str]:
    (log,) = (site.root / "log" / "job").iterdir()
    return [text for level, text in log_lines(log) if level == "INFO" and text[:1] != "="
            and not text.startswith(("sh -c", "-----------"))]


def test_nice_and_io_class_reach_every_command(cron_site: Site) -> None:
    job = make_job(cron_site, command=[PROBE, PROBE], nice=7, io_class="idle")
    own = os.getpriority(os.PRIO_PROCESS, 0)
    assert run(cron_site, job) == (0, "")
    assert output_lines(cron_site) == ["7", "idle", "7", "idle"]
    assert os.getpriority(os.PRIO_PROCESS, 0) == own  # set in the command, not the runner


def test_best_effort_is_systemds_level_4(cron_site: Site) -> None:
    job = make_job(cron_site, command=PROBE, io_class="best-effort")
    assert run(cron_site, job) == (0, "")
    assert output_lines(cron_site) == [str(os.getpriority(os.PRIO_PROCESS, 0)),
                                       "best-effort: prio 4"]


@pytest.mark.parametrize(("key", "value", "line"), [("memory_max", "1G", 2), ("cpu_quota", 50, 2)])
def test_limits_only_a_control_group_enforces_are_refused(
    cron_site: Site, key: str, value: Any, line: int
) -> None:
    marker = cron_site.root / "ran"
    job = make_job(cron_site, command=f"touch {marker}", **{key: value})
    assert run(cron_site, job) == (
        2, f"run-job: {cron_site.jobs}/job.yaml:{line}: {key}: is enforced only on systemd hosts"
           " (a control group limit): not run by the direct runner\n")
    assert not marker.exists()
    assert not (cron_site.root / "state" / "job.yaml").exists()


def test_a_priority_above_the_runners_own_is_refused(cron_site: Site) -> None:
    # as root too: the direct runner never gives a priority it would need privileges for
    cron_site.configure_direct("allow_negative_nice: true\n")
    marker = cron_site.root / "ran"
    job = make_job(cron_site, command=f"touch {marker}", nice=-1)
    own = os.getpriority(os.PRIO_PROCESS, 0)
    assert run(cron_site, job) == (
        2, f"run-job: {cron_site.jobs}/job.yaml:3: nice: -1 is a higher priority than run-job's"
           f" own (nice {own}), which the direct runner never gives: not run\n")
    assert not marker.exists()


def test_a_niced_runner_refuses_a_lower_nice_and_applies_a_higher_one(cron_site: Site) -> None:
    def runner_at_nice_5() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["nice", "-n", "5", sys.executable, "-m", "pc_systemd.cli.run_job",
             "--config", str(cron_site.config_file), "--job", "job"],
            capture_output=True, text=True, check=False, timeout=60)

    make_job(cron_site, command=PROBE, nice=3)
    refused = runner_at_nice_5()
    # on stdout, as every line run-job prints for cron's mail
    assert (refused.returncode, refused.stderr) == (2, "")
    assert refused.stdout == (
        f"run-job: {cron_site.jobs}/job.yaml:3: nice: 3 is a higher priority than run-job's"
        " own (nice 5), which the direct runner never gives: not run\n")
    make_job(cron_site, command=PROBE, nice=9)
    done = runner_at_nice_5()
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert output_lines(cron_site) == ["9", "none: prio 0"]


def test_a_priority_the_kernel_refuses_is_one_logged_line_not_a_traceback(
    cron_site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    # I/O class 7 does not exist: ioprio_set fails (EINVAL) between fork and exec
    monkeypatch.setattr(direct, "ioprio", lambda io_class: 7 << 13)
    marker = cron_site.root / "ran"
    job = make_job(cron_site, command=f"touch {marker}", io_class="idle")
    assert run(cron_site, job) == (1, "Job failed with code 126\n")
    assert not marker.exists()
    (log,) = (cron_site.root / "log" / "job").iterdir()
    assert ("ERROR", "cannot run touch: its nice or io_class could not be set") in log_lines(log)
