"""The JSON Schema of job files (``run-job schema``), held to the validator:
every job file the validator accepts passes it (the tests' and examples'
jobs, the hostile corpus), and the type errors the validator rejects fail
it too. Checked with the ``jsonschema`` library; the job files are read as
the validator reads them (PyYAML, YAML 1.1; dates as written)."""

from __future__ import annotations

import json
import re
import zoneinfo
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from pc_systemd.cli.run_job import run_job
from pc_systemd.model.errors import PcError
from pc_systemd.model.fields import YAML11_BOOLEANS
from pc_systemd.model.job import load_job
from pc_systemd.model.job_keys import JOB_KEYS
from pc_systemd.model.job_schema import SCHEMA_FILE, job_schema, schema_text
from tests.conftest import ROOT, Site
from tests.hostile_corpus import JOB_CASES, Case, ManifestError, oracle_load
from tests.job_files import BAD, JOB_EXAMPLE, JOB_FILES

SCHEMA = job_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
STRICT = jsonschema.Draft202012Validator(job_schema(strict=True))


def validator_problems(site: Site, data: bytes, slug: str = "job") -> list[str]:
    """What ``run-job validate`` says of this job file: nothing, or its problems."""
    path = site.jobs / f"{slug}.yaml"
    path.write_bytes(data)
    try:
        load_job(str(path), site.config())
    except PcError as err:
        return [str(p) for p in err.problems]
    return []


def fragment_errors(key: str, value: Any) -> list[str]:
    """The schema's complaints about one value of one key (name and command given)."""
    job = {"name": "x", "command": "/bin/true", key: value}
    return [e.message for e in VALIDATOR.iter_errors(job)]


def as_editor_sees(text: str) -> Any:
    """A job file as JSON: YAML read as the validator reads it, then through
    JSON, as an editor hands it to a schema (mapping keys become strings)."""
    return json.loads(json.dumps(oracle_load(text), default=str))


def schema_errors(text: str, validator: jsonschema.Draft202012Validator = VALIDATOR) -> list[str]:
    """The schema's complaints about a job file."""
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(as_editor_sees(text))]


FILE_LEVEL = (r"\((yaml|file)\):|value is too large|nested more than|recursive alias"
              r"|unsupported YAML tag")
# What the validator refuses that JSON Schema cannot say (the schema passes
# these files): each kind of problem, by its message, and why.
BEYOND_THE_SCHEMA = {
    r"duplicate (key|variable)": "a YAML reader keeps one of duplicate keys",
    r"cannot split command line|program .*(absolute path|is a directory|is empty|must not "
    r"start)|command argument must not": "what shell-like splitting makes of a command line",
    FILE_LEVEL: "the file itself: size, encoding, YAML nodes, tags, keys that are not strings",
    r"bad value: .*(out of range|must be in)|got a date": "YAML 1.1 dates, which JSON reads as text",
    r"unknown time zone": "whether the zone exists on the host",
    r"got \.nan": "NaN, which JSON has not",
    r"expected true(, false)? or (false|strict), got a string": "yes/no/on/off quoted: the words are allowed as "
        "strings, which is how an editor reading YAML 1.2 sees them unquoted",
    r"expected a variable name, got null": "a null key is the string 'null' in JSON",
    r"bytes is less than 1M|is more than 1024T": "the bytes of a size with a unit ('2000T')",
    r"at most two decimals": "two decimals at most: multipleOf is computed in floating point",
    r"is a negative nice": "allow_negative_nice, in the global configuration",
    r"the last delay": "retry's longest delay, a product of attempts, delay and backoff",
    r"CREDENTIALS_DIRECTORY is set for": "two keys together: credentials and environment",
}


def beyond_the_schema(problem: str) -> bool:
    return any(re.search(pattern, problem) for pattern in BEYOND_THE_SCHEMA)


