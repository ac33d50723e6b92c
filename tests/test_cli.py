"""run-job's command line through click's CliRunner: argument handling,
messages, and the pure parts behind them (no D-Bus needed)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
import zoneinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from pc_systemd.cli.run_job import run_job
from pc_systemd.model import file_cache
from pc_systemd.model.jobinfo import JobInfo, LastRun, State, Summary
from pc_systemd.model.jobset import find_job
from pc_systemd.model.schedule import next_fire, parse_schedule
from pc_systemd.systemd.unit_result import outcome
from pc_systemd.views import catalog, report
from pc_systemd.views.next_runs import parse_calendar
from tests.conftest import Site, record_reads, within

GOOD = "name: Good\ncommand: /bin/true\nschedule: '0 * * * *'\n"


def invoke(site: Site, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(run_job, ["--config", str(site.config_file), *args], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def both(site: Site, flags: list[str], command: list[str]) -> tuple[int, str, str]:
    """The action through its flags (as before) and through its command:
    the same stdout, stderr and exit status."""
    as_flags = invoke(site, *flags)
    assert invoke(site, *command) == as_flags, (flags, command)
    return as_flags


@pytest.fixture(autouse=True)
def private_cache(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """Summary caches in the test's own directory, not the caller's ~/.cache
    (nor root's /var/cache)."""
    monkeypatch.setenv("XDG_CACHE_HOME", f"{tmp_path}/xdg-cache")
    monkeypatch.setenv("PROCESS_CONTROL_CACHE", f"{tmp_path}/pc-cache")


def direct_site(site: Site) -> None:
    site.configure(
        f"user: {os.geteuid()}\nallow_root: true\nbackend: direct\noutput_directory: {site.root}/log\n"
        f"run_directory: {site.root}/run\nstate_directory: {site.root}/state\n"
    )


# -- argument handling -------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-j", "a", "-k", "a"], "choose one action, not --kill-job and --job"),
        (["-s", "--logs", "a"], "choose one action, not -l/-s and --logs"),
        (["--next", "a", "--reload"], "choose one action, not --reload and --next"),
        (["-r"], "-r/--only-running goes with -l/--list-jobs or -s/--status"),
        (["--json", "-j", "a"], "--json goes with -l/--list-jobs, -s/--status or --next"),
        (["--run", "-2", "-s"], "--run goes with --logs"),
        (["--count", "3", "-s"], "--count goes with --next"),
        (["-w"], "-w/--slow-start needs a job"),
        (["--count", "0", "--next", "a"], "Invalid value for '--count'"),
    ],
)
def test_bad_combinations_are_usage_errors(site: Site, args: list[str], message: str) -> None:
    code, out, err = invoke(site, *args)
    assert code == 2 and out == ""
    assert message in err


def test_no_action_prints_the_help(site: Site) -> None:
    code, out, _ = invoke(site)
    assert code == 2 and "--kill-job" in out and "--logs" in out and "--next" in out


def test_unknown_job_is_one_line_for_every_action(site: Site) -> None:
    direct_site(site)
    for args in (["-j", "nope"], ["-k", "nope"], ["--logs", "nope"], ["--next", "nope"],
                 ["--slow-start", "nope"]):
        code, out, err = invoke(site, *args)
        assert (code, out) == (2, ""), args
        assert err == f"{site.jobs}/nope.yaml:1: job: no job named 'nope'\n"


def test_bad_job_name_is_refused_before_any_path_is_built(site: Site) -> None:
    code, _, err = invoke(site, "-j", "../etc/passwd")
    assert code == 2 and "bad job name" in err


# -- shell completion --------------------------------------------------------------


def test_job_names_complete(site: Site) -> None:
    site.job("alpha", GOOD)
    site.job("alpine", GOOD)
    site.job("beta", GOOD)
    for option in ("-j", "--kill-job", "--logs", "--next", "--slow-start"):
        env = {
            "_RUN_JOB_COMPLETE": "bash_complete",
            "COMP_WORDS": f"run-job --config {site.config_file} {option} al",
            "COMP_CWORD": "4",
        }
        result = CliRunner().invoke(run_job, [], env=env, prog_name="run-job")
        assert result.stdout.split() == ["plain,alpha", "plain,alpine"], option


