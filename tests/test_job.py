"""Job files: every key, valid and invalid, with path:line in each error."""

from __future__ import annotations

from pathlib import Path

import pytest

from pc_systemd.model.errors import PcError
from pc_systemd.model.fields import Command
from pc_systemd.model.job import JOB_KEYS, Failmail, Job, load_job
from tests.conftest import ROOT, Site
from tests.job_files import BAD


def load(site: Site, text: str, slug: str = "job") -> Job:
    return load_job(str(site.job(slug, text)), site.config())


def errors(site: Site, text: str, slug: str = "job") -> list[str]:
    with pytest.raises(PcError) as caught:
        load(site, text, slug)
    return [str(p) for p in caught.value.problems]


def test_minimal_job_has_the_defaults(site: Site) -> None:
    job = load(site, "name: Minimal\ncommand: /bin/true\n")
    assert job.slug == "job"
    assert job.name == "Minimal"
    assert job.command == (Command("/bin/true", ("/bin/true",)),)
    assert job.schedule is None and not job.scheduled
    assert (job.timeout, job.disabled, job.allow_overtime) == (0.0, False, False)
    assert (job.environment, job.tag, job.failmail) == ((), (), None)
    assert job.failure_threshold_for_mail == 1
    assert job.logging == "journal"
    assert job.slow_start_command is None and job.description is None


def test_every_key_set(site: Site) -> None:
    job = load(
        site,
        """\
        name: Full
        description: >
            Folded
            text.
        command:
            - /bin/echo "two words" 'and more'
            - /usr/bin/env
        slow_start_command: /bin/sleep 1
        schedule: "*/5 1-3 * jan,feb mon-fri"
        timezone: Europe/Berlin
        disabled: false
        timeout: 0.005
        environment:
            A: text
            B: true
            C: 123
            D: 1.50
            E: ""
        tag: [one, two]
        allow_overtime: true
        failure_threshold_for_mail: 3
        failmail: {from_address: a@example.org, to_address: b@example.org}
        logging: file
        """,
    )
    assert job.description == "Folded text.\n"
    assert [c.argv for c in job.command] == [
        ("/bin/echo", "two words", "and more"),
        ("/usr/bin/env",),
    ]
    assert job.slow_start_command == (Command("/bin/sleep 1", ("/bin/sleep", "1")),)
    assert job.schedule is not None and job.schedule.expr == "*/5 1-3 * jan,feb mon-fri"
    assert job.scheduled
    assert job.timezone == "Europe/Berlin"
    assert job.timeout == 0.005
    # stringified as the original did: str() of the YAML value, numbers as written
    assert job.environment == (("A", "text"), ("B", "True"), ("C", "123"), ("D", "1.50"), ("E", ""))
    assert job.tag == ("one", "two")
    assert job.allow_overtime is True
    assert job.failure_threshold_for_mail == 3
    assert job.failmail == Failmail("a@example.org", "b@example.org")
    assert job.logging == "file"


def test_yaml_booleans_and_numbers_in_text_keys_are_taken_as_written(site: Site) -> None:
    job = load(site, "name: Off\ncommand: /bin/echo\ntag: [yes, 2024, 1.50]\n")
    assert job.name == "Off"
    assert job.tag == ("yes", "2024", "1.50")


def test_single_tag_and_disabled(site: Site) -> None:
    job = load(site, "name: x\ncommand: /bin/true\nschedule: '0 0 * * *'\ndisabled: true\ntag: t\n")
    assert job.tag == ("t",)
    assert job.disabled and not job.scheduled


def test_defaults_merge_under_the_job_and_the_job_wins(site: Site) -> None:
    site.configure("default_job_config:\n  timeout: 10\n  tag: default\n")
    job = load(site, "name: x\ncommand: /bin/true\ntag: mine\n")
    assert job.timeout == 10
    assert job.tag == ("mine",)


def test_error_in_a_default_points_at_the_global_file(site: Site) -> None:
    site.configure("default_job_config:\n  timeout: soon\n")
    with pytest.raises(PcError) as caught:
        site.config()
    assert str(caught.value) == (
        f"{site.config_file}:3: timeout: expected a number, got a string"
    )


def test_original_job_example_loads(site: Site) -> None:
    text = (ROOT / "job.example.yaml").read_text()
    job = load(site, text, "timecard")
    assert job.command[0].argv == ("/usr/local/bin/timecard", "--start", "9:00", "--end", "5:30 pm")
    assert job.environment == (("PYTHONPATH", "/usr/share/invisible/pie"),)


def test_example_file_documents_every_key() -> None:
    text = (ROOT / "job.example.yaml").read_text()
    for key in JOB_KEYS:
        assert f"{key.name}:" in text, key.name


def test_job_fields_match_the_declarations() -> None:
    declared = {key.name for key in JOB_KEYS}
    fields = set(Job.__dataclass_fields__) - {"slug", "path", "warnings", "lines"}
    assert declared == fields