def check_agreement(site: Site, data: bytes, text: str) -> str:
    """The validator and the schema agree on this job file: accepted by the
    one, it passes the other (the strict schema too unless the validator
    warns); rejected, it fails the schema unless what is wrong is beyond
    the schema. Returns "valid", "invalid" or "beyond"."""
    problems = validator_problems(site, data)
    if any(re.search(FILE_LEVEL, p) for p in problems):
        return "beyond"  # not read at all (an alias bomb would take all memory to read)
    try:
        errors = schema_errors(text)
    except yaml.YAMLError:  # PyYAML cannot make data of it ({[a]: x}): nothing to validate
        assert problems
        return "beyond"
    if not problems:
        assert errors == [], errors
        warned = bool(load_job(str(site.jobs / "job.yaml"), site.config()).warnings)
        assert bool(schema_errors(text, STRICT)) == warned
        return "valid"
    if errors:
        return "invalid"
    assert all(beyond_the_schema(p) for p in problems), (problems, "pass the schema")
    return "beyond"


# -- the document ---------------------------------------------------------------


def test_every_job_key_declares_its_fragment() -> None:
    assert [key.name for key in JOB_KEYS if key.schema is None] == []
    for key in JOB_KEYS:
        assert key.schema is not None
        jsonschema.Draft202012Validator.check_schema(dict(key.schema))


@pytest.mark.parametrize("strict", [False, True])
def test_the_schema_is_a_draft_2020_12_schema_of_every_key(strict: bool) -> None:
    schema = job_schema(strict)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].startswith("urn:process-control:job") and schema["title"]
    assert schema["type"] == "object"
    assert schema["required"] == ["name", "command"]
    assert schema["additionalProperties"] is (not strict)
    properties = schema["properties"]
    assert list(properties) == [key.name for key in JOB_KEYS]
    for key in JOB_KEYS:
        assert properties[key.name]["description"] == key.help
    defaults = {name: p["default"] for name, p in properties.items() if "default" in p}
    assert defaults == {"disabled": False, "catch_up": False, "random_delay": 0.0,
                        "timeout": 0.0, "allow_overtime": False,
                        "failure_threshold_for_mail": 1, "sandbox": True, "logging": "journal"}
    for name, default in defaults.items():  # each default passes its own key's fragment
        assert fragment_errors(name, default) == []


def test_unknown_keys_pass_and_fail_only_the_strict_schema() -> None:
    job = {"name": "x", "command": "/bin/true", "comand": "/bin/false"}
    assert list(VALIDATOR.iter_errors(job)) == []
    assert [e.message for e in STRICT.iter_errors(job)] == [
        "Additional properties are not allowed ('comand' was unexpected)"]


# -- every valid job file passes it ------------------------------------------------


def repository_jobs() -> dict[str, str]:
    """The job files of the repository and the tests that are meant to be valid."""
    jobs = {"job.example.yaml": (ROOT / "job.example.yaml").read_text()}
    jobs |= {f"examples/jobs/{p.name}": p.read_text()
             for p in sorted((ROOT / "examples" / "jobs").glob("*.yaml"))}
    jobs |= {f"JOB_FILES[{slug}]": text for slug, text in JOB_FILES.items() if slug != "broken"}
    jobs["original job.example.yaml"] = JOB_EXAMPLE
    return jobs


@pytest.mark.parametrize(("label", "text"), sorted(repository_jobs().items()))
def test_every_job_file_of_the_examples_and_tests_passes(site: Site, label: str,
                                                         text: str) -> None:
    assert validator_problems(site, text.encode()) == []
    assert schema_errors(text) == []
    assert check_agreement(site, text.encode(), text) == "valid"


