"""What ``sudo -u <service user> run-job`` may not ask for (pc_systemd/cli/sudo.py).

The rules on their own, then through run-job's command line with click's
CliRunner, with the process's effective uid given as the service user's
(these tests run as root, whom sudo trusts). tests/test_sudo_cron.py runs
the real sudo with the installed package."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pc_systemd.cli import run_job as run_job_module
from pc_systemd.cli import sudo
from pc_systemd.cli.run_job import run_job
from pc_systemd.cli.sudo import Request, environment_refusal, request_refusal, sudo_caller
from tests.conftest import Site

SERVICE = 999  # the service user's uid, as sudo -u made this process
DEV = 1000  # who ran sudo
THROUGH_SUDO = {"SUDO_UID": str(DEV), "SUDO_USER": "dev"}


def refused(request: Request, environ: dict[str, str] | None = None) -> str | None:
    return request_refusal(request, {**THROUGH_SUDO, **(environ or {})}, SERVICE)


# -- who counts as coming through sudo -------------------------------------------


@pytest.mark.parametrize(("environ", "euid", "caller"), [
    ({"SUDO_UID": "1000"}, 999, 1000),  # dev became the service user
    ({}, 999, None),  # no sudo: cron, or the service user's own shell
    ({"SUDO_UID": "999"}, 999, None),  # sudo to oneself changes nothing
    ({"SUDO_UID": "0"}, 999, None),  # root used sudo: root may do anything
    ({"SUDO_UID": "1000"}, 0, None),  # sudo made dev root: the sudoers said so
    ({"SUDO_UID": "x"}, 999, None),  # not sudo's
])
def test_sudo_caller(environ: dict[str, str], euid: int, caller: int | None) -> None:
    assert sudo_caller(environ, euid) == caller


# -- the rules --------------------------------------------------------------------


@pytest.mark.parametrize("action", ["run", "kill", "list", "status", "logs", "next",
                                    "validate", "flags", "reset"])
def test_what_the_rule_is_for_is_allowed(action: str) -> None:
    assert refused(Request(action, None)) is None
    assert refused(Request(action, "/etc/process-control.yaml")) is None
    assert refused(Request(action, None),
                   {"PROCESS_CONTROL_CONFIG": "/etc/process-control.yaml"}) is None


@pytest.mark.parametrize("path", ["/home/dev/evil.yaml", "/etc/../etc/process-control.yaml",
                                  "process-control.yaml", ""])
def test_another_configuration_is_refused(path: str) -> None:
    assert refused(Request("run", path)) == (
        f"through sudo only /etc/process-control.yaml applies, not --config {path}")


def test_another_configuration_from_the_environment_is_refused() -> None:
    environ = {"PROCESS_CONTROL_CONFIG": "/home/dev/evil.yaml"}
    assert refused(Request("run", None), environ) == (
        "through sudo only /etc/process-control.yaml applies, "
        "not $PROCESS_CONTROL_CONFIG=/home/dev/evil.yaml")
    assert environment_refusal({**THROUGH_SUDO, **environ}, SERVICE) == refused(
        Request("run", None), environ)


@pytest.mark.parametrize("name", ["PROCESS_CONTROL_CACHE", "_RUN_JOB_COMPLETE"])
def test_a_cache_or_completion_of_the_callers_is_refused(name: str) -> None:
    assert environment_refusal({**THROUGH_SUDO, name: "x"}, SERVICE) == (
        f"through sudo ${name} is not taken")


@pytest.mark.parametrize("action", ["reload", "install-generator", "uninstall-generator"])
def test_roots_work_is_refused(action: str) -> None:
    assert refused(Request(action, None)) == (
        f"{action} is root's work, not run through sudo (by uid {DEV})")


def test_validate_takes_no_files_through_sudo() -> None:
    assert refused(Request("validate", None, ("/var/log/process-control/x.log",))) == (
        "through sudo validate takes no FILES: it runs nothing, "
        "so run `run-job validate FILES` as yourself")


def test_without_sudo_nothing_is_refused() -> None:
    everything = {"PROCESS_CONTROL_CONFIG": "/x", "PROCESS_CONTROL_CACHE": "/y",
                  "_RUN_JOB_COMPLETE": "bash_source"}
    for euid, environ in ((SERVICE, everything), (0, {**THROUGH_SUDO, **everything})):
        assert request_refusal(Request("reload", "/x", ("f",)), environ, euid) is None
        assert environment_refusal(environ, euid) is None


# -- through run-job's command line ----------------------------------------------


@pytest.fixture
def as_service_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process as sudo -u leaves it: another uid than the one in SUDO_UID."""
    monkeypatch.setattr(sudo.os, "geteuid", lambda: SERVICE)


