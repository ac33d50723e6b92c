"""run-job validate, list, status, run and kill through click's CliRunner,
each both as its command and as the flags of before."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from pc_systemd.cli.run_job import run_job
from tests.conftest import Site

GOOD = "name: Good\ncommand: /bin/true\nschedule: '0 * * * *'\n"


@pytest.fixture(autouse=True)
def private_cache(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """Summary caches in the test's own directory, not the caller's ~/.cache
    (nor root's /var/cache)."""
    monkeypatch.setenv("XDG_CACHE_HOME", f"{tmp_path}/xdg-cache")
    monkeypatch.setenv("PROCESS_CONTROL_CACHE", f"{tmp_path}/pc-cache")


def invoke(site: Site, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(run_job, ["--config", str(site.config_file), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def both(site: Site, flags: list[str], command: list[str]) -> tuple[int, str, str]:
    """The action through its flags (as before) and through its command:
    the same stdout, stderr and exit status."""
    as_flags = invoke(site, *flags)
    assert invoke(site, *command) == as_flags, (flags, command)
    return as_flags


def test_validate_clean_directory(site: Site) -> None:
    site.job("a", GOOD)
    site.job("b", GOOD)
    code, out, err = both(site, ["--validate"], ["validate"])
    assert (code, out) == (0, "")
    assert "checked 2 job file(s): 2 valid, 0 invalid, 0 warning(s)" in err


def test_validate_reports_each_problem_on_one_line(site: Site) -> None:
    site.job("good", GOOD)
    site.job("bad", "name: Bad\ncommand: /bin/true\ntimeout: -5\n")
    site.job("broken", "name: [\n")
    code, out, err = both(site, ["--validate"], ["validate"])
    assert code == 1
    lines = out.splitlines()
    assert lines == [
        f"{site.jobs}/bad.yaml:3: timeout: must be a number of minutes >= 0, got -5",
        f"{site.jobs}/broken.yaml:2: (yaml): did not find expected node content",
    ]
    assert "Traceback" not in out + err
    assert "3 job file(s): 1 valid, 2 invalid" in err


def test_validate_given_files_only(site: Site) -> None:
    good = site.job("good", GOOD)
    site.job("bad", "name: Bad\n")
    code, out, _ = both(site, ["--validate", str(good)], ["validate", str(good)])
    assert (code, out) == (0, "")


def test_validate_never_firing_schedule(site: Site) -> None:
    site.job("feb30", "name: x\ncommand: /bin/true\nschedule: '0 0 30 2 *'\n")
    code, out, _ = both(site, ["--validate"], ["validate"])
    assert code == 1
    assert out == f"{site.jobs}/feb30.yaml:3: schedule: '0 0 30 2 *' can never fire\n"


def test_warnings_fail_only_with_strict(site: Site) -> None:
    site.job("w", GOOD + "colour: blue\n")
    code, out, _ = both(site, ["--validate"], ["validate"])
    assert code == 0
    assert out == f"{site.jobs}/w.yaml:4: colour: warning: unknown key\n"
    assert both(site, ["--validate", "--strict"], ["validate", "--strict"])[0] == 1


def test_bad_global_config_is_one_line_and_exit_2(site: Site) -> None:
    site.configure("user: [root]\n")
    code, _out, err = both(site, ["--validate"], ["validate"])
    assert code == 2
    assert err == f"{site.config_file}:2: user: expected a single value, got a list\n"


def test_list_jobs_lists_every_file_and_reports_broken_ones(site: Site) -> None:
    site.job("zeta", GOOD)
    site.job("alpha", GOOD)
    site.job("broken", "command: /bin/true\n")
    code, out, err = both(site, ["--list-jobs"], ["list"])
    assert code == 0
    assert out == "alpha\nbroken\nzeta\n"
    assert err == f"{site.jobs}/broken.yaml:1: name: required key is missing\n"


def test_list_short_flag(site: Site) -> None:
    site.job("one", GOOD)
    assert both(site, ["-l"], ["list"])[1] == "one\n"


def test_missing_job_directory_is_clear(site: Site) -> None:
    site.config_file.write_text(f"job_directory: {site.root}/nowhere\n")
    code, out, _ = both(site, ["--validate"], ["validate"])
    assert code == 1
    assert out == (
        f"{site.config_file}:1: job_directory: {site.root}/nowhere: No such file or directory\n"
    )


def direct_site(site: Site) -> None:
    site.configure_direct()


def test_status_in_the_original_format(site: Site) -> None:
    direct_site(site)
    site.job("multi", "name: Multi job\ncommand: /bin/true\ntag: [database, queue]\n"
             "description: Does\n  several things.\n")
    site.job("broken", "name: [\n")
    assert invoke(site, "--job", "multi")[0] == 0
    code, out, err = both(site, ["--status"], ["status"])
    assert code == 0
    lines = out.splitlines()
    # The original's lines for each job, each followed by this tool's own
    # (indented: state, last run, errors); the backend is named on stderr.
    assert lines[0] == "broken ***Invalid configuration***"
    assert lines[1].startswith(f"\terror: {site.jobs}/broken.yaml:2: (yaml)")
    original = [line for line in lines[2:] if not line.startswith(
        ("\tstate:", "\tlast run:", "\tnext run:", "\terror:"))]
    assert original == [
        "multi - Multi job",
        "\tDoes several things.",
        "\ttags: database, queue",
        "\tlast status: success",
    ]
    assert "\tstate: idle" in lines
    assert err.startswith(f"{site.jobs}/broken.yaml:2: (yaml)")
    assert err.endswith("backend: direct\n")
    assert both(site, ["--status", "--only-running"], ["status", "--only-running"])[1] == ""
    assert both(site, ["-l", "-r"], ["list", "-r"])[1] == ""


def test_run_kill_and_slow_start_flags(site: Site) -> None:
    direct_site(site)
    site.job("fails", "name: Fails\ncommand: /bin/false\nslow_start_command: /bin/true\n")
    code, out, _ = both(site, ["-j", "fails"], ["run", "fails"])
    assert (code, out) == (1, "Fails failed with code 1\n")
    assert both(site, ["-j", "fails", "-w"], ["run", "fails", "-w"])[0] == 0
    assert both(site, ["--slow-start", "fails"], ["run", "--slow-start", "fails"])[0] == 0
    code, _, err = both(site, ["--kill-job", "fails"], ["kill", "fails"])
    assert (code, err) == (1, "Fails (fails) is not running\n")
    code, _, err = both(site, ["-j", "nope"], ["run", "nope"])
    assert code == 2 and "no job named 'nope'" in err


def test_systemd_backend_without_systemd_is_one_clear_line(site: Site) -> None:
    site.configure("backend: systemd\n")
    site.job("one", GOOD)
    for args, command in ((["--status"], ["status"]), (["--kill-job", "one"], ["kill", "one"]),
                          (["--job", "one"], ["run", "one"])):
        code, _, err = both(site, args, command)
        assert code == 2
        assert err.startswith("run-job: ") and err.count("\n") == 1, err
        assert "Traceback" not in err