def test_the_job_example_with_each_commented_out_key_put_in_passes(site: Site) -> None:
    text = (ROOT / "job.example.yaml").read_text()
    blocks = list(re.finditer(r"^#(\w+):.*\n(?:#    .*\n)*", text, re.MULTILINE))
    assert {b.group(1) for b in blocks} == {
        "command", "slow_start_command", "timezone", "disabled", "catch_up", "random_delay",
        "allow_overtime",
        "failure_threshold_for_mail", "failmail", "sandbox", "memory_max", "cpu_quota", "nice",
        "io_class", "logging", "retry", "stop_after_failures", "image", "credentials"}
    for block in blocks:
        job = oracle_load(text) | oracle_load(re.sub(r"^#", "", block.group(0), flags=re.M))
        data = yaml.safe_dump(job).encode()
        assert check_agreement(site, data, data.decode()) == "valid", block.group(1)


# -- the hostile corpus and the broken files: both directions ---------------------

# case id -> (outcome, the validator's problems), filled by the corpus cases
AGREEMENT: dict[str, tuple[str, list[str]]] = {}


def has_text(case: Case) -> bool:
    try:
        case.text()
    except ManifestError:  # a directory, a FIFO...: no job file to validate
        return False
    return True


TEXT_CASES = [case for case in JOB_CASES if has_text(case)]


@pytest.mark.parametrize("case", TEXT_CASES, ids=lambda c: c.id)
def test_the_schema_agrees_with_the_validator_on_the_corpus(site: Site, case: Case) -> None:
    outcome = check_agreement(site, case.data(), case.text())
    AGREEMENT[case.id] = (outcome, validator_problems(site, case.data()))


def test_every_kind_of_problem_beyond_the_schema_is_met_in_the_corpus() -> None:
    """Run after the cases above: no entry of BEYOND_THE_SCHEMA excuses
    nothing, and the corpus has both valid and invalid files the schema
    judges as the validator does."""
    if len(AGREEMENT) != len(TEXT_CASES):
        pytest.skip("needs the corpus cases above in the same run")
    outcomes = [outcome for outcome, _ in AGREEMENT.values()]
    beyond = [p for outcome, problems in AGREEMENT.values() if outcome == "beyond"
              for p in problems]
    unused = [k for k in BEYOND_THE_SCHEMA if not any(re.search(k, p) for p in beyond)]
    assert unused == []
    assert outcomes.count("valid") > 100 and outcomes.count("invalid") > 150


@pytest.mark.parametrize(("text", "error"), BAD, ids=[e for _, e in BAD])
def test_the_broken_job_files_of_the_tests_fail_it_unless_beyond_it(
    site: Site, text: str, error: str
) -> None:
    assert check_agreement(site, text.encode(), text) in ("invalid", "beyond")


