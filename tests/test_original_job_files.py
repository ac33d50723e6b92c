"""Job files in the original's own format that broke (issue 16, points 1, 3,
4 and 7): a dotted slug is a job, a tab is named with its column, a symlink
into a subfolder says so, and a command must be a string."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pc_systemd.cli.cron_generate import main as cron_generate
from pc_systemd.model.errors import PcError
from pc_systemd.model.job import load_job, log_name, log_name_pattern
from pc_systemd.model.jobset import find_job, job_slugs, load_jobs
from pc_systemd.systemd.status_memo import unit_slug
from pc_systemd.systemd.units import Renderer, service_name, slow_start_name, timer_name
from tests.conftest import Site
from tests.job_files import JOB_EXAMPLE

# The original's job.example.yaml, as its own repository had it (comments
# above each key, 4-space indents, a quoted schedule), saved under its name.

# The original's example configuration's cron template.
ORIGINAL_CONFIG = """\
cron_template: |
        # Generated from {{source}}
        {{schedule}} {{user}} {{command}}
runner_path: /usr/bin/run-job
user: jenkins
output_crontab: {output}
"""


def job_text(**keys: str) -> str:
    """A minimal job in the original's style, with ``keys`` replaced."""
    values = {"name": "Nightly audit", "command": "/usr/bin/audit --all",
              "schedule": '"35 19 * * *"'} | keys
    return "".join(f"{key}: {value}\n" for key, value in values.items())


def problems(path: Path, site: Site) -> list[str]:
    with pytest.raises(PcError) as caught:
        load_job(str(path), site.config())
    return [str(p) for p in caught.value.problems]


# -- 1: a slug with a dot -----------------------------------------------------


def test_the_original_job_example_is_a_job_under_its_own_name(site: Site) -> None:
    site.configure()
    site.job("job.example", JOB_EXAMPLE)
    loaded = load_jobs(site.config())
    assert loaded.problems == ()
    assert [job.slug for job in loaded.jobs] == ["job.example"]
    assert find_job(site.config(), "job.example").name == "Take This Job and Shove It"
    assert job_slugs(site.config()) == {"job.example"}


def test_dotted_slugs_give_the_originals_cron_file(
    site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    site.configure(ORIGINAL_CONFIG.format(output="console"))
    site.job("job.example", JOB_EXAMPLE)
    site.job("job", job_text())
    site.job("job.example.v2", job_text(disabled="true"))
    assert cron_generate(["--config", str(site.config_file)]) == 0
    # the original's sorted glob: by file name, so 'job.example.yaml'
    # comes before 'job.yaml'
    assert capsys.readouterr().out == (
        "# Skipping disabled job job.example.v2\n"
        f"# Generated from {site.jobs}/job.example.yaml\n"
        "*/5 * * * * jenkins /usr/bin/run-job --job job.example\n"
        f"# Generated from {site.jobs}/job.yaml\n"
        "35 19 * * * jenkins /usr/bin/run-job --job job\n"
        "\n"
    )


def test_dotted_slug_unit_and_log_names(site: Site) -> None:
    site.configure()
    job = load_job(str(site.job("job.example", JOB_EXAMPLE)), site.config())
    names = [unit.name for unit in Renderer(site.config()).job_units(job)]
    assert names == [
        "process-control-job.example.service",
        "process-control-job.example.slow-start.service",
        "process-control-job.example.timer",
    ]
    for name in names:
        assert unit_slug(name) == "job.example"
    log = log_name("job.example", "20240101-120000")
    assert log == "job.example-20240101-120000.log"
    assert log_name_pattern("job.example").match(log)
    assert not log_name_pattern("job.example").match("jobXexample-20240101-120000.log")


def test_a_slow_start_slug_cannot_take_another_jobs_unit(site: Site) -> None:
    # job 'x' has the unit process-control-x.slow-start.service: a job
    # named 'x.slow-start' would have it too
    assert service_name("x.slow-start") == slow_start_name("x")
    site.configure()
    site.job("x", JOB_EXAMPLE)
    clash = site.job("x.slow-start", job_text())
    assert problems(clash, site) == [
        f"{clash}:1: (file): bad job name 'x.slow-start': use letters, digits, '_', '-' "
        "and '.', at most 100, not starting with '-' or '.', no '.yaml', "
        "not ending in '.slow-start'"
    ]
    loaded = load_jobs(site.config())
    assert [job.slug for job in loaded.jobs] == ["x"]
    assert loaded.broken == ("x.slow-start",)
    # what is left cannot collide: every unit name maps back to one slug
    for slug in ("x", "x.slow-start.y", "x.timer", "x.service", "a."):
        for name in (service_name(slug), slow_start_name(slug), timer_name(slug)):
            assert unit_slug(name) == slug


def test_a_hidden_file_is_not_a_job(site: Site) -> None:
    # an editor's '.job.example.yaml' (or '.yaml' alone): the original's
    # glob skipped them, so does the listing
    site.configure()
    site.job("job.example", JOB_EXAMPLE)
    site.job(".job.example", job_text(command="'+/bin/sh'"))
    site.job("", job_text(command="'+/bin/sh'"))
    loaded = load_jobs(site.config())
    assert (loaded.problems, [job.slug for job in loaded.jobs]) == ((), ["job.example"])
    assert job_slugs(site.config()) == {"job.example"}
    with pytest.raises(PcError, match="bad job name"):
        find_job(site.config(), ".job.example")


def test_a_yaml_inside_the_slug_is_refused(site: Site) -> None:
    # the original removed '.yaml' everywhere in the name: its cron line for
    # 'x.yaml.yaml' ran the job 'x'
    site.configure()
    path = site.job("x.yaml", job_text())
    assert problems(path, site)[0].startswith(f"{path}:1: (file): bad job name 'x.yaml'")


# -- 3: a tab ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        (JOB_EXAMPLE.replace("    PYTHONPATH", "\tPYTHONPATH"), 18, 1),
        (job_text(command="\n    - /usr/bin/audit\n  \t- /usr/bin/report"), 4, 3),
        ("\tname: Nightly audit\ncommand: /usr/bin/audit\n", 1, 1),
    ],
)
def test_a_tab_is_named_with_its_column(site: Site, text: str, line: int, column: int) -> None:
    site.configure()
    path = site.job("tabbed", text)
    assert problems(path, site) == [
        f"{path}:{line}: (yaml): tab character at column {column} "
        "(YAML does not allow tabs for indenting)"
    ]