def test_completion_without_a_job_directory_offers_nothing(site: Site) -> None:
    site.configure("job_directory: /nonexistent\n")
    env = {"_RUN_JOB_COMPLETE": "bash_complete",
           "COMP_WORDS": f"run-job --config {site.config_file} -j ", "COMP_CWORD": "4"}
    result = CliRunner().invoke(run_job, [], env=env, prog_name="run-job")
    assert result.exit_code == 0 and result.stdout.strip() == ""


def test_subcommand_job_names_complete(site: Site) -> None:
    site.job("alpha", GOOD)
    site.job("alpine", GOOD)
    site.job("beta", GOOD)
    for command in ("run", "kill", "logs", "next"):
        env = {
            "_RUN_JOB_COMPLETE": "bash_complete",
            "COMP_WORDS": f"run-job --config {site.config_file} {command} al",
            "COMP_CWORD": "4",
        }
        result = CliRunner().invoke(run_job, [], env=env, prog_name="run-job")
        assert result.stdout.split() == ["plain,alpha", "plain,alpine"], command


def complete(site: Site, words: str) -> list[str]:
    """What bash completion offers for the last word of ``run-job --config PATH words``."""
    line = f"run-job --config {site.config_file} {words}"
    env = {"_RUN_JOB_COMPLETE": "bash_complete", "COMP_WORDS": line,
           "COMP_CWORD": str(len(line.split()) - (0 if line.endswith(" ") else 1))}
    return CliRunner().invoke(run_job, [], env=env, prog_name="run-job").stdout.split()


def test_command_names_complete_and_files_after_validate(site: Site) -> None:
    assert complete(site, "l") == ["plain,list", "plain,logs"]
    assert complete(site, "") == [f"plain,{name}" for name in COMMANDS]
    assert complete(site, "--validate jo") == ["file,jo"]


# -- direct backend: status, json, logs --------------------------------------------


def test_status_json_on_the_direct_backend(site: Site) -> None:
    direct_site(site)
    site.job("good", GOOD + "tag: [a, b]\n")
    site.job("fails", "name: Fails\ncommand: /bin/false\n")
    site.job("broken", "name: [\n")
    invoke(site, "-j", "good")
    invoke(site, "-j", "fails")
    code, out, err = invoke(site, "--status", "--json")
    assert code == 0
    document = json.loads(out)
    assert document["backend"] == "direct"
    jobs = {job["slug"]: job for job in document["jobs"]}
    assert list(jobs) == ["broken", "fails", "good"]
    assert (jobs["good"]["state"], jobs["good"]["last_status"]) == ("idle", "success")
    assert jobs["good"]["tags"] == ["a", "b"]
    assert jobs["good"]["last_run"]["duration_seconds"] >= 0
    assert (jobs["fails"]["state"], jobs["fails"]["last_status"]) == ("failed", "failure")
    assert jobs["broken"]["state"] == "invalid"
    assert jobs["broken"]["problems"][0].startswith(f"{site.jobs}/broken.yaml:2: (yaml)")
    assert err.startswith(f"{site.jobs}/broken.yaml:2: (yaml)")
    code, out, _ = invoke(site, "-l", "--json")  # the same document
    assert [job["slug"] for job in json.loads(out)["jobs"]] == ["broken", "fails", "good"]


def test_logs_on_the_direct_backend_print_the_run_files(site: Site) -> None:
    direct_site(site)
    site.job("talk", "name: Talk\ncommand: /bin/sh -c 'echo said $(date +%N)'\n")
    assert invoke(site, "--logs", "talk") == (
        1, "", f"run-job: talk: no log files in {site.root}/log/talk\n")
    invoke(site, "-j", "talk")
    time.sleep(1.1)  # the next run gets a file of its own second
    invoke(site, "-j", "talk")
    code, last, err = invoke(site, "--logs", "talk")
    assert code == 0 and "\tINFO\tsaid " in last
    assert err.startswith("-- run 2 of 2: ")
    code, first, err = invoke(site, "--logs", "talk", "--run", "-2")
    assert code == 0 and "\tINFO\tsaid " in first and first != last
    assert err.startswith("-- run 1 of 2: ")
    code, _, err = invoke(site, "--logs", "talk", "--run", "3")
    assert code == 1 and "no run 3: 2 log file(s)" in err