# Type errors: the validator's message, and each fails the schema too.
TYPE_ERRORS = [
    ("name: [a, b]", "name: expected a string, got a list"),
    ("name: {a: b}", "name: expected a string, got a mapping"),
    ("name: '  '", "name: must not be empty"),
    ("name: 'trailing \\ '", "name: must not end with a backslash"),
    ("name: \"two\\nlines\"", "name: value must not contain a newline"),
    ("description:", "description: expected a string, got null"),
    ("description: [a]", "description: expected a string, got a list"),
    ("command: 42", "command: expected a command line (a string), got an integer"),
    ("command: true", "command: expected a command line (a string), got a boolean"),
    ("command: [/bin/true, 7]", "command: expected a command line (a string), got an integer"),
    ("command: {a: b}", "command: expected a command line, got a mapping"),
    ("command: '   '", "command: command is empty"),
    ("command: '+/bin/sh -c id'", "command: program must not start with '+'"),
    ("command: [/bin/true, '!/bin/sh']", "command: program must not start with '!'"),
    ("slow_start_command: []", "slow_start_command: must not be an empty list of commands"),
    ("schedule: 5", "schedule: expected 5 fields"),
    ("schedule: '@daily'", "schedule: '@daily': @ aliases are not supported"),
    ("schedule: '0 0 * * * *'", "schedule: expected 5 fields"),
    ("schedule: 'A=1 * * * *'", "schedule: minute: '=' is not allowed"),
    ("schedule: '0 0 * * mon,'", "schedule: day-of-week: empty item in list"),
    ("schedule: '0 0 1#2 * *'", "schedule: day-of-month: '#'"),
    ("schedule: \"0\\t0 * * *\"", "schedule: value must not contain a tab"),
    ("schedule: [0 0 * * *]", "schedule: expected a string, got a list"),
    ("timezone: ''", "timezone: must not be empty"),
    ("timezone: Europe/../UTC", "timezone: unknown time zone"),
    ("timezone: 3", "timezone: unknown time zone '3'"),
    ("disabled: [true]", "disabled: expected a single value, got a list"),
    ("disabled: 1", "disabled: expected true or false, got an integer"),
    ("disabled: maybe", "disabled: expected true or false, got a string"),
    ("sandbox:", "sandbox: expected true, false or strict, got null"),
    ("allow_overtime: 'no way'", "allow_overtime: expected true or false, got a string"),
    ("timeout: '30'", "timeout: expected a number, got a string"),
    ("timeout: 30 minutes", "timeout: expected a number, got a string"),
    ("timeout: -1", "timeout: must be a number of minutes >= 0, got -1"),
    ("timeout: .inf", "timeout: must be a number of minutes >= 0, got .inf"),
    ("timeout: 5256001", "timeout: is longer than ten years"),
    ("timeout: true", "timeout: expected a number, got a boolean"),
    ("timeout: [1]", "timeout: expected a single value, got a list"),
    ("failure_threshold_for_mail: 0", "failure_threshold_for_mail: must be a whole number >= 1"),
    ("failure_threshold_for_mail: -3", "failure_threshold_for_mail: must be a whole number >= 1"),
    ("failure_threshold_for_mail: 1.5", "failure_threshold_for_mail: must be a whole number"),
    ("failure_threshold_for_mail: '2'", "failure_threshold_for_mail: expected a number"),
    ("environment: [A=1]", "environment: expected a mapping of NAME: value, got a list"),
    ("environment: A=1", "environment: expected a mapping of NAME: value, got a string"),
    ("environment: {1A: x}", "environment.1A: '1A' is not a valid variable name"),
    ("environment: {A-B: x}", "environment.A-B: 'A-B' is not a valid variable name"),
    ("environment: {A: }", "environment.A: expected a value, got null"),
    ("environment: {A: [x]}", "environment: expected a single value, got a list"),
    ("environment: {A: {b: c}}", "environment: expected a single value, got a mapping"),
    ("environment: {A: \"x\\ny\"}", "environment value of A must not contain a newline"),
    ("tag: []", "tag: must not be an empty list of strings"),
    ("tag: [a, [b]]", "tag: expected a string, got a list"),
    ("tag: [a, '']", "tag: must not be empty"),
    ("tag: {a: b}", "tag: expected a string, got a mapping"),
    ("failmail: a@example.org", "failmail: expected a mapping, got a string"),
    ("failmail: [a@example.org]", "failmail: expected a mapping, got a list"),
    ("failmail: {to_address: a@example.org}", "failmail: from_address is missing"),
    ("failmail: {from_address: a@example.org}", "failmail: to_address is missing"),
    ("failmail: {from_address: a@b, to_address: c@d, cc: e@f}", "failmail.cc: unknown key"),
    ("failmail: {from_address: '', to_address: c@d}", "failmail.from_address: must not be empty"),
    ("failmail: {from_address: [a@b], to_address: c@d}",
     "failmail.from_address: expected a string, got a list"),
    ("memory_max: 512", "memory_max: 512 bytes is less than 1M"),
    ("memory_max: -1", "memory_max: expected a size such as 512M or 2G"),
    ("memory_max: 512MB", "memory_max: expected a size such as 512M or 2G"),
    ("memory_max: 1.5G", "memory_max: expected a size such as 512M or 2G"),
    ("memory_max: [512M]", "memory_max: expected a single value, got a list"),
    ("memory_max: true", "memory_max: expected a size such as 512M or 2G, got a boolean"),
    ("cpu_quota: 0", "cpu_quota: must be a percentage > 0"),
    ("cpu_quota: -50", "cpu_quota: must be a percentage > 0"),
    ("cpu_quota: 100001", "cpu_quota: must be a percentage > 0 and <= 100000"),
    ("cpu_quota: 50 %", "cpu_quota: expected a percentage such as 50 or 150%"),
    ("cpu_quota: half", "cpu_quota: expected a percentage such as 50 or 150%"),
    ("cpu_quota: true", "cpu_quota: expected a percentage such as 50 or 150%, got a boolean"),
    ("nice: 20", "nice: must be a whole number from -20 to 19, got 20"),
    ("nice: -21", "nice: must be a whole number from -20 to 19, got -21"),
    ("nice: 1.5", "nice: must be a whole number from -20 to 19"),
    ("nice: '5'", "nice: expected a number, got a string"),
    ("io_class: realtime", "io_class: must be one of idle, best-effort, got 'realtime'"),
    ("io_class: [idle]", "io_class: expected a string, got a list"),
    ("logging: syslog", "logging: must be one of journal, file, got 'syslog'"),
    ("logging: Journal", "logging: must be one of journal, file, got 'Journal'"),
    ("logging: [journal]", "logging: expected a string, got a list"),
    ("logging: {journal: true}", "logging: expected a string, got a mapping"),
]