def invoke(args: list[str], environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    # (unset: the suite's own cache, which sudo's env_reset would drop)
    env: dict[str, str | None] = {"PROCESS_CONTROL_CACHE": None, **THROUGH_SUDO,
                                  **(environ or {})}
    result = CliRunner().invoke(run_job, args, env=env, prog_name="run-job")
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.usefixtures("as_service_user")
@pytest.mark.parametrize("args", [
    ["--config", "/home/dev/evil.yaml", "run", "x"],
    ["--config=/home/dev/evil.yaml", "status"],
    ["--config", "/home/dev/evil.yaml", "-j", "x"],
    ["--config", "/home/dev/evil.yaml", "--list-jobs"],
])
def test_run_job_refuses_another_configuration_in_one_line(args: list[str]) -> None:
    assert invoke(args) == (2, "", "run-job: through sudo only /etc/process-control.yaml "
                                   "applies, not --config /home/dev/evil.yaml\n")


@pytest.mark.usefixtures("as_service_user")
@pytest.mark.parametrize(("args", "action"), [
    (["reload"], "reload"), (["--reload"], "reload"),
    (["install-generator"], "install-generator"), (["--install-generator"], "install-generator"),
    (["uninstall-generator"], "uninstall-generator"),
    (["--uninstall-generator"], "uninstall-generator"),
])
def test_run_job_refuses_roots_work(args: list[str], action: str) -> None:
    assert invoke(args) == (
        2, "", f"run-job: {action} is root's work, not run through sudo (by uid {DEV})\n")


@pytest.mark.usefixtures("as_service_user")
@pytest.mark.parametrize(("args", "action"), [
    (["disable-group", "batch"], "disable-group"), (["--disable-group", "batch"], "disable-group"),
    (["enable-group", "batch"], "enable-group"), (["--enable-group", "batch"], "enable-group"),
])
def test_run_job_sends_hold_changes_back_to_the_member(args: list[str], action: str) -> None:
    assert invoke(args) == (
        2, "", f"run-job: through sudo {action} cannot write the hold directory: "
               f"run `run-job {action}` as yourself, a member of the group\n")


@pytest.mark.usefixtures("as_service_user")
@pytest.mark.parametrize("args", [["validate", "/etc/shadow"], ["--validate", "/etc/shadow"],
                                  ["validate", "--strict", "/etc/shadow"]])
def test_run_job_refuses_validate_files(args: list[str]) -> None:
    code, out, err = invoke(args)
    assert (code, out) == (2, "")
    assert err == ("run-job: through sudo validate takes no FILES: it runs nothing, "
                   "so run `run-job validate FILES` as yourself\n")


@pytest.mark.usefixtures("as_service_user")
def test_run_job_export_writes_no_files_through_sudo(tmp_path: Path) -> None:
    """Its <slug>.yaml files would overwrite the run histories (state_directory)."""
    assert invoke(["export", "kubernetes", "--output", str(tmp_path)]) == (
        2, "", "run-job: through sudo export writes no files (--output): run it as "
               "yourself, or take its output on stdout\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("as_service_user")
def test_run_job_through_sudo_still_lists_and_validates(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.job("hello", "name: Hello\ncommand: /bin/true\n")
    environ = {"PROCESS_CONTROL_CONFIG": str(site.config_file),
               "XDG_CACHE_HOME": str(site.root / "cache")}  # not root's
    code, _out, err = invoke(["list"], environ)
    assert code == 2 and "not $PROCESS_CONTROL_CONFIG=" in err
    # the site's configuration standing for /etc/process-control.yaml
    monkeypatch.setattr(sudo, "DEFAULT_PATH", str(site.config_file))
    assert invoke(["list"], environ)[:2] == (0, "hello\n")
    assert invoke(["validate"], environ)[0] == 0
    assert invoke(["--config", str(site.config_file), "-l"])[:2] == (0, "hello\n")


def test_main_refuses_the_environment_before_click_reads_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sudo.os, "geteuid", lambda: SERVICE)
    monkeypatch.delenv("PROCESS_CONTROL_CACHE", raising=False)
    for name, value in {**THROUGH_SUDO, "_RUN_JOB_COMPLETE": "bash_complete",
                        "COMP_WORDS": "run-job --config /home/dev/x.yaml run ",
                        "COMP_CWORD": "5"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("sys.argv", ["run-job"])
    with pytest.raises(SystemExit) as exited:
        run_job_module.main()
    assert exited.value.code == 2
    assert capsys.readouterr() == ("", "run-job: through sudo $_RUN_JOB_COMPLETE is not taken\n")