# -- --next --------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_next_prints_times_and_words(site: Site) -> None:
    site.job("weekday", "name: W\ncommand: /bin/true\nschedule: '30 2 * * mon-fri'\n")
    site.job("manual", "name: M\ncommand: /bin/true\n")
    code, out, _ = invoke(site, "--next", "weekday", "--count", "7")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "weekday: 30 2 * * mon-fri (At 02:30, Monday through Friday)"
    times = [dt.datetime.strptime(line[:19], "%Y-%m-%d %H:%M:%S") for line in lines[1:]]
    assert len(times) == 7 and times == sorted(times)
    assert all((t.hour, t.minute) == (2, 30) and t.weekday() < 5 for t in times)
    document = json.loads(invoke(site, "--next", "weekday", "--json")[1])
    assert document["description"] == "At 02:30, Monday through Friday"
    assert len(document["next"]) == 5
    assert invoke(site, "--next", "manual") == (
        1, "", "run-job: manual: the job has no schedule (it runs only by hand)\n")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_next_merges_ored_day_lines_and_words_the_and_rule(site: Site) -> None:
    site.job("either", "name: E\ncommand: /bin/true\nschedule: '0 12 13 * fri'\n")
    site.job("both", "name: B\ncommand: /bin/true\nschedule: '0 0 */2 * mon'\n")
    _, out, _ = invoke(site, "--next", "either", "--count", "10")
    times = [dt.datetime.strptime(line[:19], "%Y-%m-%d %H:%M:%S") for line in out.splitlines()[1:]]
    assert len(set(times)) == 10
    assert all(t.day == 13 or t.weekday() == 4 for t in times)
    assert "or on Friday" in out.splitlines()[0]
    # '*/2' starts with '*': Debian cron ANDs the day fields (docs/schedules.md).
    first = invoke(site, "--next", "both")[1].splitlines()
    assert "and on Monday" in first[0]
    for line in first[1:]:
        t = dt.datetime.strptime(line[:19], "%Y-%m-%d %H:%M:%S")
        assert t.weekday() == 0 and t.day % 2 == 1


def test_systemd_analyze_output_is_read_in_utc() -> None:
    text = (
        "  Original form: *-*-* 02:30:00\n"
        "Normalized form: *-*-* 02:30:00\n"
        "    Next elapse: Sun 2026-03-29 02:30:00 CEST\n"
        "       (in UTC): Sun 2026-03-29 00:30:00 UTC\n"
        "       From now: 1 day left\n"
        "       Iter. #2: Mon 2026-03-30 02:30:00 CEST\n"
        "       (in UTC): Mon 2026-03-30 00:30:00 UTC\n"
        "       Iter. #3: Tue 2026-03-31 00:30:00 UTC\n"
    )
    assert parse_calendar(text) == [
        dt.datetime(2026, 3, 29, 0, 30, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 30, 0, 30, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 31, 0, 30, tzinfo=dt.UTC),
    ]


# -- what a finished unit means ------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "code", "status", "timeout", "expected"),
    [
        ("success", 1, 0, 0.0, (0, None)),
        ("exit-code", 1, 3, 0.0, (3, "Job failed with code 3")),
        ("exit-code", 1, 300, 0.0, (1, "Job failed with code 300")),
        ("timeout", 2, 15, 10.0, (1, "Job timed out after 10 minutes")),
        ("timeout", 2, 15, 0.005, (1, "Job timed out after 0.005 minutes")),
        ("signal", 2, 15, 0.0, (143, "Job was killed by signal SIGTERM")),
        ("core-dump", 3, 11, 0.0, (139, "Job was killed by signal SIGSEGV (core dumped)")),
        ("oom-kill", 2, 9, 0.0, (137, "Job was killed by the out-of-memory killer")),
        ("resources", 0, 0, 0.0, (1, "Job failed: systemd reports resources")),
    ],
)
def test_unit_results_become_an_exit_status_and_one_line(
    result: str, code: int, status: int, timeout: float, expected: tuple[int, str | None]
) -> None:
    done = outcome("Job", result, code, status, timeout)
    assert (done.exit_status, done.reason) == expected
    assert done.status == ("success" if result == "success" else "failure")