@pytest.mark.parametrize(("line", "error"), TYPE_ERRORS, ids=[line for line, _ in TYPE_ERRORS])
def test_type_errors_the_validator_rejects_fail_the_schema(site: Site, line: str,
                                                           error: str) -> None:
    text = ("" if line.startswith("name:") else "name: x\n") + (
        "" if line.startswith("command:") else "command: /bin/true\n") + line + "\n"
    problems = validator_problems(site, text.encode())
    assert len(problems) == 1 and error in problems[0], problems
    assert schema_errors(text) != []
    assert check_agreement(site, text.encode(), text) == "invalid"


def test_a_file_that_is_not_a_mapping_or_lacks_a_required_key_fails(site: Site) -> None:
    for text in ("just text\n", "- a\n", "name: x\n", "command: /bin/true\n"):
        assert validator_problems(site, text.encode()) != []
        assert schema_errors(text) != [], text


# -- the fragments that stand for a parser's rules: both directions -------------


def schedule_expressions() -> list[str]:
    """Every schedule tests/test_schedule.py tries, valid or not."""
    from tests import test_schedule

    found = []
    for test in vars(test_schedule).values():
        for mark in getattr(test, "pytestmark", ()):
            if mark.name != "parametrize":
                continue
            names = mark.args[0]
            names = names.split(",") if isinstance(names, str) else list(names)
            if names[0].strip() == "expr":
                found += [row[0] if len(names) > 1 else row for row in mark.args[1]]
    return found


def fuzzed_schedules(count: int) -> list[str]:
    """Schedules made of items cron takes in each field, and now and then
    one it refuses, a separator too many or a field too few (seeded)."""
    import random

    pick = random.Random(17)
    fields = (["0", "59", "*/15", "0-30/5", "5,10"], ["*", "23", "9-17", "0/6", "1,13"],
              ["1", "31", "*/2", "1-15", "L"], ["jan", "Dec", "1-6", "*/3", "feb-MAR/2"],
              ["sun", "7", "mon-fri", "0-6/2", "SAT,sun"])
    odd = ["60", "1#2", "?", "", ",", "-", "/", "@daily", "A=1", "5W", "*/0", "x-", "日"]
    made = []
    for _ in range(count):
        items = [",".join(pick.choice(f) for _ in range(pick.choice((1, 1, 2))))
                 for f in fields]
        if pick.random() < 0.5:
            items[pick.randrange(5)] = pick.choice(odd)
        if pick.random() < 0.1:
            del items[pick.randrange(5)]
        made.append((pick.choice((" ", "  ")).join(items)).center(pick.choice((0, 12))))
    return made


