"""catch_up and random_delay without a running systemd: the keys, the timer
lines, the cron file, validate, and the direct runner's wait (real
processes). tests/test_catchup_systemd.py shows what systemd does with them."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from pc_systemd.cli.cron_generate import main as cron_generate
from pc_systemd.cli.run_job import run_job
from pc_systemd.cron import direct
from pc_systemd.cron import history as hist
from pc_systemd.model.errors import PcError
from pc_systemd.model.job import load_job
from pc_systemd.systemd.units import Renderer
from tests.conftest import Site

BASE = "name: J\ncommand: /bin/true\nschedule: '*/5 * * * *'\n"
TIMER_KEYS = ("Persistent=", "RandomizedDelaySec=", "FixedRandomDelay=")


def timer_text(site: Site, extra: str, slug: str = "job") -> str:
    site.configure("user: nobody\n")
    job = load_job(str(site.job(slug, BASE + extra)), site.config())
    (timer,) = [u for u in Renderer(site.config()).job_units(job) if u.name.endswith(".timer")]
    return timer.text


def settings(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(TIMER_KEYS)]


# -- the keys ----------------------------------------------------------------------


def test_defaults_are_no_catch_up_and_no_delay(site: Site) -> None:
    job = load_job(str(site.job("job", BASE)), site.config())
    assert (job.catch_up, job.random_delay) == (False, 0.0)


@pytest.mark.parametrize(("value", "minutes"), [("0", 0.0), ("2.5", 2.5), ("1440", 1440.0),
                                                ("0.0125", 0.0125)])
def test_random_delay_takes_minutes_up_to_a_day(site: Site, value: str, minutes: float) -> None:
    job = load_job(str(site.job("job", BASE + f"random_delay: {value}\n")), site.config())
    assert job.random_delay == minutes


@pytest.mark.parametrize(("text", "problem"), [
    ("random_delay: -1\n", "random_delay: must be a number of minutes from 0 to 1440, got -1"),
    ("random_delay: 1441\n", "random_delay: must be a number of minutes from 0 to 1440, got 1441"),
    ("random_delay: .nan\n", "random_delay: must be a number of minutes from 0 to 1440"),
    ("random_delay: .inf\n", "random_delay: must be a number of minutes from 0 to 1440"),
    ("random_delay: '5'\n", "random_delay: expected a number, got a string"),
    ("random_delay: true\n", "random_delay: expected a number, got a boolean"),
    ("catch_up: 1\n", "catch_up: expected true or false, got an integer"),
    ("catch_up: 'true'\n", "catch_up: expected true or false, got a string"),
])
def test_bad_values_are_one_line_with_path_and_line(site: Site, text: str, problem: str) -> None:
    path = site.job("job", BASE + text)
    with pytest.raises(PcError) as caught:
        load_job(str(path), site.config())
    (found,) = caught.value.problems
    assert str(found).startswith(f"{path}:4: {problem}"), str(found)


# -- the timer ---------------------------------------------------------------------


def test_timer_without_the_keys_has_none_of_their_settings(site: Site) -> None:
    assert settings(timer_text(site, "")) == []
    assert settings(timer_text(site, "catch_up: false\nrandom_delay: 0\n")) == []


def test_catch_up_is_persistent(site: Site) -> None:
    assert settings(timer_text(site, "catch_up: true\n")) == ["Persistent=yes"]


def test_random_delay_is_fixed_per_host(site: Site) -> None:
    assert settings(timer_text(site, "random_delay: 2.5\n")) == [
        "RandomizedDelaySec=150s", "FixedRandomDelay=yes"]
    assert settings(timer_text(site, "random_delay: 0.0125\n")) == [
        "RandomizedDelaySec=750ms", "FixedRandomDelay=yes"]


def test_systemd_analyze_verify_accepts_the_timer(site: Site, tmp_path: Path) -> None:
    site.configure("user: nobody\n")
    job = load_job(str(site.job("both", BASE + "catch_up: true\nrandom_delay: 30\n")),
                   site.config())
    units = tmp_path / "units"
    units.mkdir()
    for unit in Renderer(site.config()).job_units(job):
        (units / unit.name).write_text(unit.text)
    result = subprocess.run(["systemd-analyze", "verify", str(units / "process-control-both.timer")],
                            capture_output=True, text=True, check=False)
    # (the service's User=nobody draws a remark of its own)
    assert result.returncode == 0
    assert [line for line in result.stderr.splitlines() if ".timer" in line] == []


# -- cron hosts: cron-generate and validate --------------------------------------


def cron_site(site: Site, defaults: str = "") -> None:
    site.configure(f"user: jenkins\nrunner_path: /usr/bin/run-job\noutput_crontab: console\n"
                   f"backend: direct\n{defaults}")


def test_cron_line_of_a_delayed_job_asks_for_the_wait(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    cron_site(site)
    site.job("a", BASE)
    site.job("b", BASE + "random_delay: 10\n")
    assert cron_generate(["--config", str(site.config_file)]) == 0
    out = capsys.readouterr().out
    assert "*/5 * * * * jenkins /usr/bin/run-job --job a\n" in out  # the original's line
    assert "*/5 * * * * jenkins /usr/bin/run-job --job b --scheduled\n" in out


def test_cron_generate_refuses_catch_up_in_one_line(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    cron_site(site)
    site.job("a", BASE)
    path = site.job("b", BASE + "catch_up: true\n")
    assert cron_generate(["--config", str(site.config_file)]) == 1
    out, err = capsys.readouterr()
    assert "# Skipping invalid job b\n" in out
    assert "run-job --job a\n" in out  # the other jobs are written
    assert err.splitlines() == [
        f"{path}:4: catch_up: cron cannot catch up runs missed while the host was down; "
        "only systemd hosts can (remove the key here)"]


def test_catch_up_from_default_job_config_points_at_the_configuration(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    cron_site(site, "default_job_config:\n  catch_up: true\n")
    site.job("a", BASE)
    assert cron_generate(["--config", str(site.config_file)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{site.config_file}:7: catch_up: cron cannot catch up"), err


def validate(site: Site, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(run_job, ["--config", str(site.config_file), "validate", *args])
    return result.exit_code, result.stdout


def test_validate_on_a_cron_host_warns_about_catch_up(site: Site) -> None:
    cron_site(site)
    path = site.job("b", BASE + "catch_up: true\n")
    code, out = validate(site)
    assert code == 0
    assert f"{path}:4: catch_up: warning: cron cannot catch up runs missed while the host " \
        "was down; only systemd hosts can (remove the key here)" in out.splitlines()
    assert validate(site, "--strict")[0] == 1


def test_validate_for_systemd_hosts_accepts_catch_up(site: Site) -> None:
    site.configure("backend: systemd\n")
    site.job("b", BASE + "catch_up: true\n")
    assert validate(site, "--strict") == (0, "")


def test_validate_warns_about_a_delay_as_long_as_the_gap_between_runs(site: Site) -> None:
    site.configure("backend: systemd\n")
    path = site.job("a", BASE + "random_delay: 5\n")
    site.job("b", BASE + "random_delay: 4.9\n")
    daily = site.job("c", "name: J\ncommand: /bin/true\nschedule: '0 3 * * *'\n"
                          "random_delay: 1380\n")
    site.job("d", "name: J\ncommand: /bin/true\nschedule: '0 3 * * *'\nrandom_delay: 1379\n")
    site.job("e", "name: J\ncommand: /bin/true\nschedule: '0 3 * * mon'\nrandom_delay: 1440\n")
    code, out = validate(site)
    assert code == 0
    assert out.splitlines() == [
        f"{path}:4: random_delay: warning: 5 minutes is not shorter than the 5 between two "
        "runs of '*/5 * * * *': on systemd hosts a run whose delay passes the next scheduled "
        "time skips that one",
        # a daylight-saving change can bring a fixed-time job's runs an hour closer
        f"{daily}:4: random_delay: warning: 1380 minutes is not shorter than the 1380 between "
        "two runs of '0 3 * * *': on systemd hosts a run whose delay passes the next scheduled "
        "time skips that one"]


# -- the direct runner's wait ------------------------------------------------------


def test_fixed_delay_is_stable_in_range_and_spread() -> None:
    assert direct.fixed_delay("job", 600, "host-a") == direct.fixed_delay("job", 600, "host-a")
    assert direct.fixed_delay("job", 600, "host-a") != direct.fixed_delay("job", 600, "host-b")
    assert direct.fixed_delay("job", 0, "host-a") == 0.0
    fractions = [direct.fixed_delay(f"job{n}", 1.0, "host-a") for n in range(2000)]
    assert all(0 <= f < 1 for f in fractions)
    assert min(fractions) < 0.01 and max(fractions) > 0.99
    assert 0.45 < sum(fractions) / len(fractions) < 0.55
    hosts = [direct.fixed_delay("job", 1.0, f"host-{n}") for n in range(2000)]
    assert 0.45 < sum(hosts) / len(hosts) < 0.55


def test_machine_id_is_read_from_the_first_file_that_has_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty, full = tmp_path / "empty", tmp_path / "full"
    empty.write_text("\n")
    full.write_text("0123abcd\n")
    monkeypatch.setattr(direct, "MACHINE_ID_FILES", (str(tmp_path / "none"), str(empty), str(full)))
    assert direct.machine_id() == "0123abcd"
    monkeypatch.setattr(direct, "MACHINE_ID_FILES", (str(tmp_path / "none"),))
    assert direct.machine_id()  # the host name


WAIT = 2.5  # seconds the slug chosen below waits on this host


def waiting_job(site: Site, extra: str = "", command: str = "/bin/true") -> tuple[str, float]:
    """A job whose fixed delay on this host is WAIT seconds: a slug whose
    share of the maximum is large, and the maximum that makes it WAIT."""
    host = direct.machine_id()
    slug = next(f"wait{n}" for n in range(1000)
                if direct.fixed_delay(f"wait{n}", 1.0, host) > 0.3)
    minutes = WAIT / 60 / direct.fixed_delay(slug, 1.0, host)
    site.job(slug, f"name: Wait\ncommand: {command}\nschedule: '* * * * *'\n"
                   f"random_delay: {minutes!r}\n{extra}")
    return slug, direct.fixed_delay(slug, minutes * 60, host)


@pytest.fixture
def direct_site(site: Site) -> Iterator[Site]:
    site.configure_direct()
    yield site


def cli(site: Site, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pc_systemd.cli.run_job",
                             "--config", str(site.config_file), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def started_at(site: Site, slug: str) -> list[float]:
    entries = hist.load(str(site.root / "state" / f"{slug}.yaml")).entries
    return [e.start.timestamp() for e in entries if e.start is not None]


def test_scheduled_runs_wait_the_same_delay_every_time(direct_site: Site) -> None:
    slug, wait = waiting_job(direct_site)
    assert abs(wait - WAIT) < 1e-6
    asked = []
    for _ in range(2):
        asked.append(time.time())
        runner = cli(direct_site, "--job", slug, "--scheduled")
        assert runner.communicate(timeout=30) == ("", "")
        assert runner.returncode == 0
    # The recorded start is the real start: after the wait.
    delays = [start - ask for start, ask in zip(started_at(direct_site, slug), asked, strict=True)]
    assert all(WAIT <= d < WAIT + 1.0 for d in delays), delays
    asked.append(time.time())
    by_hand = cli(direct_site, "run", slug)  # not scheduled: at once
    assert by_hand.communicate(timeout=30) == ("", "")
    assert started_at(direct_site, slug)[-1] - asked[-1] < 1.0


def test_the_wait_comes_before_the_lock(direct_site: Site) -> None:
    # A run by hand during a scheduled run's wait is not refused: nothing runs yet.
    slug, _wait = waiting_job(direct_site)
    scheduled = cli(direct_site, "run", slug, "--scheduled")
    time.sleep(0.5)
    by_hand = cli(direct_site, "--job", slug)
    assert by_hand.communicate(timeout=30) == ("", "")
    assert by_hand.returncode == 0
    assert scheduled.poll() is None  # still waiting
    assert scheduled.communicate(timeout=30) == ("", "")
    assert scheduled.returncode == 0
    entries = hist.load(str(direct_site.root / "state" / f"{slug}.yaml")).entries
    assert [e.status for e in entries] == ["completed", "completed"]


def test_overtime_is_judged_when_the_run_would_start(direct_site: Site) -> None:
    # The previous run still holds the lock when this one's wait is over:
    # skipped under allow_overtime, as without a delay.
    slug, _wait = waiting_job(direct_site, "allow_overtime: true\n",
                              command="/bin/sleep 6")
    first = cli(direct_site, "--job", slug)  # by hand: runs at once, for 6 s
    time.sleep(0.5)
    second = cli(direct_site, "--job", slug, "--scheduled")
    assert second.communicate(timeout=30) == ("", "")
    assert second.returncode == 0
    assert first.communicate(timeout=30) == ("", "")
    entries = hist.load(str(direct_site.root / "state" / f"{slug}.yaml")).entries
    assert sorted(e.status for e in entries) == ["completed", "skipped"]


def test_scheduled_without_a_job_is_a_usage_error(site: Site) -> None:
    result = CliRunner().invoke(run_job, ["--config", str(site.config_file), "--scheduled"])
    assert result.exit_code == 2
    assert "--scheduled goes with -j/--job" in result.stderr


def test_scheduled_runs_of_jobs_without_a_delay_do_not_wait(
    direct_site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    waited: list[float] = []
    monkeypatch.setattr(direct, "_wait", waited.append)
    direct_site.job("plain", BASE)
    job = load_job(str(direct_site.jobs / "plain.yaml"), direct_site.config())
    assert direct.run_job(direct_site.config(), job, scheduled=True) == 0
    assert waited == []