def test_a_tab_between_words_is_still_fine(site: Site) -> None:
    site.configure()
    job = load_job(str(site.job("spaced", 'name:\tAudit\ncommand: /usr/bin/audit\t--all\n')),
                   site.config())
    assert job.command[0].argv == ("/usr/bin/audit", "--all")


# -- 4: a symlink into a subfolder ---------------------------------------------


def test_a_symlink_into_a_subfolder_says_so(site: Site) -> None:
    site.configure()
    (site.jobs / "barium").mkdir()
    target = site.jobs / "barium" / "paypal_audit.yaml"
    target.write_text(job_text())
    link = site.jobs / "paypal_audit.yaml"
    link.symlink_to(target)
    real = os.path.realpath(target)
    # still refused (as the original did), with the true reason
    assert problems(link, site) == [
        f"{link}:1: (file): symlink leads into a subfolder of {site.jobs} ({real}):"
        " job files must be in it directly"
    ]
    loaded = load_jobs(site.config())
    assert (loaded.jobs, loaded.broken) == ((), ("paypal_audit",))


def test_a_symlink_to_the_job_directory_itself_says_so(site: Site) -> None:
    site.configure()
    link = site.jobs / "paypal_audit.yaml"
    link.symlink_to(".")
    assert problems(link, site) == [f"{link}:1: (file): symlink leads to {site.jobs} itself"]


def test_a_file_in_a_subfolder_given_by_path_says_so(site: Site) -> None:
    site.configure()
    (site.jobs / "barium").mkdir()
    path = site.jobs / "barium" / "paypal_audit.yaml"
    path.write_text(job_text())
    assert problems(path, site) == [
        f"{path}:1: (file): job files must be in {site.jobs}, not in a subfolder"
    ]


def test_a_symlink_outside_still_says_outside(site: Site) -> None:
    site.configure()
    target = site.root / "paypal_audit.yaml"
    target.write_text(job_text())
    link = site.jobs / "paypal_audit.yaml"
    link.symlink_to(target)
    assert problems(link, site) == [f"{link}:1: (file): symlink leads outside {site.jobs}"]


# -- 7: a command that is not a string ------------------------------------------


@pytest.mark.parametrize(
    ("keys", "line", "key", "kind"),
    [
        ({"command": "42"}, 2, "command", "an integer"),
        ({"command": "true"}, 2, "command", "a boolean"),
        ({"command": "\n    - /usr/bin/audit\n    - 42"}, 4, "command", "an integer"),
        ({"slow_start_command": "4.5"}, 4, "slow_start_command", "a number"),
        ({"slow_start_command": "2024-02-29"}, 4, "slow_start_command", "a date"),
    ],
)
def test_a_command_must_be_a_string(
    site: Site, keys: dict[str, str], line: int, key: str, kind: str
) -> None:
    site.configure()
    path = site.job("audit", job_text(**keys))
    assert problems(path, site) == [
        f"{path}:{line}: {key}: expected a command line (a string), got {kind}"
    ]


def test_a_quoted_number_is_a_command(site: Site) -> None:
    site.configure()
    job = load_job(str(site.job("audit", job_text(command="'42'"))), site.config())
    assert job.command[0].argv == ("42",)
