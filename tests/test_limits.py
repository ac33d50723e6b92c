"""Resource limits without a running systemd: the keys' parsers and their
one-line errors, the trust rule for a negative nice, the unit lines, and
what cron hosts say about limits they cannot enforce. Their behaviour is in
test_limits_systemd.py (real systemd) and test_direct_runner.py (real runs)."""

from __future__ import annotations

import pytest

from pc_systemd.cli import cron_generate
from pc_systemd.model.errors import PcError
from pc_systemd.model.job import Job, load_job
from pc_systemd.model.validate import validate
from pc_systemd.systemd import unit_escape as esc
from pc_systemd.systemd.units import Renderer
from tests.conftest import Site

BASE = "name: x\ncommand: /bin/true\n"


def load(site: Site, extra: str) -> Job:
    return load_job(str(site.job("job", BASE + extra)), site.config())


def error(site: Site, extra: str) -> str:
    with pytest.raises(PcError) as caught:
        load(site, extra)
    (problem,) = caught.value.problems
    return str(problem).removeprefix(str(site.jobs / "job.yaml"))


@pytest.mark.parametrize(("written", "size"), [
    ("512M", 512 << 20), ("2G", 2 << 30), ("1T", 1 << 40), ("1024K", 1 << 20),
    ("1048576", 1 << 20), ("'3G'", 3 << 30), ("1024T", 1 << 50),
])
def test_memory_max_sizes(site: Site, written: str, size: int) -> None:
    assert load(site, f"memory_max: {written}\n").memory_max == size


@pytest.mark.parametrize(("written", "problem"), [
    ("512", "512 bytes is less than 1M (write 512M for 512 megabytes)"),
    ("1.5G", "expected a size such as 512M or 2G (K, M, G, T: powers of 1024), got '1.5G'"),
    ("1.5", "expected a size such as 512M or 2G, got a number"),
    ("2g", "expected a size such as 512M or 2G (K, M, G, T: powers of 1024), got '2g'"),
    ("2 G", "expected a size such as 512M or 2G (K, M, G, T: powers of 1024), got '2 G'"),
    ("0", "expected a size such as 512M or 2G (K, M, G, T: powers of 1024), got '0'"),
    ("-1G", "expected a size such as 512M or 2G (K, M, G, T: powers of 1024), got '-1G'"),
    ("infinity", "expected a size such as 512M or 2G (K, M, G, T: powers of 1024), got 'infinity'"),
    ("1025T", "is more than 1024T"),
    ("99999999999999999999", "expected a size such as 512M or 2G (K, M, G, T: powers of 1024)"),
    ("[1G]", "expected a single value, got a list"),
    ("", "expected a size such as 512M or 2G, got null"),
    ("true", "expected a size such as 512M or 2G, got a boolean"),
    ('"1G\\nUser=root"', "value must not contain a newline"),
])
def test_memory_max_errors(site: Site, written: str, problem: str) -> None:
    assert error(site, f"memory_max: {written}\n").startswith(f":3: memory_max: {problem}")


@pytest.mark.parametrize(("written", "percent", "unit"), [
    ("50", 50.0, "50%"), ("150", 150.0, "150%"), ("'50%'", 50.0, "50%"), ("12.5", 12.5, "12.5%"),
    ("'0.05%'", 0.05, "0.05%"), ("100000", 100000.0, "100000%"), ("33.33", 33.33, "33.33%"),
])
def test_cpu_quota_percentages(site: Site, written: str, percent: float, unit: str) -> None:
    job = load(site, f"cpu_quota: {written}\n")
    assert job.cpu_quota == percent
    assert job.cpu_quota is not None and esc.percent(job.cpu_quota) == unit


@pytest.mark.parametrize(("written", "problem"), [
    ("0", "must be a percentage > 0 and <= 100000, got 0"),
    ("-50", "must be a percentage > 0 and <= 100000, got -50"),
    ("100001", "must be a percentage > 0 and <= 100000, got 100001"),
    ("1.0e+400", "must be a percentage > 0 and <= 100000, got 1.0e+400"),
    (".nan", "must be a percentage > 0 and <= 100000, got .nan"),
    ("12.345", "at most two decimals, got 12.345"),
    ("'50 %'", "expected a percentage such as 50 or 150%, got '50 %'"),
    ("'%n'", "expected a percentage such as 50 or 150%, got '%n'"),
    ("'50%%'", "expected a percentage such as 50 or 150%, got '50%%'"),
    ("half", "expected a percentage such as 50 or 150%, got 'half'"),
    ("[50]", "expected a single value, got a list"),
    ("", "expected a percentage such as 50 or 150%, got null"),
    ('"50%\\nUser=root"', "value must not contain a newline"),
])
def test_cpu_quota_errors(site: Site, written: str, problem: str) -> None:
    assert error(site, f"cpu_quota: {written}\n") == f":3: cpu_quota: {problem}"


@pytest.mark.parametrize(("written", "problem"), [
    ("20", "must be a whole number from -20 to 19, got 20"),
    ("-21", "must be a whole number from -20 to 19, got -21"),
    ("5.5", "must be a whole number from -20 to 19, got 5.5"),
    ("'5'", "expected a number, got a string"),
    ("true", "expected a number, got a boolean"),
    ("", "expected a number, got null"),
    ("[5]", "expected a single value, got a list"),
    ("99999999999999999999999", "must be a whole number from -20 to 19, got 99999999999999999999999"),
])
def test_nice_errors(site: Site, written: str, problem: str) -> None:
    assert error(site, f"nice: {written}\n") == f":3: nice: {problem}"


