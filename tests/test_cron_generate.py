"""cron-generate: the original's bytes, written atomically with mode 0644."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pc_systemd.cli.cron_generate import main
from tests.conftest import Site

# What the original's cron-generate wrote for these jobs with the example
# configuration's template (one entry per job in slug order, the template
# verbatim, `# Skipping disabled job` for disabled and unscheduled jobs).
EXPECTED = """\
# Skipping disabled job ingenico_wr1_audit_parse
# Generated from {jobs}/paypal_audit.yaml
35 19 * * * jenkins /usr/bin/run-job --job paypal_audit
# Generated from {jobs}/paypal_smashpig_job_runner.yaml
2-59/5 * * * * jenkins /usr/bin/run-job --job paypal_smashpig_job_runner
# Skipping disabled job zz_unscheduled
"""


def original_site(site: Site, output: str) -> None:
    site.configure(
        f"""\
        cron_template: |
                # Generated from {{source}}
                {{schedule}} {{user}} {{command}}
        runner_path: /usr/bin/run-job
        user: jenkins
        output_crontab: {output}
        """
    )
    site.job("paypal_audit", "name: Audit\ncommand: /bin/true\nschedule: 35 19 * * *\n")
    site.job(
        "paypal_smashpig_job_runner",
        "name: Runner\ncommand: /bin/true\nschedule: '2-59/5 * * * *'\n",
    )
    site.job(
        "ingenico_wr1_audit_parse",
        "name: Parse\ncommand: /bin/true\nschedule: '0 * * * *'\ndisabled: true\n",
    )
    site.job("zz_unscheduled", "name: Later\ncommand: /bin/true\n")


def test_same_bytes_as_the_original(site: Site) -> None:
    out = site.root / "crontab"
    original_site(site, str(out))
    assert main(["--config", str(site.config_file)]) == 0
    assert out.read_text() == EXPECTED.format(jobs=site.jobs)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def test_console_prints_like_the_original(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    original_site(site, "console")
    assert main(["--config", str(site.config_file)]) == 0
    # the original used print(), which adds one newline
    assert capsys.readouterr().out == EXPECTED.format(jobs=site.jobs) + "\n"


def test_default_template(site: Site) -> None:
    out = site.root / "crontab"
    site.configure(f"output_crontab: {out}\nuser: svc\nrunner_path: /opt/pc/bin/run-job\n")
    site.job("a", "name: A\ncommand: /bin/true\nschedule: '*/5 * * * *'\n")
    assert main(["--config", str(site.config_file)]) == 0
    assert out.read_text() == (
        f"# Generated from {site.jobs}/a.yaml\n*/5 * * * * svc /opt/pc/bin/run-job --job a\n"
    )


def test_invalid_job_is_refused_and_the_rest_written(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    out = site.root / "crontab"
    site.configure(f"output_crontab: {out}\nuser: svc\nrunner_path: /r\n")
    site.job("a", "name: A\ncommand: /bin/true\nschedule: '1 * * * *'\n")
    site.job("b", "name: B\ncommand: /bin/true\nschedule: \"1 * * * *\\n* * * * * root /x\"\n")
    site.job("c", "name: C\ncommand: /bin/true\nschedule: '3 * * * *'\n")
    assert main(["--config", str(site.config_file)]) == 1
    assert out.read_text() == (
        f"# Generated from {site.jobs}/a.yaml\n1 * * * * svc /r --job a\n"
        "# Skipping invalid job b\n"
        f"# Generated from {site.jobs}/c.yaml\n3 * * * * svc /r --job c\n"
    )
    err = capsys.readouterr().err
    assert err.startswith(f"{site.jobs}/b.yaml:3: schedule: ")
    assert len(err.splitlines()) == 1


def test_replaced_atomically(site: Site) -> None:
    out = site.root / "crontab"
    out.write_text("old\n")
    inode = out.stat().st_ino
    site.configure(f"output_crontab: {out}\n")
    site.job("a", "name: A\ncommand: /bin/true\nschedule: '1 * * * *'\n")
    assert main(["--config", str(site.config_file)]) == 0
    assert out.stat().st_ino != inode  # a new file renamed over the old one
    assert [p.name for p in site.root.iterdir() if p.name.startswith(".process-control")] == []


def test_unwritable_destination_is_one_line(
    site: Site, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    site.configure(f"output_crontab: {tmp_path}/missing-dir/crontab\n")
    assert main(["--config", str(site.config_file)]) == 2
    assert capsys.readouterr().err == (
        f"cron-generate: {tmp_path}/missing-dir/crontab: No such file or directory\n"
    )
    assert not os.path.exists(tmp_path / "missing-dir")


def test_many_jobs_in_parallel_give_the_same_file(site: Site) -> None:
    from pc_systemd.core import fanout
    from pc_systemd.cron.crontab import render

    site.configure("user: svc\nrunner_path: /r\n")
    for n in range(450):
        schedule = "'1 * * * *'" if n % 3 else "'61 * * * *'"  # every third one invalid
        site.job(f"j{n:03d}", f"name: J{n}\ncommand: /bin/true\nschedule: {schedule}\n"
                 + ("disabled: true\n" if n % 7 == 0 else ""))
    config = site.config()
    # the parallel path is what this test is about wherever there are 2 CPUs
    assert fanout.workers_for(450) == min(2, len(os.sched_getaffinity(0)))
    text, problems, _warnings = render(config)
    expected = []
    for n in range(450):
        if n % 3 == 0:
            expected.append(f"# Skipping invalid job j{n:03d}\n")
        elif n % 7 == 0:
            expected.append(f"# Skipping disabled job j{n:03d}\n")
        else:
            expected.append(f"# Generated from {site.jobs}/j{n:03d}.yaml\n1 * * * * svc /r --job j{n:03d}\n")
    assert text == "".join(expected)
    assert len(problems) == 150
    assert problems[0].startswith(f"{site.jobs}/j000.yaml:3: schedule: minute: 61")


# -- one scheduler per host ----------------------------------------------------------
# (tests/test_one_scheduler_systemd.py: the same on a real systemd with the package)


def generator_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, systemd: bool) -> None:
    """The generator installed where systemd looks; systemd running or not."""
    from pc_systemd.systemd import presence

    generators = tmp_path / "system-generators"
    generators.mkdir()
    (generators / presence.NAME).write_text("#!/bin/sh\n")
    monkeypatch.setattr(presence, "GENERATOR_DIRS", (str(generators),))
    runs = tmp_path / "run-systemd-system"
    if systemd:
        runs.mkdir()
    monkeypatch.setattr(presence, "SYSTEMD_RUNS", str(runs))


def test_without_systemd_the_same_bytes_with_the_generator_installed(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the Debian package installs the generator on every host: a host whose
    # init is not systemd still gets the original's file, byte for byte
    generator_installed(tmp_path, monkeypatch, systemd=False)
    out = site.root / "crontab"
    original_site(site, str(out))
    assert main(["--config", str(site.config_file)]) == 0
    assert out.read_text() == EXPECTED.format(jobs=site.jobs)


def test_where_timers_run_the_jobs_it_applies_them_and_writes_no_cron_file(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pc_systemd.cli import actions

    generator_installed(tmp_path, monkeypatch, systemd=True)
    applied: list[str] = []
    monkeypatch.setattr(actions, "apply_job_directory",
                        lambda config: applied.append(config.job_directory) or 1)
    out = site.root / "crontab"
    original_site(site, str(out))
    assert main(["--config", str(site.config_file)]) == 1  # as run-job reload exited
    assert applied == [str(site.jobs)]
    assert not out.exists()
    err = capsys.readouterr().err.splitlines()
    assert err == ["cron-generate: systemd runs these jobs here: the job directory was applied "
                   "as `run-job reload` would; no cron file written"]


def test_where_timers_run_the_jobs_the_console_still_gets_the_lines(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pc_systemd.cli import actions

    generator_installed(tmp_path, monkeypatch, systemd=True)
    monkeypatch.setattr(actions, "apply_job_directory", lambda config: pytest.fail("applied"))
    original_site(site, "console")
    assert main(["--config", str(site.config_file)]) == 0
    assert capsys.readouterr().out == EXPECTED.format(jobs=site.jobs) + "\n"
