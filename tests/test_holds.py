"""Holds, our side: the hold directory's names, the generator leaving a
held job's timer unwanted (cold and cached), a hold directory that cannot
be trusted, and the direct backend (cron hosts): scheduled runs of a held
job skipped, runs by hand kept, reset. On the real systemd:
tests/test_holds_systemd.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pc_systemd.cli.run_job import run_job
from pc_systemd.model import file_cache, holds
from pc_systemd.model.writers import identity
from pc_systemd.systemd import generator
from tests.conftest import Site

PYTHON = "/opt/pc/bin/python"
BIN = Path(sys.executable).parent  # the test virtualenv's run-job and check-jobs-icinga
NOBODY = 65534


def invoke(site: Site, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(run_job, ["--config", str(site.config_file), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def hold_dir(site: Site) -> Path:
    path = site.root / "holds"
    path.mkdir(mode=0o2775)
    return path


def test_tags_become_unambiguous_file_names() -> None:
    assert holds.group_file("batch-2_x") == "group.batch-2_x"
    assert holds.group_file("a.b/c d") == "group.a%2Eb%2Fc%20d"
    assert holds.group_file("..") == "group.%2E%2E"
    assert holds.group_file("é") == "group.%C3%A9"
    assert holds.keys("job", ["a", "b c"]) == ("stopped.job", "group.a", "group.b%20c")
    with pytest.raises(holds.HoldError):
        holds.group_file("x" * 250)
    assert holds.keys("job", ["x" * 250]) == ("stopped.job",)  # cannot be held: no name


def wants(out: Path) -> list[str]:
    return sorted(os.listdir(out / "timers.target.wants"))


def generate(site: Site, out: Path, cache: bool = True) -> list[str]:
    messages: list[str] = []
    assert generator.generate(str(out), lambda _l, m: messages.append(m), str(site.config_file),
                              PYTHON, cache=cache) == 0
    return messages


@pytest.mark.parametrize("cached", [False, True])
def test_the_generator_leaves_held_timers_unwanted(
    site: Site, hold_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cached: bool
) -> None:
    monkeypatch.setattr(file_cache, "SETTLE_NS", 0)
    site.configure(f"hold_directory: {hold_dir}\n")
    site.job("a", "name: A\ncommand: /bin/true\nschedule: '* * * * *'\ntag: [x, 'b c']\n")
    site.job("b", "name: B\ncommand: /bin/true\nschedule: '* * * * *'\ntag: x\n")
    site.job("c", "name: C\ncommand: /bin/true\nschedule: '* * * * *'\n")
    if cached:
        assert generator.refresh_cache(str(site.config_file), PYTHON) == []
    generate(site, tmp_path / "o1", cached)
    assert wants(tmp_path / "o1") == [f"process-control-{s}.timer" for s in "abc"]
    (hold_dir / "group.b%20c").write_text("")
    (hold_dir / "stopped.c").write_text("2\n")
    messages = generate(site, tmp_path / "o2", cached)
    assert wants(tmp_path / "o2") == ["process-control-b.timer"]
    assert (tmp_path / "o2" / "process-control-a.timer").exists()  # written, not wanted
    assert messages[-1].endswith("(3 unchanged file(s) from the cache)") == cached
    (hold_dir / "group.x").write_text("")
    (hold_dir / "group.b%20c").unlink()
    (hold_dir / "stopped.c").unlink()
    generate(site, tmp_path / "o3", cached)
    assert wants(tmp_path / "o3") == ["process-control-c.timer"]


def test_a_hold_directory_others_could_change_holds_nothing(
    site: Site, hold_dir: Path, tmp_path: Path
) -> None:
    site.configure(f"hold_directory: {hold_dir}\n")
    site.job("a", "name: A\ncommand: /bin/true\nschedule: '* * * * *'\ntag: x\n")
    (hold_dir / "group.x").write_text("")
    generate(site, tmp_path / "held")
    assert wants(tmp_path / "held") == []
    os.chmod(hold_dir, 0o2777)
    messages = generate(site, tmp_path / "open")
    assert wants(tmp_path / "open") == ["process-control-a.timer"]
    assert f"hold_directory {hold_dir}: writable by everyone: no job is held" in messages
    os.chmod(hold_dir, 0o2775)
    os.chown(hold_dir, NOBODY, -1)  # the service user's (or anyone's but root's)
    messages = generate(site, tmp_path / "owned")
    assert any("not root: no job is held" in m for m in messages), messages
    os.chown(hold_dir, 0, -1)
    link = site.root / "link"
    link.symlink_to(hold_dir)
    site.configure(f"hold_directory: {link}\n")
    messages = generate(site, tmp_path / "link")
    assert wants(tmp_path / "link") == ["process-control-a.timer"]
    assert any(m.startswith(f"hold_directory {link}: ") for m in messages), messages


def test_status_json_and_next_run_show_the_hold(site: Site, hold_dir: Path) -> None:
    site.configure_direct(f"hold_directory: {hold_dir}\n")
    site.job("a", "name: A\ncommand: /bin/true\nschedule: '0 3 * * *'\ntag: x\n")
    site.job("b", "name: B\ncommand: /bin/true\nschedule: '0 3 * * *'\n")
    code, out, err = invoke(site, "disable-group", "x")
    assert (code, out) == (0, "group x disabled: 1 job(s): a\n"), err
    assert invoke(site, "--disable-group", "x")[1] == "group x was already disabled: 1 job(s): a\n"
    assert (hold_dir / "group.x").read_text().endswith(" root\n")
    code, out, _err = invoke(site, "status")
    assert "a - A\n" in out and "\tscheduling: disabled by group x\n\tnext run: none (held)\n" in out
    assert out.count("scheduling:") == 1
    assert invoke(site, "status", "--tag", "x")[1].startswith("a - A\n")
    assert "b - B" not in invoke(site, "-s", "--tag", "x")[1]
    assert invoke(site, "list", "--tag", "x")[1] == "a\n"
    assert '"hold": "disabled by group x"' in invoke(site, "status", "--json")[1]
    code, out, _err = invoke(site, "enable-group", "x")
    assert (code, out) == (0, "group x enabled: 1 job(s)\n")
    assert "scheduling:" not in invoke(site, "status")[1]
    assert invoke(site, "enable-group", "x") == (1, "", "run-job: group x is not disabled\n")


def test_a_missing_hold_directory_is_one_line(site: Site) -> None:
    site.configure_direct(f"hold_directory: {site.root / 'none'}\n")
    code, out, err = invoke(site, "disable-group", "x")
    assert (code, out) == (2, "")
    assert err.startswith(f"run-job: {site.root / 'none'} does not exist")


# -- the direct backend: the cron line's form is skipped, by hand runs -----------------


def runjob(site: Site, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "run-job"), "--config", str(site.config_file), *args],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False,
                          timeout=60)


def test_cron_runs_of_a_disabled_group_are_skipped_runs_by_hand_are_not(
    site: Site, hold_dir: Path
) -> None:
    marker = site.root / "ran"
    site.configure_direct(f"hold_directory: {hold_dir}\n")
    site.job("a", f"name: A\ncommand: /usr/bin/touch {marker}\nschedule: '0 3 * * *'\ntag: x\n")
    (hold_dir / "group.x").write_text("")
    done = runjob(site, "--job", "a")  # what the cron line runs
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")  # cron mails nothing
    assert not marker.exists()
    done = runjob(site, "run", "a")
    assert done.returncode == 0 and marker.exists(), done.stderr
    (hold_dir / "group.x").unlink()
    marker.unlink()
    assert runjob(site, "--job", "a").returncode == 0 and marker.exists()


def icinga_line(site: Site) -> tuple[int, str]:
    done = subprocess.run([str(BIN / "check-jobs-icinga"), "--config",
                           str(site.config_file)], capture_output=True, text=True, check=False)
    return done.returncode, done.stdout.strip()


def test_cron_hosts_stop_after_failures_from_the_history_and_reset(
    site: Site, hold_dir: Path
) -> None:
    flag = site.root / "ok"
    prom = site.root / "pc.prom"
    site.configure_direct(f"hold_directory: {hold_dir}\nmetrics_file: {prom}\n")
    site.job("f", f"name: F\ncommand: /usr/bin/test -e {flag}\nschedule: '0 3 * * *'\n"
                  "stop_after_failures: 2\n")
    assert runjob(site, "--job", "f").returncode == 1
    assert icinga_line(site) == (2, "FAILING JOBS: f | ok=0 failing=1 running=0 invalid=0 stale=0")
    assert runjob(site, "--job", "f").returncode == 1
    status = runjob(site, "status").stdout
    assert "\tscheduling: stopped after 2 consecutive failures (run-job reset f)\n" in status
    done = runjob(site, "--job", "f")
    assert (done.returncode, done.stderr) == (0, "")  # skipped: no third failure
    assert "stopped after 2 consecutive" in runjob(site, "status").stdout
    assert 'process_control_job_stopped{job="f"} 1\n' in prom.read_text()
    code, line = icinga_line(site)
    assert code == 2 and line.startswith("FAILING JOBS: f; stopped after repeated failures: f |")
    # by hand it runs (and fails: the count goes on)
    assert runjob(site, "run", "f").returncode == 1
    assert "stopped after 3 consecutive" in runjob(site, "status").stdout
    done = runjob(site, "reset", "f")
    assert (done.returncode, done.stdout) == (0, "f: failure count reset\n"), done.stderr
    assert "scheduling:" not in runjob(site, "status").stdout
    assert 'process_control_job_stopped{job="f"} 0\n' in prom.read_text()
    flag.write_text("")
    assert runjob(site, "--job", "f").returncode == 0


def test_reset_on_a_cron_host_is_the_service_users_alone(site: Site, hold_dir: Path) -> None:
    # root's reset would have found the history not its own, replaced it, and
    # left it and its lock root's: the runner could then record no run
    site.configure(f"backend: direct\nuser: nobody\nhold_directory: {hold_dir}\n"
                   f"state_directory: {site.root / 'state'}\n")
    site.job("f", "name: F\ncommand: /bin/false\n")
    done = runjob(site, "reset", "f")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("run-job: jobs run as user 'nobody' (uid ")
    assert "use `sudo -u nobody run-job ...`" in done.stderr
    assert not (site.root / "state").exists()


# -- the hold directory as input from other users ---------------------------------------


def test_names_that_are_no_hold_and_odd_files_change_nothing(
    site: Site, hold_dir: Path, tmp_path: Path
) -> None:
    site.configure(f"hold_directory: {hold_dir}\n")
    site.job("a", "name: A\ncommand: /bin/true\nschedule: '* * * * *'\ntag: x\n")
    os.mkfifo(hold_dir / "stopped.b")  # a FIFO: its name holds b, nothing reads it
    (hold_dir / "group.X").write_text("")  # tags are case-sensitive
    (hold_dir / "group.x.").write_text("")
    os.symlink("/etc/shadow", hold_dir / "reset.a")
    os.mkdir(hold_dir / "group.y")
    (hold_dir / os.fsdecode(b"group.\xff")).write_text("")
    generate(site, tmp_path / "out")
    assert wants(tmp_path / "out") == ["process-control-a.timer"]
    assert holds.stop_count(str(hold_dir), "b") == 0  # held, by its name; no number read
    assert holds.reset_time(str(hold_dir), "a") is None  # a symlink is not followed
    os.symlink("/nonexistent", hold_dir / "group.x")  # a dangling link still names the hold
    generate(site, tmp_path / "held")
    assert wants(tmp_path / "held") == []


def test_a_hold_directory_of_too_many_names_is_not_read(
    site: Site, hold_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(holds, "MAX_ENTRIES", 50)
    for n in range(50):
        (hold_dir / f"junk{n}").write_text("")
    assert holds.list_names(str(hold_dir), str(os.geteuid()), identity(str(os.geteuid())))[1] is None
    (hold_dir / "group.x").write_text("")
    names, why = holds.list_names(str(hold_dir), str(os.geteuid()), identity(str(os.geteuid())))
    assert names == frozenset() and why == f"{hold_dir}: more than 50 entries: no job is held"


def test_the_failure_mail_says_the_job_was_stopped(site: Site) -> None:
    from pc_systemd.model.jobset import find_job
    from pc_systemd.monitoring import mail

    site.job("f", "name: F\ncommand: /bin/false\nstop_after_failures: 2\n"
                  "failmail: {from_address: a@example.org, to_address: b@example.org}\n")
    job = find_job(site.config(), "f")
    output = mail.RunOutput(("x",), ())
    text = mail.body(job, "host", mail.FailedRun("F failed with code 1", 2, output, stopped=True))
    assert ("Stopped: after 2 consecutive failures the job is no longer scheduled "
            "(stop_after_failures); runs by hand still work.\n"
            "         `run-job reset f` schedules it again.\n") in text
    assert "Stopped:" not in mail.body(job, "host", mail.FailedRun("F failed", 1, output))


def test_kill_by_tag_stops_only_that_groups_jobs(site: Site) -> None:
    site.configure_direct()
    site.job("a", "name: A\ncommand: /bin/true\ntag: x\n")
    site.job("b", "name: B\ncommand: /bin/true\ntag: [y, x]\n")
    site.job("c", "name: C\ncommand: /bin/true\n")
    assert invoke(site, "kill", "--tag", "x") == (
        0, "A (a) is not running\nB (b) is not running\n", "")
    assert invoke(site, "kill", "--tag", "nobody") == (0, "", "")
    assert invoke(site, "kill", "c", "--tag", "x") == (
        1, "", "run-job: c has no tag 'x': not stopped\n")
    assert invoke(site, "kill") == (2, "", "run-job: kill needs a job NAME or --tag TAG\n")
    assert invoke(site, "-k", "a", "--tag", "x")[0] == 1  # not running, as kill NAME says
    code, _out, err = invoke(site, "-l", "--tag", "x", "-j", "a")
    assert code == 2 and "choose one action" in err
    code, _out, err = invoke(site, "--tag", "x", "--next", "a")
    assert code == 2 and "--tag goes with -l/--list-jobs, -s/--status or -k/--kill-job" in err