def test_unknown_key_is_a_warning_not_an_error(site: Site) -> None:
    job = load(site, "name: x\ncommand: /bin/true\nschedul: '* * * * *'\n")
    assert [str(w) for w in job.warnings] == [
        f"{site.jobs}/job.yaml:3: schedul: warning: unknown key (did you mean 'schedule'?)"
    ]




@pytest.mark.parametrize(("text", "expected"), BAD)
def test_bad_job_files_name_file_line_and_key(site: Site, text: str, expected: str) -> None:
    found = errors(site, text)
    prefix = f"{site.jobs}/job.yaml{expected}"
    assert any(line.startswith(prefix) for line in found), found


def test_all_problems_of_a_file_are_reported(site: Site) -> None:
    found = errors(site, "name: x\ncommand: /bin/true\ntimeout: -1\nlogging: x\n")
    assert [line.split(": ")[0:2] for line in found] == [
        [f"{site.jobs}/job.yaml:3", "timeout"],
        [f"{site.jobs}/job.yaml:4", "logging"],
    ]


@pytest.mark.parametrize("slug", ["with space", "-leading", ".hidden", "a@b", "x" * 101, "ü",
                                  "x.slow-start", "x.yaml.y"])
def test_bad_slugs(site: Site, slug: str) -> None:
    found = errors(site, "name: x\ncommand: /bin/true\n", slug)
    assert found == [
        f"{site.jobs}/{slug}.yaml:1: (file): bad job name {slug!r}: use letters, digits, "
        "'_', '-' and '.', at most 100, not starting with '-' or '.', no '.yaml', "
        "not ending in '.slow-start'"
    ]


def test_symlink_leading_out_of_the_job_directory(site: Site, tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text("name: x\ncommand: /bin/true\n")
    (site.jobs / "evil.yaml").symlink_to(outside)
    with pytest.raises(PcError) as caught:
        load_job(str(site.jobs / "evil.yaml"), site.config())
    assert str(caught.value) == (
        f"{site.jobs}/evil.yaml:1: (file): symlink leads outside {site.jobs}"
    )


def test_symlink_inside_the_job_directory_is_fine(site: Site) -> None:
    site.job("real", "name: x\ncommand: /bin/true\n")
    (site.jobs / "alias.yaml").symlink_to(site.jobs / "real.yaml")
    assert load_job(str(site.jobs / "alias.yaml"), site.config()).slug == "alias"


def test_file_outside_the_job_directory(site: Site, tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text("name: x\ncommand: /bin/true\n")
    with pytest.raises(PcError) as caught:
        load_job(str(other), site.config())
    assert str(caught.value) == f"{other}:1: (file): job files must be in {site.jobs}"


def test_directory_named_like_a_job(site: Site) -> None:
    (site.jobs / "dir.yaml").mkdir()
    with pytest.raises(PcError) as caught:
        load_job(str(site.jobs / "dir.yaml"), site.config())
    assert str(caught.value).endswith("dir.yaml:1: (file): not a regular file")


def test_non_utf8_bytes_name_their_line(site: Site) -> None:
    path = site.jobs / "latin.yaml"
    path.write_bytes(b"name: x\ncommand: /bin/echo caf\xe9\n")
    with pytest.raises(PcError) as caught:
        load_job(str(path), site.config())
    assert str(caught.value) == f"{path}:2: (file): not valid UTF-8 (byte 0xe9)"


def test_huge_file_is_refused(site: Site) -> None:
    path = site.jobs / "huge.yaml"
    path.write_text("name: x\ncommand: /bin/true\n" + "#" * (2 << 20) + "\n")
    with pytest.raises(PcError) as caught:
        load_job(str(path), site.config())
    assert "file is larger than 262144 bytes" in str(caught.value)


def test_alias_bomb_is_refused_quickly(site: Site) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    text = "name: x\ncommand: /bin/true\nenvironment:\n" + "\n".join("  " + ln for ln in lines)
    found = errors(site, text.replace("environment:\n", "environment:\n") + "\n")
    assert any("environment" in line for line in found)


def test_command_splitting_matches_shlex() -> None:
    import random
    import shlex

    from pc_systemd.model import fields
    from pc_systemd.model.nodes import Entry, Scalar

    rng = random.Random(5)
    for _ in range(5000):
        line = "/bin/x" + "".join(rng.choice("ab c'\"-/=$%*\\") for _ in range(rng.randint(1, 14)))
        try:
            want: object = tuple(shlex.split(line, comments=False, posix=True))
        except ValueError:
            want = "error"
        if isinstance(want, tuple) and want[0].endswith("/"):
            want = "error"  # a directory is refused, whatever the splitting
        try:
            got: object = fields.commands(Entry("command", Scalar(line, line, 1), "f"))[0].argv
        except PcError:
            got = "error"
        assert got == want, line


def test_hostile_command_lines_split_in_linear_time(site: Site) -> None:
    import time

    for line in ["/bin/x " + "a " * 15000 + "'", "/bin/x " + "ab" * 16000 + '"',
                 "/bin/x " + "'a' " * 8000 + "'"]:
        started = time.process_time()
        errors(site, f"name: x\ncommand: \"{line}\"\n")
        assert time.process_time() - started < 0.5, line[:40]
