"""The original's own global configurations keep working (issue #16):
an unknown key in ``default_job_config`` is a warning, ``--validate`` in a
job repository's CI reads a group-writable configuration, and it names a
service user this host does not have."""

from __future__ import annotations

import pwd
from pathlib import Path

import pytest
from click.testing import CliRunner

from pc_systemd.cli import cron_generate
from pc_systemd.cli.run_job import run_job
from pc_systemd.model.config import load_config
from pc_systemd.model.job import load_job
from pc_systemd.systemd.generator import generate
from tests.conftest import ROOT, Site

ORIGINAL_2017 = ROOT / "tests/data/original/process-control-2017.yaml"
# an original-style job file, as the paypal_audit job of the original's README
AUDIT = "name: PayPal audit\ncommand: /usr/bin/true --audit\nschedule: 35 19 * * *\n"


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Caches in the test's own directory, not the caller's."""
    monkeypatch.setenv("XDG_CACHE_HOME", f"{tmp_path}/xdg-cache")
    monkeypatch.setenv("PROCESS_CONTROL_CACHE", f"{tmp_path}/pc-cache")


def configure_2017(site: Site, user: str = "nobody", crontab: str = "console") -> Path:
    """The 2017 file as it is, pointed at this site's job directory and cron file."""
    text = (ORIGINAL_2017.read_text()
            .replace("job_directory: /var/lib/process-control", f"job_directory: {site.jobs}")
            .replace("output_crontab: /etc/cron.d/process-control", f"output_crontab: {crontab}")
            .replace("user: jenkins", f"user: {user}"))
    site.config_file.write_text(text)
    site.job("paypal_audit", AUDIT)
    return site.config_file


def unknown_default_keys(path: Path) -> list[str]:
    return [f"{path}:{line}: default_job_config.{key}: warning: unknown key"
            for line, key in ((16, "from_address"), (17, "to_address"),
                              (18, "stdout_destination"))]


def validate(site: Site, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(run_job, ["--config", str(site.config_file), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


# 2. An unknown key inside default_job_config

def test_unknown_default_job_config_keys_warn_and_the_rest_loads(site: Site) -> None:
    path = configure_2017(site)
    config = load_config(str(path), {})
    assert [str(w) for w in config.warnings] == unknown_default_keys(path)
    assert config.job_defaults == {"timeout": 10}
    assert (config.user, config.runner_path) == ("nobody", "/usr/bin/run-job")
    job = load_job(str(site.jobs / "paypal_audit.yaml"), config)
    assert (job.timeout, job.warnings) == (10, ())  # not repeated in every job


def test_a_misspelt_default_job_config_key_names_its_parent(tmp_path: Path) -> None:
    path = tmp_path / "pc.yaml"
    path.write_text("default_job_config:\n    timout: 1\n")
    assert [str(w) for w in load_config(str(path), {}).warnings] == [
        f"{path}:2: default_job_config.timout: warning: unknown key (did you mean 'timeout'?)"
    ]


def test_the_cron_file_is_the_originals(site: Site) -> None:
    out = site.root / "crontab"
    configure_2017(site, user="jenkins", crontab=str(out))
    assert cron_generate.main(["--config", str(site.config_file)]) == 0
    assert out.read_bytes() == (
        f"# Generated from {site.jobs}/paypal_audit.yaml\n"
        "35 19 * * * jenkins /usr/bin/run-job --job paypal_audit\n"
    ).encode()


def test_the_generator_writes_the_units_and_logs_the_warnings(site: Site, tmp_path: Path) -> None:
    path = configure_2017(site)
    messages: list[str] = []
    out = tmp_path / "units"
    code = generate(str(out), lambda _level, msg: messages.append(msg), str(path),
                    "/opt/pc/bin/python")
    assert code == 0
    assert (out / "process-control-paypal_audit.timer").exists()
    assert messages[:3] == unknown_default_keys(path)
    assert messages[-1] == "generated units of 1 job(s), skipped 0"


def test_validate_warns_and_only_strict_fails(site: Site) -> None:
    path = configure_2017(site)
    code, out, err = validate(site, "--validate")
    assert (code, out.splitlines()) == (0, unknown_default_keys(path))
    assert "1 valid, 0 invalid, 3 warning(s)" in err
    assert validate(site, "validate", "--strict")[0] == 1


# 8. --validate in a job repository's CI: a checkout made with umask 002

@pytest.fixture
def umask_002_checkout(site: Site) -> Path:
    path = configure_2017(site)
    path.chmod(0o664)
    site.root.chmod(0o775)
    return path


def test_validate_reads_a_group_writable_configuration(
    site: Site, umask_002_checkout: Path
) -> None:
    job = str(site.jobs / "paypal_audit.yaml")
    for args in (["--validate", job], ["validate", job], ["--validate"]):
        code, out, err = validate(site, *args)
        assert (code, out.splitlines()) == (0, unknown_default_keys(umask_002_checkout)), args
        assert "1 valid, 0 invalid" in err


def test_what_writes_or_runs_still_refuses_it(
    site: Site, umask_002_checkout: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    refusal = (f"{umask_002_checkout}:1: (file): the configuration file {umask_002_checkout} "
               "is writable by group or others")
    assert validate(site, "list") == (2, "", refusal + "\n")
    assert validate(site, "--job", "paypal_audit")[::2] == (2, refusal + "\n")
    assert cron_generate.main(["--config", str(umask_002_checkout)]) == 2
    assert capsys.readouterr().err == refusal + "\n"
    messages: list[str] = []
    code = generate(str(tmp_path / "units"), lambda _level, msg: messages.append(msg),
                    str(umask_002_checkout), "/opt/pc/bin/python")
    assert (code, messages[0]) == (1, refusal)


# 9. A service user this host does not have

def test_validate_warns_of_a_service_user_this_host_lacks(site: Site) -> None:
    try:
        pwd.getpwnam("jenkins")
        pytest.skip("this host has a jenkins user")
    except KeyError:
        pass
    path = configure_2017(site, user="jenkins")
    code, out, err = validate(site, "--validate")
    assert code == 0
    assert out.splitlines() == [
        *unknown_default_keys(path),
        f"{path}:13: user: warning: no user 'jenkins' on this host: "
        "every job would fail at its first run",
    ]
    assert "4 warning(s)" in err
    assert validate(site, "--validate", "--strict")[0] == 1


def test_an_existing_user_a_uid_or_the_default_user_is_not_reported(site: Site) -> None:
    for text in ("user: nobody\n", "user: 4242\n", ""):
        site.configure(text)
        site.job("paypal_audit", AUDIT)
        assert validate(site, "--validate", "--strict") == (
            0, "", "checked 1 job file(s): 1 valid, 0 invalid, 0 warning(s)\n"), text
