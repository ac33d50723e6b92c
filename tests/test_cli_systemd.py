"""run-job on a systemd host: run, slow start, kill, list, status, logs and
next runs, driven through a real systemd booted in a container; each
command also as the flags of before, with the same output.

One container for the module. Jobs run as an ordinary service user; the
permission test runs run-job itself as another unprivileged user.
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.systemd_box import SystemdBox, checkout_box
from tests.user_install import RUN_JOB

pytestmark = pytest.mark.systemd

JOBS = "/var/lib/process-control"
USER = "pcuser"
OTHER = "alice"  # an unprivileged user calling run-job

CONFIG = f"user: {USER}\njob_directory: {JOBS}\noutput_directory: /var/log/process-control\n"

# Lines are printed a moment before each process exits: journald tags a line
# with its run only while the process lives (see tests/systemd_box.py).
# Jobs that the tests run by hand never fire by timer meanwhile (`ok` once
# a year): a timer run in the middle of a test would make the test's own
# run "busy" (with `ok` on '*/5', the likely cause of one unexplained failure).
JOB_FILES = {
    "ok": textwrap.dedent("""\
        name: Fine
        description: Prints two lines.
        tag: [demo, ok]
        command:
            - /bin/sh -c "echo first line; sleep 0.2"
            - /bin/sh -c "echo second line; sleep 0.2"
        schedule: '0 0 1 1 *'
        """),
    "fails": textwrap.dedent("""\
        name: Breaks
        command: /bin/sh -c "echo about to fail; sleep 0.2; exit 3"
        """),
    "slow": textwrap.dedent("""\
        name: Too slow
        command: /bin/sh -c "sleep 300 & exec sleep 301"
        timeout: 0.05
        """),
    "sleeper": textwrap.dedent("""\
        name: Sleeper
        command: /bin/sh -c "sleep 300 & exec sleep 301"
        allow_overtime: true
        """),
    "busy": textwrap.dedent("""\
        name: Busy
        command: /bin/sh -c "sleep 300"
        """),
    "warm": textwrap.dedent("""\
        name: Warm up
        command: /bin/sh -c "echo normal start; sleep 0.2"
        slow_start_command: /bin/sh -c "echo slow start; sleep 0.2"
        """),
    "counter": textwrap.dedent("""\
        name: Counter
        command: /bin/sh -c 'n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; echo run-$n; sleep 0.2'
        """),
    "weekday": textwrap.dedent("""\
        name: Weekday
        command: /bin/true
        schedule: '30 2 * * mon-fri'
        """),
    "off": textwrap.dedent("""\
        name: Switched off
        command: /bin/true
        schedule: '0 * * * *'
        disabled: true
        """),
    "tofile": textwrap.dedent("""\
        name: To a file
        logging: file
        command: /bin/sh -c "echo into the file"
        """),
    "broken": "name: Broken\ncommand: /bin/true\nschedule: '61 * * * *'\n",
}


@pytest.fixture(scope="module")
def box() -> Iterator[SystemdBox]:
    with checkout_box() as booted:
        booted.run(["useradd", "--create-home", USER])
        booted.run(["useradd", "--create-home", OTHER])
        booted.write_file("/etc/process-control.yaml", CONFIG)
        for slug, text in JOB_FILES.items():
            booted.write_file(f"{JOBS}/{slug}.yaml", text)
        booted.run([RUN_JOB, "--install-generator"])
        yield booted


def run_job(box: SystemdBox, *args: str, user: str | None = None,
            timeout: float = 60) -> tuple[int, str, str]:
    result = box.run([RUN_JOB, *args], check=False, user=user, timeout=timeout)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout, result.stderr


def both(box: SystemdBox, flags: list[str], command: list[str],
         user: str | None = None) -> tuple[int, str, str]:
    """The action through its flags (as before) and through its command:
    the same stdout, stderr and exit status."""
    as_flags = run_job(box, *flags, user=user)
    assert run_job(box, *command, user=user) == as_flags, (flags, command)
    return as_flags


def status_json(box: SystemdBox, *args: str) -> dict[str, dict[str, Any]]:
    code, out, err = run_job(box, "--status", "--json", *args)
    assert code == 0, err
    document = json.loads(out)
    assert document["backend"] == "systemd"
    return {job["slug"]: job for job in document["jobs"]}


def active(box: SystemdBox, unit: str) -> str:
    return box.show(unit, "ActiveState")["ActiveState"]


def start_in_background(box: SystemdBox, slug: str) -> None:
    """Start the job and wait until its command runs (past the start hooks)."""
    unit = f"process-control-{slug}.service"
    box.systemctl("start", "--no-block", unit)
    box.wait_until(lambda: box.show(unit, "ActiveState", "MainPID")["MainPID"] != "0"
                   and active(box, unit) == "activating", what=f"{slug} to run")


def leftover(box: SystemdBox) -> str:
    return box.run(["pgrep", "-u", USER, "-a", "sleep"], check=False).stdout


# -- run ---------------------------------------------------------------------------


def test_a_job_runs_in_its_unit_shows_its_output_and_exits_0(box: SystemdBox) -> None:
    code, out, err = run_job(box, "-j", "ok")
    assert (code, out, err) == (0, "first line\nsecond line\n", "")
    assert box.show("process-control-ok.service", "Result")["Result"] == "success"


def test_a_failing_job_exits_with_its_code_and_says_why(box: SystemdBox) -> None:
    code, out, err = run_job(box, "--job", "fails")
    assert (code, out, err) == (3, "about to fail\n", "Breaks failed with code 3\n")


def test_a_timed_out_job_fails_with_one_line_and_leaves_nothing(box: SystemdBox) -> None:
    started = time.monotonic()
    code, out, err = run_job(box, "-j", "slow")
    assert 2.5 < time.monotonic() - started < 20
    assert (code, out, err) == (1, "", "Too slow timed out after 0.05 minutes\n")
    assert leftover(box) == ""


def test_slow_start_in_both_forms_and_a_job_without_one(box: SystemdBox) -> None:
    assert run_job(box, "-j", "warm", "-w") == (0, "slow start\n", "")
    assert run_job(box, "--slow-start", "warm") == (0, "slow start\n", "")
    assert run_job(box, "-j", "warm") == (0, "normal start\n", "")
    code, out, err = run_job(box, "-j", "ok", "-w")
    assert (code, out) == (2, "")
    assert err == "run-job: ok: the job has no slow_start_command\n"


def test_a_running_job_is_skipped_under_allow_overtime(box: SystemdBox) -> None:
    start_in_background(box, "sleeper")
    try:
        started = time.monotonic()
        code, out, err = run_job(box, "-j", "sleeper")
        assert time.monotonic() - started < 10  # never waits behind the running one
        assert (code, out) == (0, "")
        assert err.startswith("Sleeper skipped: the previous run (pid ")
        assert err.endswith(") is still running\n")
    finally:
        box.systemctl("stop", "process-control-sleeper.service")


def test_a_running_job_without_allow_overtime_fails_at_once(box: SystemdBox) -> None:
    start_in_background(box, "busy")
    try:
        code, out, err = run_job(box, "-j", "busy")
        assert (code, out) == (1, "")
        assert err.startswith("Busy not started: the previous run (pid ")
    finally:
        box.systemctl("stop", "process-control-busy.service")


def test_unknown_and_broken_jobs_are_one_line_errors(box: SystemdBox) -> None:
    code, _, err = run_job(box, "-j", "nope")
    assert code == 2 and err == f"{JOBS}/nope.yaml:1: job: no job named 'nope'\n"
    code, _, err = run_job(box, "-j", "broken")
    assert code == 2
    assert err == f"{JOBS}/broken.yaml:3: schedule: minute: 61 is out of range 0-59\n"


# -- kill ----------------------------------------------------------------------------


def test_kill_job_stops_the_whole_tree(box: SystemdBox) -> None:
    start_in_background(box, "sleeper")
    box.wait_until(lambda: leftover(box).count("sleep 30") == 2, what="both sleeps")
    code, out, _ = run_job(box, "--kill-job", "sleeper")
    assert code == 0
    assert out.startswith("Sleeper (sleeper): stopped process-control-sleeper.service (pid ")
    assert leftover(box) == ""  # the backgrounded grandchild too
    assert active(box, "process-control-sleeper.service") in ("inactive", "failed")
    assert run_job(box, "-k", "sleeper") == (1, "Sleeper (sleeper) is not running\n", "")


def test_a_followed_run_that_is_killed_reports_the_signal(box: SystemdBox) -> None:
    import subprocess

    follower = subprocess.Popen(
        ["nsenter", f"--target={box.init_pid}", "--all", RUN_JOB, "-j", "busy"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # its command, not its start hook (ExecStartPre=): MainPID is set
        box.wait_until(lambda: box.show("process-control-busy.service", "MainPID")["MainPID"]
                       not in ("", "0"), what="busy's command to run")
        assert run_job(box, "-k", "busy")[0] == 0
        _, err = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == 128 + 15
    assert err == "Busy was killed by signal SIGTERM\n"


# -- list and status -----------------------------------------------------------------


def test_list_jobs_lists_every_file_and_reports_broken_ones(box: SystemdBox) -> None:
    code, out, err = run_job(box, "--list-jobs")
    assert code == 0
    assert out.split() == sorted(JOB_FILES)
    assert f"{JOBS}/broken.yaml:3: schedule:" in err


def test_status_in_the_original_format_and_beyond(box: SystemdBox) -> None:
    run_job(box, "-j", "ok")
    run_job(box, "-j", "fails")
    code, out, err = run_job(box, "-s")
    assert code == 0
    assert err.endswith("backend: systemd\n")
    lines = out.splitlines()
    at = lines.index("ok - Fine")
    assert lines[at + 1: at + 4] == ["\tPrints two lines.", "\ttags: demo, ok",
                                     "\tlast status: success"]
    assert lines[at + 4] == "\tstate: idle"
    assert lines[at + 5].startswith("\tlast run: ") and ", took " in lines[at + 5]
    assert lines[at + 5].endswith(": success")
    assert lines[at + 6].startswith("\tnext run: ")
    fails = lines.index("fails - Breaks")
    assert lines[fails + 1: fails + 3] == ["\tlast status: failure", "\tstate: failed"]
    assert lines[fails + 3].endswith(": failure (Breaks failed with code 3)")
    broken = lines.index("broken ***Invalid configuration***")
    assert lines[broken + 1] == (
        f"\terror: {JOBS}/broken.yaml:3: schedule: minute: 61 is out of range 0-59")


def test_status_json_has_state_last_and_next_run_for_scripts(box: SystemdBox) -> None:
    run_job(box, "-j", "ok")
    start_in_background(box, "sleeper")
    try:
        jobs = status_json(box)
        pid = int(box.show("process-control-sleeper.service", "MainPID")["MainPID"])
    finally:
        box.systemctl("stop", "process-control-sleeper.service")
    assert set(jobs) == set(JOB_FILES)
    ok = jobs["ok"]
    assert (ok["state"], ok["last_status"], ok["tags"]) == ("idle", "success", ["demo", "ok"])
    assert ok["last_run"]["status"] == "success"
    assert 0.3 <= ok["last_run"]["duration_seconds"] < 10
    assert ok["next_run"] is not None
    next_timer = box.show("process-control-ok.timer", "NextElapseUSecRealtime")
    assert next_timer["NextElapseUSecRealtime"] != ""
    assert (jobs["sleeper"]["state"], jobs["sleeper"]["pid"]) == ("running", pid)
    assert jobs["sleeper"]["running_since"] is not None
    assert jobs["off"]["state"] == "disabled" and jobs["off"]["next_run"] is None
    assert jobs["broken"]["state"] == "invalid"
    assert "61 is out of range" in jobs["broken"]["problems"][0]
    assert jobs["weekday"]["state"] == "idle" and jobs["weekday"]["last_run"] is None


def test_a_job_without_timer_keeps_its_last_run_after_systemd_forgets_it(
    box: SystemdBox,
) -> None:
    # An unscheduled unit that succeeded is unloaded at once; the journal
    # still knows its last run.
    assert run_job(box, "-j", "warm")[0] == 0
    box.wait_until(
        lambda: box.show("process-control-warm.service", "LoadState", "ActiveState")
        != {"LoadState": "loaded", "ActiveState": "activating"}, what="warm to end")
    warm = status_json(box)["warm"]
    assert warm["last_run"]["status"] == "success"
    assert warm["last_run"]["unit"] in ("process-control-warm.service",
                                        "process-control-warm.slow-start.service")


def test_only_running(box: SystemdBox) -> None:
    start_in_background(box, "sleeper")
    try:
        assert run_job(box, "-l", "-r")[1] == "sleeper\n"
        code, out, _ = run_job(box, "--status", "--only-running")
        assert code == 0
        assert [line for line in out.splitlines() if not line.startswith("\t")] == [
            out.splitlines()[0]]
        assert out.splitlines()[0].startswith("sleeper - Sleeper\t{pid: ")
        assert list(status_json(box, "-r")) == ["sleeper"]
    finally:
        box.systemctl("stop", "process-control-sleeper.service")


def test_status_as_an_unprivileged_user(box: SystemdBox) -> None:
    code, out, err = run_job(box, "--status", user=OTHER)
    assert code == 0, err
    assert "ok - Fine" in out


# -- logs ----------------------------------------------------------------------------


def test_logs_of_the_last_run_and_of_an_earlier_one(box: SystemdBox) -> None:
    for _ in range(3):
        assert run_job(box, "-j", "counter")[0] == 0
    code, out, err = run_job(box, "--logs", "counter")
    assert (code, out) == (0, "run-3\n")
    assert err.startswith("-- run 3 of 3 of process-control-counter.service, started ")
    assert err.endswith(": success\n")
    assert run_job(box, "--logs", "counter", "--run", "-2")[1] == "run-2\n"
    assert run_job(box, "--logs", "counter", "--run", "1")[1] == "run-1\n"
    code, _, err = run_job(box, "--logs", "counter", "--run", "-9")
    assert code == 2 and "no run -9: the journal has 3 run(s)" in err


def test_logs_of_a_failed_run_and_of_slow_start(box: SystemdBox) -> None:
    run_job(box, "-j", "fails")
    code, out, err = run_job(box, "--logs", "fails")
    assert (code, out) == (0, "about to fail\n")
    assert err.endswith(": Breaks failed with code 3\n")
    run_job(box, "-j", "warm", "-w")
    assert run_job(box, "--logs", "warm", "-w")[1] == "slow start\n"


def test_a_file_logged_job_says_where_its_output_went(box: SystemdBox) -> None:
    code, out, err = run_job(box, "-j", "tofile")
    assert (code, out) == (0, "")
    assert err.startswith("tofile: output in /var/log/process-control/tofile/tofile-")
    path = err.split("output in ", 1)[1].strip()
    code, out, err = run_job(box, "--logs", "tofile")
    assert (code, out) == (0, "into the file\n")
    assert err == f"-- run 1 of 1: {path}\n"


# -- next runs ---------------------------------------------------------------------


def next_elapse(box: SystemdBox, slug: str) -> str:
    """systemd's own next elapse of the job's timer, as --json writes times."""
    systemd = ["busctl", "--system", "org.freedesktop.systemd1"]
    path = box.run([systemd[0], "call", *systemd[1:], "/org/freedesktop/systemd1",
                    "org.freedesktop.systemd1.Manager", "GetUnit", "s",
                    f"process-control-{slug}.timer"]).stdout.split()[1].strip('"')
    usec = box.run([systemd[0], "get-property", *systemd[1:], path,
                    "org.freedesktop.systemd1.Timer", "NextElapseUSecRealtime"]).stdout.split()[1]
    when = dt.datetime.fromtimestamp(int(usec) / 1e6, dt.UTC)
    return when.astimezone().isoformat(timespec="seconds")


def test_the_next_run_is_systemds_and_follows_a_new_schedule(box: SystemdBox) -> None:
    """--status remembers timers' next elapse (status_memo): the value it
    shows is systemd's before and after the cache, and after a schedule
    change and a reload."""
    box.systemctl("stop", "process-control-reload.path")  # reloads when the test says
    try:
        box.write_file(f"{JOBS}/moving.yaml", "name: Moving\ncommand: /bin/true\n"
                       "schedule: '7 3 * * *'\n")
        time.sleep(2.5)  # file_cache keeps no file younger than 2 s
        assert run_job(box, "--reload")[0] == 1  # (the broken job)
        # The generator that systemd ran took every job file from the cache
        # that --reload wrote just before: none was read again.
        said = box.run(["journalctl", "-b", "--no-pager", "-o", "cat",
                        "SYSLOG_IDENTIFIER=process-control-generator"]).stdout.splitlines()
        files = len(JOB_FILES) + 1
        assert said[-1] == (f"generated units of {files - 1} job(s), skipped 1 "
                            f"({files} unchanged file(s) from the cache)")
        time.sleep(2.5)  # the units written by that reload must settle too
        first = status_json(box)["moving"]["next_run"]
        cached = box.run(["sh", "-c", "ls /var/cache/pc-systemd/status-memo-*"]).stdout
        assert cached.strip()
        again = status_json(box)["moving"]["next_run"]
        assert first == again == next_elapse(box, "moving")
        assert first.split("T")[1].startswith("03:07:00")
        box.write_file(f"{JOBS}/moving.yaml", "name: Moving\ncommand: /bin/true\n"
                       "schedule: '9 4 * * *'\n")
        assert run_job(box, "--reload")[0] == 1
        moved = status_json(box)["moving"]["next_run"]
        assert moved == next_elapse(box, "moving")
        assert moved.split("T")[1].startswith("04:09:00")
    finally:
        box.run(["rm", "-f", f"{JOBS}/moving.yaml"])
        run_job(box, "--reload")
        box.systemctl("start", "process-control-reload.path")


def test_a_remembered_last_run_gives_way_to_the_next_run(box: SystemdBox) -> None:
    """--status remembers a service's last run while the job's history file
    is unchanged (status_memo); the next run rewrites the history."""
    box.systemctl("stop", "process-control-reload.path")
    flip = ("name: Flip\ncommand: /bin/sh -c 'if [ -e flipped ]; then rm flipped; exit 4; "
            "else touch flipped; sleep 0.2; fi'\nschedule: '0 0 1 1 *'\n")
    try:
        box.write_file(f"{JOBS}/flip.yaml", flip)
        run_job(box, "--reload")
        box.run(["rm", "-f", f"/home/{USER}/flipped"])
        assert run_job(box, "-j", "flip")[0] == 0
        time.sleep(2.5)  # file_cache keeps no file younger than 2 s
        first = status_json(box)["flip"]  # read from systemd, remembered
        memo = box.run(["sh", "-c", "ls /var/cache/pc-systemd/status-memo-*"]).stdout
        assert memo.strip()
        again = status_json(box)["flip"]  # from the memo
        assert first == again
        assert (again["state"], again["last_run"]["status"]) == ("idle", "success")
        assert run_job(box, "-j", "flip")[0] == 4
        failed = status_json(box)["flip"]
        assert (failed["state"], failed["last_run"]["status"]) == ("failed", "failure")
        assert failed["last_run"]["reason"] == "Flip failed with code 4"
        assert failed["last_run"]["start"] > again["last_run"]["start"]
    finally:
        box.run(["rm", "-f", f"{JOBS}/flip.yaml"])
        run_job(box, "--reload")
        box.systemctl("start", "process-control-reload.path")


def test_next_runs_match_the_timer_and_say_the_schedule_in_words(box: SystemdBox) -> None:
    code, out, _ = run_job(box, "--next", "weekday", "--count", "3")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "weekday: 30 2 * * mon-fri (At 02:30, Monday through Friday)"
    assert len(lines) == 4
    document = json.loads(run_job(box, "--next", "weekday", "--json")[1])
    assert len(document["next"]) == 5
    assert document["next"][0] == status_json(box)["weekday"]["next_run"]
    code, _, err = run_job(box, "--next", "counter")
    assert code == 1 and "has no schedule" in err


# -- errors people meet --------------------------------------------------------------


def test_units_not_generated_yet_says_to_reload(box: SystemdBox) -> None:
    box.systemctl("stop", "process-control-reload.path")  # no automatic reload
    try:
        box.write_file(f"{JOBS}/fresh.yaml", "name: Fresh\ncommand: /bin/true\n")
        code, out, err = run_job(box, "-j", "fresh")
        assert (code, out) == (2, "")
        assert err == ("run-job: systemd has no unit process-control-fresh.service "
                       "(units not generated yet): run `run-job --reload` to generate them\n")
        assert status_json(box)["fresh"]["state"] == "not-generated"
        assert run_job(box, "--reload")[0] == 1  # the broken job is reported
        assert run_job(box, "-j", "fresh")[0] == 0
    finally:
        box.run(["rm", "-f", f"{JOBS}/fresh.yaml"])
        box.systemctl("start", "process-control-reload.path")


def test_an_unprivileged_caller_gets_one_clear_line(box: SystemdBox) -> None:
    # (this box has no developer group: tests/test_access_systemd.py has one)
    for args, what in ((["-j", "ok"], "running a job"), (["--kill-job", "busy"], "stopping a job"),
                       (["--logs", "ok"], "reading a job's output")):
        if args[0] == "--kill-job":
            start_in_background(box, "busy")
        try:
            code, out, err = run_job(box, *args, user=OTHER)
        finally:
            box.systemctl("stop", "process-control-busy.service")
        assert (code, out) == (2, ""), args
        assert err == (f"run-job: {what} needs root or membership in group "
                       "'process-control-dev' (no such group on this host)\n")


def test_the_backend_key_forces_the_direct_runner(box: SystemdBox) -> None:
    box.write_file("/etc/pc-direct.yaml", CONFIG + "backend: direct\n"
                   "run_directory: /run/pc-direct\nstate_directory: /var/cache/pc-direct\n")
    code, _, err = both(box, ["--config", "/etc/pc-direct.yaml", "--status"],
                        ["--config", "/etc/pc-direct.yaml", "status"])
    assert code == 0
    assert err.endswith("backend: direct\n")


# -- every command as its flags ------------------------------------------------------


def test_run_list_status_logs_next_as_commands_and_as_flags(box: SystemdBox) -> None:
    assert both(box, ["-j", "ok"], ["run", "ok"]) == (0, "first line\nsecond line\n", "")
    assert both(box, ["--job", "fails"], ["run", "fails"]) == (
        3, "about to fail\n", "Breaks failed with code 3\n")
    assert both(box, ["-j", "warm", "-w"], ["run", "warm", "--slow-start"]) == (
        0, "slow start\n", "")
    assert both(box, ["--slow-start", "warm"], ["run", "-w", "warm"]) == (0, "slow start\n", "")
    assert both(box, ["-j", "nope"], ["run", "nope"])[0] == 2
    code, out, _ = both(box, ["-l"], ["list"])
    assert (code, out.split()) == (0, sorted(JOB_FILES))
    code, out, err = both(box, ["-s"], ["status"])
    assert code == 0 and "ok - Fine" in out and err.endswith("backend: systemd\n")
    code, out, _ = both(box, ["--status", "--json"], ["status", "--json"])
    assert code == 0 and json.loads(out)["backend"] == "systemd"
    code, out, err = both(box, ["--logs", "warm", "-w"], ["logs", "warm", "--slow-start"])
    assert (code, out) == (0, "slow start\n")
    assert err.startswith("-- run ") and "process-control-warm.slow-start.service" in err
    code, out, _ = both(box, ["--logs", "ok", "--run", "-2"], ["logs", "ok", "--run", "-2"])
    assert (code, out) == (0, "first line\nsecond line\n")
    code, out, _ = both(box, ["--next", "weekday", "--count", "3"],
                        ["next", "weekday", "--count", "3"])
    assert code == 0 and len(out.splitlines()) == 4
    assert both(box, ["--status"], ["status"], user=OTHER)[0] == 0


def test_kill_as_a_command(box: SystemdBox) -> None:
    start_in_background(box, "sleeper")
    box.wait_until(lambda: leftover(box).count("sleep 30") == 2, what="both sleeps")
    code, out, _ = run_job(box, "kill", "sleeper")
    assert code == 0
    assert out.startswith("Sleeper (sleeper): stopped process-control-sleeper.service (pid ")
    assert leftover(box) == ""
    assert both(box, ["--kill-job", "sleeper"], ["kill", "sleeper"]) == (
        1, "Sleeper (sleeper) is not running\n", "")


def test_reload_and_the_generator_as_commands(box: SystemdBox) -> None:
    code, _, err = both(box, ["--reload"], ["reload"])
    assert code == 1 and f"{JOBS}/broken.yaml:3: schedule:" in err  # reported, not applied
    installed = "installed /etc/systemd/system-generators/process-control-generator\n"
    assert both(box, ["--install-generator"], ["install-generator"]) == (0, installed, "")
    code, out, _ = run_job(box, "uninstall-generator")
    try:
        assert code == 0
        lines = out.splitlines()
        assert lines[0] == "removed /etc/systemd/system-generators/process-control-generator"
        assert "stopped process-control-reload.path" in lines
        assert run_job(box, "--uninstall-generator") == (
            0, "the generator was not installed\n", "")
    finally:
        code, out, _ = run_job(box, "install-generator")
    assert code == 0
    assert out.startswith(installed) and "started process-control-reload.path\n" in out