@pytest.mark.parametrize(("written", "problem"), [
    ("realtime", "must be one of idle, best-effort, got 'realtime'"),
    ("Idle", "must be one of idle, best-effort, got 'Idle'"),
    ('"idle\\nUser=root"', "value must not contain a newline"),
    ("", "expected a string, got null"),
    ("[idle]", "expected a string, got a list"),
])
def test_io_class_errors(site: Site, written: str, problem: str) -> None:
    assert error(site, f"io_class: {written}\n") == f":3: io_class: {problem}"


def test_without_the_keys_no_limit_is_set(site: Site) -> None:
    job = load(site, "")
    assert (job.memory_max, job.cpu_quota, job.nice, job.io_class) == (None, None, None, None)
    text = Renderer(site.config()).job_units(job)[0].text
    for setting in ("MemoryMax=", "CPUQuota=", "Nice=", "IOSchedulingClass="):
        assert setting not in text


def test_the_unit_lines(site: Site) -> None:
    job = load(site, "memory_max: 2G\ncpu_quota: 12.5\nnice: 0\nio_class: best-effort\n")
    lines = Renderer(site.config()).job_units(job)[0].text.splitlines()
    for line in ("MemoryMax=2147483648", "CPUQuota=12.5%", "Nice=0",
                 "IOSchedulingClass=best-effort"):
        assert line in lines


def test_the_slow_start_service_has_the_same_limits(site: Site) -> None:
    job = load(site, "slow_start_command: /bin/true\nnice: 5\nmemory_max: 1G\n")
    units = {u.name: u.text for u in Renderer(site.config()).job_units(job)}
    for name in ("process-control-job.service", "process-control-job.slow-start.service"):
        assert "\nNice=5\n" in units[name] and "\nMemoryMax=1073741824\n" in units[name]


def test_a_negative_nice_in_a_job_file_needs_allow_negative_nice(site: Site) -> None:
    assert error(site, "nice: -1\n") == (
        ":3: nice: -1 is a negative nice: the global configuration must set"
        " allow_negative_nice: true to allow it in job files")
    site.configure("user: svc\nallow_root: true\n")  # allow_root does not imply it
    assert error(site, "nice: -20\n").startswith(":3: nice: -20 is a negative nice")
    site.configure("allow_negative_nice: true\n")
    assert load(site, "nice: -20\n").nice == -20


def test_the_configurations_own_default_may_set_a_negative_nice(site: Site) -> None:
    # default_job_config is written by whoever owns the configuration (root)
    site.configure("default_job_config:\n  nice: -5\n")
    assert load(site, "").nice == -5
    # a job file may lower it, not raise it
    assert load(site, "nice: 10\n").nice == 10
    assert error(site, "nice: -6\n").startswith(":3: nice: -6 is a negative nice")


def test_integer_and_percent_filters_refuse_what_they_cannot_write() -> None:
    assert (esc.integer(-5), esc.integer(536870912)) == ("-5", "536870912")
    for bad in (True, 1.5, "5"):
        with pytest.raises(esc.UnitValueError):
            esc.integer(bad)  # type: ignore[arg-type]
    assert (esc.percent(150.0), esc.percent(0.01), esc.percent(12.05)) == ("150%", "0.01%", "12.05%")
    for bad_percent in (0.0, -1.0, 0.001, 1.234):
        with pytest.raises(esc.UnitValueError):
            esc.percent(bad_percent)


def test_cron_generate_warns_about_what_run_job_will_refuse(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    site.configure_direct("output_crontab: console\nallow_negative_nice: true\n")
    site.job("capped", "name: C\ncommand: /bin/true\nschedule: '0 * * * *'\nmemory_max: 1G\n"
                       "cpu_quota: 50\n")
    site.job("raised", "name: R\ncommand: /bin/true\nschedule: '0 * * * *'\nnice: -3\n")
    site.job("niced", "name: N\ncommand: /bin/true\nschedule: '0 * * * *'\nnice: 3\n"
                      "io_class: idle\n")
    for _cold_then_cached in range(2):
        assert cron_generate.main(["--config", str(site.config_file)]) == 0
        out, err = capsys.readouterr()
        # the lines stay: each refused run is then a line in cron's mail
        assert out.count("--job ") == 3
        assert err.splitlines() == [
            f"{site.jobs}/capped.yaml:4: memory_max: warning: is enforced only on systemd"
            " hosts: run-job will not run this job here",
            f"{site.jobs}/capped.yaml:5: cpu_quota: warning: is enforced only on systemd"
            " hosts: run-job will not run this job here",
            f"{site.jobs}/raised.yaml:4: nice: warning: a negative nice is applied only on"
            " systemd hosts: run-job will not run this job here",
        ]


def test_validate_warns_on_a_cron_host_only(site: Site) -> None:
    site.configure("backend: direct\n")
    site.job("capped", "name: C\ncommand: /bin/true\nmemory_max: 1G\n")
    report = validate(site.config())
    assert not report.errors
    assert [str(w) for w in report.warnings] == [
        f"{site.jobs}/capped.yaml:3: memory_max: warning: is enforced only on systemd hosts:"
        " run-job will not run this job here"]
    site.configure("backend: systemd\n")
    assert validate(site.config()).warnings == ()