# -- the status text ---------------------------------------------------------------


def test_status_text_keeps_the_original_lines_byte_for_byte(site: Site) -> None:
    site.job("multi", "name: Multi job\ncommand: /bin/true\ntag: [database, queue]\n"
             "description: Does\n  several things.\n")
    job = find_job(site.config(), "multi")
    summary = Summary.of(job)
    # the original's format: "slug - Name", a tab and {pid..} while running,
    # then description, tags and last status, each indented with a tab
    body = "\tDoes several things.\n\ttags: database, queue\n"
    cases = [
        (JobInfo(summary, State.RUNNING, pid=42),
         "multi - Multi job\t{pid: 42, status: running}\n" + body + "\tlast status: unknown\n"),
        (JobInfo(summary, State.IDLE, last_run=LastRun("success")),
         "multi - Multi job\n" + body + "\tlast status: success\n"),
        (JobInfo(Summary("bad", None, problems=("x",)), State.INVALID),
         "bad ***Invalid configuration***\n"),
    ]
    for info, expected in cases:
        assert "".join(f"{t}\n" for t in report.original_lines(info)) == expected


def test_status_text_adds_state_last_and_next_run() -> None:
    start = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    info = JobInfo(
        Summary("j", "J", schedule="0 * * * *"), State.FAILED,
        last_run=LastRun("failure", start, start + dt.timedelta(seconds=75), "J failed with code 2"),
        next_run=start + dt.timedelta(hours=1),
    )
    lines = report.format_status("systemd", [info]).splitlines()
    assert lines[0:2] == ["j - J", "\tlast status: failure"]
    assert lines[2] == "\tstate: failed"
    assert lines[3] == (f"\tlast run: {report.when(start)}, took 1 min 15 s: "
                        "failure (J failed with code 2)")
    assert lines[4] == f"\tnext run: {report.when(start + dt.timedelta(hours=1))}"


# A job file in the original's format (its job.example.yaml's keys and style).
ORIGINAL_JOB = """\
# Job run from cron by process-control.
name: Nightly audit parse
description: Parses the audit files
command:
    - /bin/true
    - /bin/false
schedule: "30 2 * * *"
timeout: 10
tag:
    - audit
    - nightly
"""


def status_block(out: str, slug: str) -> list[str]:
    """A job's lines in ``--status``: its first line and the tab-indented ones after it."""
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(f"{slug} - "))
    end = next((i for i in range(at + 1, len(lines)) if not lines[i].startswith("\t")),
               len(lines))
    return lines[at:end]


def test_status_text_on_a_cron_host_is_the_original_s_with_reason_and_next_run(
    site: Site,
) -> None:
    direct_site(site)
    site.job("audit_parse", ORIGINAL_JOB)
    site.job("manual", "name: By hand\ncommand: /bin/true\n")
    site.job("off", ORIGINAL_JOB.replace("timeout: 10", "disabled: true"))
    invoke(site, "-j", "audit_parse")
    before = dt.datetime.now(dt.UTC)
    code, out, _ = invoke(site, "--status", env={"TZ": "Europe/Berlin"})
    assert code == 0
    lines = status_block(out, "audit_parse")
    # the original's lines, tab-indented as it printed them: scripts split on "\t"
    assert lines[:4] == ["audit_parse - Nightly audit parse", "\tParses the audit files",
                         "\ttags: audit, nightly", "\tlast status: failure"]
    assert lines[4] == "\tstate: failed"
    assert lines[5].startswith("\tlast run: ")
    assert lines[5].endswith(": failure (Nightly audit parse failed with code 1)")
    # next run: 02:30 in the host's zone (TZ), from the schedule, as cron runs it
    assert lines[6].startswith("\tnext run: ")
    berlin = ZoneInfo("Europe/Berlin")
    expected = next_fire(parse_schedule("30 2 * * *"), before, berlin)
    assert expected is not None
    assert lines[6] == "\tnext run: " + report.when(expected)
    assert expected.astimezone(berlin).strftime("%H:%M") in ("02:30", "03:00")
    assert all(line.startswith("\t") for line in lines[1:])
    assert "\n    " not in out
    # unscheduled or disabled: no next run on a cron host
    assert not any("next run" in line for line in status_block(out, "manual"))
    assert not any("next run" in line for line in status_block(out, "off"))
    code, out, _ = invoke(site, "--status", "--json", env={"TZ": "Europe/Berlin"})
    job = {j["slug"]: j for j in json.loads(out)["jobs"]}["audit_parse"]
    assert job["last_run"]["reason"] == "Nightly audit parse failed with code 1"
    assert job["next_run"] is not None


