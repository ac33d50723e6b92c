"""The hostile corpus (``tests/hostile/``) handed to a real systemd 252.

One container for the module. The generator is installed the documented
way (``run-job --install-generator``) with every accepted case of the
corpus in the job directory at once, next to the two reference jobs of
``tests/hostile_corpus.py``. Then, read back from systemd over D-Bus
(pystemd's ``GetAll``, run inside the container by the checkout's venv):

* every accepted case's units are loaded;
* their ``ExecStart=`` argument lists, ``Environment=``, ``User=``,
  ``Description=`` and time limit are exactly the declared ones, byte for
  byte;
* every other property equals the reference job's (with the slug swapped):
  the job file added no setting of its own (no ``User=``, no
  ``ExecStartPre=``, no ``DynamicUser=``, ...);
* a few of them run and print exactly what they were given.

The last test adds the rejected cases too: a broken or hostile file must
never keep the other jobs from being generated.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.hostile_corpus import (
    JOB_CASES,
    REF_NAME,
    REFS,
    USER,
    Case,
    Declared,
    Site,
    UnitLoadError,
    declared,
    failure_units,
    no_variables,
    place_job,
)
from tests.systemd_box import SystemdBox, checkout_box

pytestmark = pytest.mark.systemd

VENV = Path(sys.prefix)
PYTHON = str(VENV / "bin" / "python")
RUN_JOB = str(VENV / "bin" / "run-job")
JOBS = "/var/lib/process-control"
OUTSIDE = "/var/lib/pc-hostile-outside"
CONFIG = f"""\
user: {USER}
job_directory: {JOBS}
output_directory: /var/log/process-control
"""
ACCEPTED = [c for c in JOB_CASES if c.outcome in ("accept", "either")]
REJECTED = [c for c in JOB_CASES if c.outcome in ("reject", "ignored")]
INFINITY = 2**64 - 1  # systemd's USEC_INFINITY

# GetAll of a unit's interfaces, as JSON; strings stay byte-exact (bytes
# that are not UTF-8 come back as surrogate escapes).
DUMP = r"""
import json, sys
from pystemd.dbuslib import DBus, apply_signature, path_encode

