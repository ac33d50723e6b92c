"""Global configuration: built-in defaults, the original's file, bad values."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pc_systemd.model.config import CONFIG_KEYS, builtin, load_config
from pc_systemd.model.config_file import DEFAULT_PATH, config_path
from pc_systemd.model.errors import PcError
from tests.conftest import ROOT


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "pc.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def errors(path: str) -> list[str]:
    with pytest.raises(PcError) as caught:
        load_config(path, {})
    return [str(p) for p in caught.value.problems]


def test_no_file_means_builtin_defaults() -> None:
    config = load_config(None, {}) if not Path(DEFAULT_PATH).exists() else builtin()
    assert config.path is None
    assert config.user == "process-control"
    assert config.job_directory == "/var/lib/process-control"
    assert config.output_crontab == "/etc/cron.d/process-control"
    assert config.output_directory == "/var/log/process-control"
    assert config.state_directory == "/var/cache/process-control"
    assert config.cron_template == "# Generated from {source}\n{schedule} {user} {command}\n"
    assert config.runner_path.endswith("/run-job")


def test_every_key_has_a_builtin_default_and_help() -> None:
    config = builtin()
    for key in CONFIG_KEYS:
        assert hasattr(config, key.name)
        assert key.help and not key.required


def test_lookup_order(tmp_path: Path) -> None:
    assert config_path("/x.yaml", {"PROCESS_CONTROL_CONFIG": "/y.yaml"}) == "/x.yaml"
    assert config_path(None, {"PROCESS_CONTROL_CONFIG": "/y.yaml"}) == "/y.yaml"
    expected = DEFAULT_PATH if Path(DEFAULT_PATH).exists() else None
    assert config_path(None, {}) == expected


def test_original_example_loads_unchanged() -> None:
    config = load_config(str(ROOT / "tests/data/original/process-control.example.yaml"), {})
    assert config.user == "jenkins"
    assert config.runner_path == "/usr/bin/run-job"
    assert config.cron_template == "# Generated from {source}\n{schedule} {user} {command}\n"
    assert config.job_defaults["timeout"] == 10
    assert config.job_defaults["failmail"].to_address == "fr-tech@wikimedia.org"
    assert config.logging is not None and config.logging["version"] == 1
    assert config.run_directory == "/var/run/process-control"


def test_numeric_uid_is_accepted(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "user: 1001\n"), {}).user == "1001"


def test_empty_file_is_all_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, ""), {}).user == "process-control"


def test_missing_explicit_file(tmp_path: Path) -> None:
    assert errors(str(tmp_path / "nope.yaml")) == [
        f"{tmp_path}/nope.yaml:1: (file): configuration file does not exist"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("user: [a]\n", ":1: user: expected a single value, got a list"),
        ("user: 'bad user'\n", ":1: user: 'bad user' is not a valid user name or uid"),
        ("user: -3\n", ":1: user: uid -3 is out of range"),
        ("job_directory: relative/dir\n", ":1: job_directory: must be an absolute path"),
        ("output_directory: 7\n", ":1: output_directory: must be an absolute path, got '7'"),
        ("\n\nstate_directory: ''\n", ":3: state_directory: must not be empty"),
        ("run_directory: \"/a\\nb\"\n", ":1: run_directory: value must not contain a newline"),
        ("output_crontab: cron.d/x\n", ":1: output_crontab: must be an absolute path"),
        ("cron_template: '{schedule} {oops}'\n", ":1: cron_template: unknown field {oops}"),
        ("cron_template: '{schedule'\n", ":1: cron_template: bad template"),
        ("default_job_config: 3\n", ":1: default_job_config: expected a mapping of job keys"),
        ("default_job_config:\n  timeout: -1\n", ":2: timeout: must be a number of minutes >= 0"),
        ("logging: {handlers: {}}\n", ":1: logging: expected a logging.config.dictConfig"),
        ("usr: x\n", ":1: usr: unknown configuration key (did you mean 'user'?)"),
        ("user: a\nuser: b\n", ":2: user: duplicate key (first at line 1)"),
        ("- a\n- b\n", ":1: (file): expected a mapping of configuration keys"),
        ("user: [\n", ":2: (yaml): did not find expected node content"),
    ],
)
def test_bad_values_name_file_line_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    found = errors(path)
    assert any(line.startswith(path + expected) for line in found), found


@pytest.mark.parametrize("user", ["root", "0"])
def test_root_service_user_needs_allow_root(tmp_path: Path, user: str) -> None:
    path = write(tmp_path, f"job_directory: /srv/jobs\nuser: {user}\n")
    assert errors(path) == [
        f"{path}:2: user: jobs would run as root; set allow_root: true if that is really meant"
    ]
    path = write(tmp_path, f"user: {user}\nallow_root: true\n")
    assert load_config(path, {}).user == user


def test_group_or_world_writable_config_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "user: svc\n")
    Path(path).chmod(0o664)
    assert errors(path) == [
        f"{path}:1: (file): the configuration file {path} is writable by group or others"
    ]
    Path(path).chmod(0o644)
    tmp_path.chmod(0o777)
    try:
        assert errors(path) == [
            f"{path}:1: (file): the configuration directory {tmp_path} is writable by group "
            "or others"
        ]
        tmp_path.chmod(0o1777)  # sticky, like /tmp: others cannot replace the file
        assert load_config(path, {}).user == "svc"
    finally:
        tmp_path.chmod(0o755)


def test_config_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    import os

    path = write(tmp_path, "user: svc\n")
    os.chown(path, 4242, -1)
    assert errors(path) == [f"{path}:1: (file): the configuration file {path} is owned by uid 4242"]