def test_next_run_on_a_cron_host_is_in_the_hosts_zone_as_cron_runs_it(site: Site) -> None:
    # The cron file has no zone (it is the original's, byte for byte): cron
    # reads every schedule in the host's, whatever the job's timezone: says.
    direct_site(site)
    site.job("tokyo", ORIGINAL_JOB.replace('"30 2 * * *"', '"0 9 * * *"')
             + "timezone: Asia/Tokyo\n")
    code, out, _ = invoke(site, "--status", "--json", env={"TZ": "Europe/Berlin"})
    assert code == 0
    (job,) = json.loads(out)["jobs"]
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    assert dt.datetime.fromisoformat(job["next_run"]).astimezone(berlin).time() == dt.time(9, 0)


# -- the summary cache -------------------------------------------------------------


def test_summaries_are_cached_until_a_file_changes(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(file_cache, "SETTLE_NS", 0)  # the files here are brand new
    site.job("a", GOOD)
    site.job("b", GOOD)
    config = site.config()
    first, _ = catalog.read_catalog(config, lambda: None)
    assert [s.name for s in first.summaries] == ["Good", "Good"]
    assert os.path.exists(file_cache.Cache(catalog.KIND, config.path).path)
    reads = record_reads(monkeypatch, catalog, "_read")
    again, _ = catalog.read_catalog(config, lambda: None)
    assert again == first and reads == []
    site.job("b", "name: Changed\ncommand: /bin/true\n")
    changed, _ = catalog.read_catalog(config, lambda: None)
    assert reads == [["b.yaml"]]
    assert [s.name for s in changed.summaries] == ["Good", "Changed"]
    site.job("b", "name: [\n")
    broken, _ = catalog.read_catalog(config, lambda: None)
    assert broken.summaries[1].name is None and broken.problems


# -- direct backend: files a job can plant -------------------------------------------


def ran_once(site: Site) -> Path:
    """A direct-backend job that has run once; its log directory."""
    direct_site(site)
    site.job("talk", "name: Talk\ncommand: /bin/echo said\n")
    assert invoke(site, "-j", "talk")[0] == 0
    return site.root / "log" / "talk"


def test_logs_never_follow_a_planted_symlink(site: Site) -> None:
    logs = ran_once(site)
    secret = site.root / "shadow"
    secret.write_text("root:SECRET:19000::::::\n")
    planted = logs / "talk-20990101-000000.log"  # the newest by name
    planted.symlink_to(secret)
    code, out, err = invoke(site, "--logs", "talk")
    assert (code, out) == (2, "")
    assert err.endswith(f"run-job: {planted}: is a symlink\n")
    assert "SECRET" not in out + err


def test_logs_do_not_hang_on_a_fifo(site: Site) -> None:
    logs = ran_once(site)
    os.mkfifo(logs / "talk-20990101-000000.log")
    code, out, err = within(10, lambda: invoke(site, "--logs", "talk"))
    assert (code, out) == (2, "")
    assert err.endswith("talk-20990101-000000.log: not a regular file\n")


def test_logs_refuse_a_log_directory_swapped_for_a_symlink(site: Site) -> None:
    logs = ran_once(site)
    elsewhere = site.root / "elsewhere"
    logs.rename(elsewhere)
    logs.symlink_to(elsewhere)
    code, out, err = invoke(site, "--logs", "talk")
    assert (code, out) == (1, "")
    assert err == f"run-job: {logs}: not a directory (a symlink?)\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_logs_show_only_the_service_users_files(site: Site) -> None:
    logs = ran_once(site)
    (log,) = logs.iterdir()
    os.chown(log, 65534, 65534)
    code, out, err = invoke(site, "--logs", "talk")
    assert (code, out) == (2, "")
    assert err.endswith(f"run-job: {log}: owned by uid 65534, not by uid {os.geteuid()}\n")


def test_logs_of_a_run_still_writing_end_where_the_file_ended(site: Site) -> None:
    logs = ran_once(site)
    (log,) = logs.iterdir()
    size = log.stat().st_size
    code, out, _ = invoke(site, "--logs", "talk")
    assert code == 0 and len(out.encode()) == size


def test_status_and_a_run_survive_a_poisoned_history(site: Site) -> None:
    direct_site(site)
    site.job("talk", "name: Talk\ncommand: /bin/true\n")
    (site.root / "state").mkdir()
    history = site.root / "state" / "talk.yaml"
    history.write_text("history:\n- {status: failed, time: 0000-01-01 00:00:00}\n")
    code, out, _ = invoke(site, "--status")
    assert code == 0 and "note: unreadable run history" in out
    code, out, _ = invoke(site, "-j", "talk")
    assert code == 0
    assert out == f"run-job: {history}: unreadable run history (unusable value: year 0 is " \
                  "out of range); kept as .corrupt, starting a new one\n"
    code, out, _ = invoke(site, "--status")
    assert code == 0 and "last status: success" in out and "note:" not in out


# -- every action two ways: its command, and the flags of before ------------------


COMMANDS = ["run", "kill", "list", "status", "logs", "next", "validate", "schema", "reload",
            "install-generator", "uninstall-generator", "disable-group", "enable-group", "reset",
            "export"]


@pytest.fixture
def ran(site: Site) -> Site:
    """A direct-backend site where talk ran once and warm's slow start
    (/bin/true; its command is /bin/false)."""
    direct_site(site)
    site.job("talk", "name: Talk\ncommand: /bin/echo said\n")
    site.job("fails", "name: Fails\ncommand: /bin/false\n")
    site.job("warm", "name: Warm\ncommand: /bin/false\nslow_start_command: /bin/true\n")
    site.job("manual", "name: M\ncommand: /bin/true\n")
    site.job("broken", "name: [\n")
    site.job("status", GOOD)  # a job named like a command
    assert invoke(site, "-j", "talk")[0] == 0
    assert invoke(site, "-j", "warm", "-w")[0] == 0
    return site


@pytest.mark.parametrize(
    ("flags", "command", "code"),
    [
        (["-j", "talk"], ["run", "talk"], 0),
        (["--job", "fails"], ["run", "fails"], 1),
        (["-j", "warm"], ["run", "warm"], 1),
        (["-j", "warm", "-w"], ["run", "warm", "--slow-start"], 0),
        (["--slow-start", "warm"], ["run", "-w", "warm"], 0),
        (["-j", "talk", "--slow-start"], ["run", "talk", "-w"], 2),
        (["-j", "nope"], ["run", "nope"], 2),
        (["-j", "../etc/passwd"], ["run", "../etc/passwd"], 2),
        (["-j", "status"], ["run", "status"], 0),
        (["-k", "talk"], ["kill", "talk"], 1),
        (["--kill-job", "nope"], ["kill", "nope"], 2),
        (["-l"], ["list"], 0),
        (["--list-jobs", "--only-running"], ["list", "-r"], 0),
        (["-l", "--json"], ["list", "--json"], 0),
        (["-l", "-r", "--json"], ["list", "--only-running", "--json"], 0),
        (["-s"], ["status"], 0),
        (["-s", "-l"], ["status"], 0),
        (["--status", "-r"], ["status", "--only-running"], 0),
        (["-s", "--json"], ["status", "--json"], 0),
        (["--logs", "talk"], ["logs", "talk"], 0),
        (["--logs", "talk", "--run", "1"], ["logs", "talk", "--run", "1"], 0),
        (["--logs", "talk", "--run", "-3"], ["logs", "talk", "--run", "-3"], 1),
        (["--logs", "warm", "-w"], ["logs", "warm", "--slow-start"], 0),
        (["--logs", "nope"], ["logs", "nope"], 2),
        (["--next", "manual"], ["next", "manual"], 1),
        (["--next", "nope", "--count", "2"], ["next", "nope", "--count", "2"], 2),
        (["--validate"], ["validate"], 1),
        (["--validate", "--strict"], ["validate", "--strict"], 1),
        (["{jobs}/talk.yaml", "--validate"], ["validate", "{jobs}/talk.yaml"], 0),
        (["--validate", "{jobs}/talk.yaml", "{jobs}/broken.yaml"],
         ["validate", "{jobs}/talk.yaml", "{jobs}/broken.yaml"], 1),
    ],
)
def test_every_flag_does_what_its_command_does(
    ran: Site, flags: list[str], command: list[str], code: int
) -> None:
    def fill(args: list[str]) -> list[str]:
        return [arg.format(jobs=ran.jobs) for arg in args]

    result = both(ran, fill(flags), fill(command))
    assert result[0] == code, result


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_next_two_ways(site: Site) -> None:
    site.job("weekday", "name: W\ncommand: /bin/true\nschedule: '30 2 * * mon-fri'\n")
    code, out, _ = both(site, ["--next", "weekday", "--count", "3"],
                        ["next", "weekday", "--count", "3"])
    assert code == 0 and len(out.splitlines()) == 4
    code, out, _ = both(site, ["--next", "weekday", "--json"], ["next", "--json", "weekday"])
    assert code == 0 and len(json.loads(out)["next"]) == 5


def test_reload_and_the_generator_two_ways(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """What these print around the library calls, the calls stood in for
    (tests/test_cli_systemd.py runs them on a real systemd)."""
    from pc_systemd.systemd import bus, generator, install

    monkeypatch.setattr(generator, "refresh_cache", lambda *_: ["x.yaml:1: job: problem"])
    monkeypatch.setattr(bus, "reload_and_apply",
                        lambda: bus.Applied(("a.timer",), ("c.timer",)))
    monkeypatch.setattr(install, "install", lambda: "/etc/systemd/system-generators/pcg")
    monkeypatch.setattr(install, "uninstall", lambda: None)
    assert both(site, ["--reload"], ["reload"]) == (
        1, "started a.timer\nstopped c.timer\n", "x.yaml:1: job: problem\n")
    assert both(site, ["--install-generator"], ["install-generator"]) == (
        0, "installed /etc/systemd/system-generators/pcg\nstarted a.timer\nstopped c.timer\n", "")
    assert both(site, ["--uninstall-generator"], ["uninstall-generator"]) == (
        0, "the generator was not installed\nstarted a.timer\nstopped c.timer\n", "")


def test_the_module_runs_as_the_reload_unit_starts_it(site: Site) -> None:
    """The generated reload unit runs ``python -m pc_systemd.cli.run_job
    --config PATH --reload``; --validate is the same path without systemd."""
    site.job("bad", "name: Bad\ncommand: /bin/true\ntimeout: -5\n")
    results = [
        subprocess.run([sys.executable, "-m", "pc_systemd.cli.run_job",
                        "--config", str(site.config_file), *args],
                       capture_output=True, text=True, check=False)
        for args in (["--validate"], ["validate"])
    ]
    assert [(r.returncode, r.stdout) for r in results] == [
        (1, f"{site.jobs}/bad.yaml:3: timeout: must be a number of minutes >= 0, got -5\n")] * 2
    assert results[0].stderr == results[1].stderr != ""


def test_help_lists_the_commands_and_every_flag(site: Site) -> None:
    code, out, err = invoke(site, "--help")
    assert (code, err) == (0, "")
    assert out.startswith("Usage: run-job [OPTIONS] [COMMAND] [ARGS]...\n")
    commands = out.split("\nCommands:\n")[1].split("\n\n")[0]
    assert [line[2:].split("  ")[0] for line in commands.splitlines()
            if not line.startswith("   ")] == [
        "run NAME [-w] [--scheduled] [--raw]", "kill NAME [--tag TAG]", "list [-r] [--json] [--tag TAG]",
        "status [-r] [--json] [--tag TAG]",
        "logs NAME [--run N] [-w] [-f] [--raw]", "next NAME [--count N] [--json]",
        "validate [--strict] [FILES]...", "schema [--strict]", "reload", "install-generator",
        "uninstall-generator", "disable-group TAG", "enable-group TAG", "reset NAME",
        "export kubernetes [--output DIR]",
    ]
    flags = out.split("\nFlags (as the commands):\n")[1]
    for flag in ("-j, --job NAME", "-w, --slow-start [NAME]", "--scheduled", "-k, --kill-job NAME",
                 "-l, --list-jobs", "-s, --status", "-r, --only-running", "--json",
                 "--logs NAME", "--run N", "--next NAME", "--count N", "--validate",
                 "--strict", "--reload", "--install-generator", "--uninstall-generator",
                 "--tag TAG", "--disable-group TAG", "--enable-group TAG", "--reset NAME",
                 "--raw"):
        assert f"\n  {flag}  " in f"\n{flags}", flag
    assert invoke(site, "-h")[1] == out


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        ("run", ["run-job run [OPTIONS] NAME", "-w, --slow-start"]),
        ("kill", ["run-job kill [OPTIONS] [NAME]", "--tag TAG"]),
        ("list", ["-r, --only-running", "--json"]),
        ("status", ["-r, --only-running", "--json"]),
        ("logs", ["run-job logs [OPTIONS] NAME", "--run N", "[default: -1]", "-w, --slow-start"]),
        ("next", ["run-job next [OPTIONS] NAME", "--count N", "--json"]),
        ("validate", ["run-job validate [OPTIONS] [FILES]...", "--strict"]),
        ("schema", ["run-job schema [OPTIONS]", "--strict", "JSON Schema"]),
        ("reload", ["Regenerates the units"]),
        ("install-generator", ["Install the systemd generator"]),
        ("uninstall-generator", ["Remove the systemd generator"]),
    ],
)
def test_each_command_has_its_own_help(site: Site, command: str, shown: list[str]) -> None:
    code, out, _ = invoke(site, command, "--help")
    assert code == 0
    for text in shown:
        assert text in out
    assert "--kill-job" not in out and "--validate" not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["status", "--run", "2"], "No such option"),
        (["list", "--count", "3"], "No such option"),
        (["validate", "--json"], "No such option"),
        (["run", "a", "--json"], "No such option"),
        (["reload", "--strict"], "No such option"),
        (["run"], "Missing argument 'NAME'"),
        (["logs"], "Missing argument 'NAME'"),
        (["kill", "a", "b"], "unexpected extra argument (b)"),
        (["next", "a", "--count", "0"], "Invalid value for '--count'"),
        (["logs", "a", "--run", "x"], "Invalid value for '--run'"),
    ],
)
def test_a_command_takes_only_its_own_options(site: Site, args: list[str], message: str) -> None:
    code, out, err = invoke(site, *args)
    assert (code, out) == (2, "")
    assert err.startswith(f"Usage: run-job {args[0]} [OPTIONS]")
    assert message in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-r"], "-r/--only-running goes with"),
        (["foo"], "FILES are only taken with --validate"),
        (["-s", "status"], "FILES are only taken with --validate"),  # flags, then a word
        (["-j", "a", "-k", "a"], "choose one action"),
        (["--count", "0", "--next", "a"], "Invalid value for '--count'"),
    ],
)
def test_flag_errors_keep_their_usage_line(site: Site, args: list[str], message: str) -> None:
    code, out, err = invoke(site, *args)
    assert (code, out) == (2, "")
    assert err.startswith("Usage: run-job [OPTIONS] [FILES]...\n")
    assert message in err