def test_the_schedule_fragment_refuses_nothing_parse_schedule_accepts() -> None:
    from pc_systemd.model.schedule import ScheduleError, parse_schedule

    expressions = schedule_expressions() + fuzzed_schedules(20_000)
    assert len(schedule_expressions()) > 100
    accepted = refused = 0
    for expr in expressions:
        try:
            parse_schedule(expr)
        except ScheduleError:
            refused += bool(fragment_errors("schedule", expr))
            continue
        if "\t" in expr:  # f.text refuses a tab before parse_schedule sees it
            continue
        assert fragment_errors("schedule", expr) == [], expr
        accepted += 1
    assert accepted > 1000 and refused > 5000  # both directions were tried


def test_the_timezone_fragment_takes_every_zone_of_the_host() -> None:
    zones = zoneinfo.available_timezones()
    assert len(zones) > 300
    assert [zone for zone in zones if fragment_errors("timezone", zone)] == []
    for bad in ("/UTC", "Europe//Berlin", "../etc/passwd", "UTC ", "Europe/Berlin\n", ""):
        assert fragment_errors("timezone", bad) != [], bad


def test_yaml_1_1_booleans_pass_as_the_validator_reads_them_and_as_an_editor_does(
    site: Site,
) -> None:
    """Unquoted yes/no/on/off are booleans to the validator (YAML 1.1, as the
    original) and strings to an editor reading YAML 1.2: both pass."""
    for word in YAML11_BOOLEANS:
        text = f"name: x\ncommand: /bin/true\nsandbox: {word}\n"
        assert validator_problems(site, text.encode()) == [], word
        assert isinstance(oracle_load(text)["sandbox"], bool)
        assert fragment_errors("sandbox", word) == []  # the string an editor sees
    for word in ("y", "n", "True ", "enabled", "1"):
        assert validator_problems(site, f"name: x\ncommand: /bin/true\nsandbox: '{word}'\n"
                                  .encode()) != []
        assert fragment_errors("sandbox", word) != [], word


def test_one_line_text_refuses_the_control_characters_check_line_refuses() -> None:
    for char in "\x00\x01\t\n\r\x1b\x7f\x85\x9f\u2028\u2029\ufdd0\ufffe\uffff":
        assert fragment_errors("name", f"a{char}b") != [], repr(char)
        assert fragment_errors("tag", ["ok", f"a{char}b"]) != [], repr(char)
    assert fragment_errors("command", "/bin/echo\ta") == []  # tabs separate arguments
    assert fragment_errors("description", "two\nlines\ttabbed") == []
    assert fragment_errors("description", "a\x00b") != []
    assert fragment_errors("name", "é ü 日本 \U0001f600 100% $HOME") == []
    assert fragment_errors("name", "x" * 32768) == []
    assert fragment_errors("name", "x" * 32769) != []


# -- run-job schema -----------------------------------------------------------------


def test_run_job_schema_prints_the_schema() -> None:
    result = CliRunner().invoke(run_job, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.output) == job_schema()
    assert result.output.isascii() and result.output.endswith("}\n")
    strict = CliRunner().invoke(run_job, ["schema", "--strict"])
    assert strict.exit_code == 0 and json.loads(strict.output) == job_schema(strict=True)
    assert "Print the JSON Schema of job files." in CliRunner().invoke(run_job, ["--help"]).output


def test_the_shipped_schema_file_is_current() -> None:
    """job.schema.json (installed as /usr/share/process-control/job.schema.json)."""
    shipped = (ROOT / SCHEMA_FILE).read_text(encoding="utf-8")
    assert shipped == schema_text(), (
        "run: .venv/bin/python -m pc_systemd.cli.docs docs/configuration.md job.schema.json")