def plain(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    return value

out = {}
with DBus() as bus:
    for name in sys.argv[1:]:
        path = path_encode(b"/org/freedesktop/systemd1/unit", name.encode())
        props = {}
        kind = name.rsplit(".", 1)[1].capitalize()
        try:
            for iface in ("Unit", kind):
                reply = bus.call_method(
                    b"org.freedesktop.systemd1", path, b"org.freedesktop.DBus.Properties",
                    b"GetAll", apply_signature(b"s", [f"org.freedesktop.systemd1.{iface}".encode()]),
                ).body
                props.update(plain(reply))
        except Exception as err:  # e.g. a name systemd does not take as a unit name
            props = {"LoadState": "no-such-name", "LoadError": str(err)}
        out[name] = props
json.dump(out, sys.stdout, ensure_ascii=True)
"""

# Properties that differ between two jobs by design; each is checked on
# its own below (or, for timers, is about when they fire).
SERVICE_OWN = {"Id", "Names", "Description", "ExecStart", "ExecStartEx", "Environment",
               "TimeoutStartUSec", "TriggeredBy", "After", "OnFailure", "LoadCredential"}
CREDENTIALS = "/etc/process-control/credentials"  # the default credentials_directory
# The limits a job may declare, each checked against the declared value.
LIMITS = {"MemoryMax", "CPUQuotaPerSecUSec", "Nice", "IOSchedulingClass"}
IO_CLASSES = {"best-effort": 2, "idle": 3}  # IOPRIO_CLASS_*
TIMER_OWN = {"Id", "Names", "Description", "TimersCalendar", "NextElapseUSecRealtime",
             "NextElapseUSecMonotonic", "LastTriggerUSec", "LastTriggerUSecMonotonic",
             "ActiveState", "SubState", "WantedBy", "Result", "InvocationID",
             "ConditionResult", "AssertResult", "Persistent", "RandomizedDelayUSec",
             "FixedRandomDelay"}


def unit(slug: str, suffix: str) -> str:
    return f"process-control-{slug}{suffix}"


def write(box: SystemdBox, path: str, data: bytes) -> None:
    host = box.path(path)
    host.parent.mkdir(parents=True, exist_ok=True)
    host.write_bytes(data)


def place_accepted(box: SystemdBox, case: Case) -> None:
    """An accepted case in the container's job directory (symlinks point
    at container paths)."""
    jobs = box.path(JOBS)
    setup: Any = case.spec.get("setup")
    name = case.filename.decode("utf-8", "surrogateescape")
    if setup is None:
        (jobs / name).write_bytes(case.data())
        return
    if setup.get("kind") != "symlink" or setup["target"] not in ("inside", "inside-relative"):
        raise AssertionError(f"{case.id}: no way to place an accepted {setup!r} here")
    target = f".target-{case.id}"
    (jobs / target).write_bytes(case.data())
    (jobs / name).symlink_to(target if setup["target"] == "inside-relative" else f"{JOBS}/{target}")


@pytest.fixture(scope="module")
def box() -> Iterator[SystemdBox]:
    with checkout_box() as booted:
        booted.run(["useradd", "--create-home", USER])
        booted.write_file("/etc/process-control.yaml", CONFIG)
        for slug, text in REFS.items():
            write(booted, f"{JOBS}/{slug}.yaml", text.encode())
        for case in ACCEPTED:
            place_accepted(booted, case)
        booted.run([RUN_JOB, "--install-generator"], timeout=120)
        yield booted


def dump(box: SystemdBox, names: list[str]) -> dict[str, dict[str, Any]]:
    result = box.run([PYTHON, "-c", DUMP, *names], timeout=120)
    loaded: dict[str, dict[str, Any]] = json.loads(result.stdout)
    return loaded


@pytest.fixture(scope="module")
def props(box: SystemdBox) -> dict[str, dict[str, Any]]:
    """Every unit of every accepted case and reference, read before any runs."""
    names = []
    for slug in [*REFS, *(c.slug for c in ACCEPTED)]:
        names += [unit(slug, ".service"), unit(slug, ".slow-start.service"),
                  unit(slug, ".timer")]
    return dump(box, names)


def swap(value: Any, ref: str, slug: str, name: str) -> Any:
    """The reference's value with its slug and name replaced by the case's."""
    if isinstance(value, str):
        return value.replace(REF_NAME, name).replace(ref, slug)
    if isinstance(value, list):
        return [swap(v, ref, slug, name) for v in value]
    if isinstance(value, dict):
        return {k: swap(v, ref, slug, name) for k, v in value.items()}
    return value


def without_timers(value: list[str]) -> list[str]:
    return sorted(v for v in value if not v.endswith(".timer"))


def same(a: Any, b: Any) -> bool:
    """Equal, taking lists of names (dependencies, ...) as sets."""
    if isinstance(a, list) and isinstance(b, list) and all(isinstance(v, str) for v in a + b):
        return sorted(a) == sorted(b)
    return bool(a == b)


def argvs(prop: list[list[Any]]) -> list[list[str]]:
    """What each ExecStart= record runs: D-Bus shows argv before systemd
    replaces variables at exec time ($$ -> $, ${X} and $X expanded), so
    that step is applied here; the path must be argv[0] (no '@' prefix)."""
    out = []
    for record in prop:
        path, argv = record[0], list(record[1])
        try:
            ran = [no_variables(arg) for arg in argv]
        except UnitLoadError as err:
            ran = [f"<{err}>", *argv]
        if [re.sub("/+", "/", a) for a in argv[:1]] != [path]:  # systemd folds '//'
            ran = [f"<path {path!r} differs from argv[0]>", *ran]
        out.append(ran)
    return out


def service_problems(
    got: Mapping[str, Any], ref_props: Mapping[str, Any], ref: str, slug: str,
    decl: Declared, commands: tuple[tuple[str, ...], ...],
) -> list[str]:
    problems = []
    if got.get("LoadState") != "loaded":
        return [f"LoadState={got.get('LoadState')}, LoadError={got.get('LoadError')}"]
    want = swap(dict(ref_props), ref, slug, decl.name)
    for key in sorted(set(got) | set(want)):
        if key in SERVICE_OWN or key in LIMITS:
            continue
        if not same(got.get(key), want.get(key)):
            problems.append(f"{key}={got.get(key)!r}, the template gives {want.get(key)!r}")
    if got.get("OnFailure") not in failure_units(slug, decl):
        problems.append(f"OnFailure={got.get('OnFailure')!r}: only the job's own file check "
                        "and mail unit")
    if got.get("User") != USER:
        problems.append(f"User={got.get('User')!r}")
    if got["Description"] != want["Description"]:
        problems.append(f"Description={got['Description']!r}, expected {want['Description']!r}")
    if without_timers(got["After"]) != without_timers(want["After"]):
        problems.append(f"After={got['After']!r}")
    prefix = argvs(want["ExecStart"])[0][:-1]
    expected = [prefix + list(argv) for argv in commands]
    if argvs(got["ExecStart"]) != expected:
        problems.append(f"ExecStart runs {argvs(got['ExecStart'])!r}, declared {expected!r}")
    env = list(want["Environment"]) + [f"{k}={v}" for k, v in decl.env]
    if got["Environment"] != env:
        problems.append(f"Environment={got['Environment']!r}, declared {env!r}")
    # (systemd keeps them in a hash table: their order is not the file's)
    loaded = sorted([str(v) for v in pair] for pair in got.get("LoadCredential") or [])
    credentials = sorted([name, f"{CREDENTIALS}/{slug}/{name}"] for name in decl.credentials)
    if loaded != credentials:
        problems.append(f"LoadCredential={loaded!r}, declared {credentials!r}")
    usec = round(decl.timeout * 60_000_000)
    limit = got["TimeoutStartUSec"]
    if (limit == INFINITY) != (decl.timeout == 0) or (
        limit != INFINITY and abs(limit - usec) > 1000
    ):
        problems.append(f"TimeoutStartUSec={limit} for a declared {decl.timeout} min")
    declared_limits = {
        "MemoryMax": decl.memory_max,
        "CPUQuotaPerSecUSec": None if decl.cpu_quota is None else round(decl.cpu_quota * 10_000),
        "Nice": decl.nice,
        "IOSchedulingClass": None if decl.io_class is None else IO_CLASSES[decl.io_class],
    }
    for key, value in declared_limits.items():
        expected = want.get(key) if value is None else value  # undeclared: as the reference
        if got.get(key) != expected:
            problems.append(f"{key}={got.get(key)!r}, declared {expected!r}")
    return problems


def timer_problems(
    got: Mapping[str, Any], ref_props: Mapping[str, Any], ref: str, slug: str, decl: Declared
) -> list[str]:
    if got.get("LoadState") != "loaded":
        return [f"timer LoadState={got.get('LoadState')}"]
    want = swap(dict(ref_props), ref, slug, decl.name)
    if decl.catch_up:
        # What systemd 252 itself adds to a Persistent= timer: its stamp
        # file's directory must be mounted, and `systemctl clean` removes it.
        want["After"] = [*want["After"], "-.mount"]
        want["RequiresMountsFor"] = ["/var/lib/systemd/timers"]
        want["CanClean"] = ["state"]
    problems = [
        f"timer {key}={got.get(key)!r}, the template gives {want.get(key)!r}"
        for key in sorted(set(got) | set(want))
        if key not in TIMER_OWN and "Timestamp" not in key and not same(got.get(key), want.get(key))
    ]
    if not got["TimersCalendar"]:
        problems.append("timer without a calendar")
    if (got["ActiveState"] == "active") != decl.scheduled:
        problems.append(f"timer {got['ActiveState']}, scheduled: {decl.scheduled}")
    if got["Persistent"] != decl.catch_up:
        problems.append(f"timer Persistent={got['Persistent']!r}, catch_up: {decl.catch_up}")
    delay = round(decl.random_delay * 60_000_000)
    if abs(got["RandomizedDelayUSec"] - delay) > 1000 or \
            got["FixedRandomDelay"] != (decl.random_delay > 0):
        problems.append(f"timer RandomizedDelayUSec={got['RandomizedDelayUSec']!r} "
                        f"FixedRandomDelay={got['FixedRandomDelay']!r}, "
                        f"random_delay: {decl.random_delay}")
    return problems


def case_problems(case: Case, props: Mapping[str, Mapping[str, Any]]) -> list[str]:
    decl = declared(case)
    ref = "reffile0" if decl.logging == "file" else "refjournal0"
    service = props[unit(case.slug, ".service")]
    if case.outcome == "either" and service.get("LoadState") == "not-found":
        return []  # rejected: test_hostile checks the error
    problems = service_problems(
        service, props[unit(ref, ".service")], ref, case.slug, decl, decl.argv
    )
    slow = props[unit(case.slug, ".slow-start.service")]
    if decl.slow_argv:
        problems += [f"slow start: {p}" for p in service_problems(
            slow, props[unit(ref, ".slow-start.service")], ref, case.slug, decl, decl.slow_argv
        )]
    elif slow.get("LoadState") != "not-found":
        problems.append("a slow-start unit for a job without slow_start_command")
    timer = props[unit(case.slug, ".timer")]
    if decl.schedule is not None:
        problems += timer_problems(timer, props[unit(ref, ".timer")], ref, case.slug, decl)
    elif timer.get("LoadState") != "not-found":
        problems.append("a timer for a job without a schedule")
    return problems


def test_references_loaded(props: Mapping[str, Mapping[str, Any]]) -> None:
    for ref in REFS:
        for suffix in (".service", ".slow-start.service", ".timer"):
            assert props[unit(ref, suffix)]["LoadState"] == "loaded", (ref, suffix)
        assert props[unit(ref, ".service")]["User"] == USER


def test_every_accepted_case_is_exactly_what_it_declares(
    props: Mapping[str, Mapping[str, Any]],
) -> None:
    failures = {}
    for case in ACCEPTED:
        problems = case_problems(case, props)
        if problems:
            bug = f" [known bug {case.bug}]" if case.bug else ""
            failures[f"{case.id}{bug}"] = problems
    assert not failures, "\n".join(
        f"{case}:\n" + "".join(f"  - {p[:600]}\n" for p in problems)
        for case, problems in failures.items()
    )


@pytest.mark.parametrize("case", [c for c in ACCEPTED if "run" in c.spec], ids=lambda c: c.id)
def test_hostile_job_runs_with_exactly_its_arguments(
    box: SystemdBox, props: Mapping[str, Mapping[str, Any]], case: Case
) -> None:
    name = unit(case.slug, ".service")
    box.systemctl("start", name)
    lines = box.journal(name, manager_messages=False)
    expected = [str(line) for line in case.spec["run"]]
    found = [line for line in lines if line in expected]
    assert found == expected, lines


def test_rejected_cases_harm_no_other_job(
    box: SystemdBox, props: Mapping[str, Mapping[str, Any]]
) -> None:
    """Everything at once: the rejected cases join the accepted ones; after
    a daemon-reload every accepted unit is still there and no rejected
    case has a unit."""
    box.systemctl("stop", "process-control-reload.path")  # this test reloads itself
    root = box.path("/var/lib")
    site = Site(root / "pc-hostile-outside", box.path(JOBS), root / "unused.yaml",
                root / "unused-out", root / "unused-crontab")
    site.root.mkdir(exist_ok=True)
    for case in REJECTED:
        place_job(site, case)
    box.systemctl("daemon-reload")
    names = [unit(slug, ".service") for slug in [*REFS, *(c.slug for c in JOB_CASES)]]
    after = dump(box, names)
    generated = {n for n, p in after.items() if p.get("LoadState") == "loaded"}
    problems = []
    # a case that loaded on its own must still load (the others report
    # the cases that did not)
    lost = [case.id for case in ACCEPTED
            if props[unit(case.slug, ".service")].get("LoadState") == "loaded"
            and unit(case.slug, ".service") not in generated]
    if lost:
        problems.append(f"{len(lost)} accepted job(s) lost their units: {', '.join(lost[:8])}, ...")
    problems += [f"{case.id} ({case.outcome}) has a unit" for case in REJECTED
                 if unit(case.slug, ".service") in generated]
    problems += [f"the good job {ref} is gone" for ref in REFS
                 if unit(ref, ".service") not in generated]
    if problems:
        problems.append("--- why: the generator run by hand (under systemd it has no stderr)")
        by_hand = box.run([PYTHON, "-I", "-S", f"{ROOT}/generators/process-control-generator",
                           "/run/pc-hostile-gen", "/run/pc-hostile-gen", "/run/pc-hostile-gen"],
                          check=False, timeout=120)
        problems += [line for line in by_hand.stderr.splitlines()
                     if ": warning: " not in line][-40:]
        problems.append("--- and what systemd said about generators")
        problems.append(box.run(["journalctl", "-b", "_PID=1", "--no-pager", "-o", "cat",
                                 "--grep", "generator"], check=False).stdout[-1500:])
    assert not problems, "\n".join(problems)
