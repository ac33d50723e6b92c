"""Hostile and broken inputs (issue 8): every case of ``tests/hostile/``
through every entry point, without a running systemd.

Each job case gets its own job directory with two good reference jobs
beside it (``refjournal0`` and ``reffile0``), and goes through
``run-job --validate`` (the directory and the file), the generator,
``cron-generate``, ``run-job --list-jobs`` and ``run-job --status`` (backend
``direct``). A case is either

* rejected: a one-line ``path:line: key: ...`` naming the file and the
  expected key, no unit and no cron line for it, the reference jobs
  generated as usual; or
* accepted: the units hold exactly the declared values. Units are read the
  way systemd 252 reads them (line continuation, specifiers, quoting,
  C escapes, ``$`` expansion; see :func:`parse_unit`) and compared with the
  reference job's units: every setting equal (the slug and name swapped),
  and ``ExecStart=``, ``Environment=`` and ``TimeoutStartSec=`` equal to the
  declared argument lists, variables and time limit.

Never a traceback, never a hang, and every call well under a second.
``docs/hostile-inputs.md`` describes the corpus; cases with a ``bug:`` entry
are known to fail until the bug named there is fixed.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import resource
import shlex
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from click.testing import CliRunner

from pc_systemd.cli import cron_generate
from pc_systemd.cli.run_job import run_job
from pc_systemd.model import config_file, file_cache
from pc_systemd.systemd.filelog import wrapped
from pc_systemd.systemd.generator import generate
from tests.conftest import ROOT
from tests.hostile_corpus import (
    CASES,
    CONFIG_CASES,
    JOB_CASES,
    REF_NAME,
    REF_SCHEDULE,
    REFS,
    RUNNER,
    USER,
    Case,
    Declared,
    Site,
    UnitLoadError,
    command_argvs,
    declared,
    env_words,
    exec_argv,
    failure_units,
    make_site,
    oracle_load,
    parse_unit,
    place_job,
    resolve_specifiers,
    split_words,
    timespan_usec,
)

# Seconds of CPU time per entry point per case: "well under a second". CPU
# time, not wall time, so that a busy test machine does not fail the
# corpus; a call that blocks (a FIFO) is caught by the HANG alarm instead.
LIMIT = 0.5
HANG = 20.0  # wall seconds: a call still running after this is a hang
# The generator's own units: written whatever the jobs (metrics only with metrics_file).
OUR_UNITS = {"process-control-reload.path", "process-control-reload.service",
             "process-control-mail@.service", "process-control-filecheck@.service"}
METRICS_UNITS = {"process-control-metrics.service", "process-control-metrics.timer"}
# One output line must stay one line, and never steer a terminal: no C0
# control character but tab, no DEL.
_NOT_IN_A_LINE = re.compile("[\x00-\x08\x0a-\x1f\x7f]")


def case_param(case: Case) -> Any:
    # Known bugs are listed in docs/hostile-inputs.md; their ids carry the
    # bug name so a failing run says at once which bug it is.
    label = f"{case.id}[{case.bug}]" if case.bug else case.id
    return pytest.param(case, id=label)


# -- comparing a case's units with the reference job's --------------------------

_SPECIAL = {"ExecStart", "Environment", "TimeoutStartSec", "OnFailure", "LoadCredential"}
CREDENTIALS = "/etc/process-control/credentials"  # the default credentials_directory
# the limits a job may declare: each checked against the declared value
_LIMITS = {"MemoryMax", "CPUQuota", "Nice", "IOSchedulingClass"}
_TIMER_SPECIAL = {"OnCalendar", "Persistent", "RandomizedDelaySec", "FixedRandomDelay"}


def _swap(value: str, ref: str, slug: str, name: str) -> str:
    return value.replace(REF_NAME, name).replace(ref, slug)


def compare_service(
    text: str, ref_text: str, ref: str, slug: str, decl: Declared, argvs: Sequence[Sequence[str]]
) -> list[str]:
    try:
        entries = parse_unit(text)
    except UnitLoadError as err:
        return [f"systemd would not load it: {err}"]
    ref_entries = parse_unit(ref_text)
    problems = []
    if any(section == "" for section, _k, _v in entries):
        problems.append("an assignment outside any section")
    got = [(s, k, resolve_specifiers(v)) for s, k, v in entries if k not in _SPECIAL | _LIMITS]
    want = [
        (s, k, _swap(resolve_specifiers(v), ref, slug, decl.name))
        for s, k, v in ref_entries
        if k not in _SPECIAL | _LIMITS
    ]
    problems += limit_problems(entries, decl)
    if got != want:
        extra = [e for e in got if e not in want]
        missing = [e for e in want if e not in got]
        problems.append(f"settings differ from the template's: extra {extra!r}, missing {missing!r}")
    credentials = [(s, v) for s, k, v in entries if k == "LoadCredential"]
    declared = [("Service", f"{name}:{CREDENTIALS}/{slug}/{name}") for name in decl.credentials]
    if credentials != declared:
        problems.append(f"LoadCredential= is {credentials!r}, declared {declared!r}")
    on_failure = [v for _s, k, v in entries if k == "OnFailure"]
    if on_failure not in ([" ".join(units)] if units else [] for units in failure_units(slug, decl)):
        problems.append(f"OnFailure={on_failure!r}: only the job's own file check and mail "
                        "unit may be named")
    try:
        ref_exec = [exec_argv(v) for _s, k, v in ref_entries if k == "ExecStart"]
        prefix = [_swap(a, ref, slug, decl.name) for a in ref_exec[0][:-1]]
        got_exec = [exec_argv(v) for _s, k, v in entries if k == "ExecStart"]
        want_exec = [prefix + list(argv) for argv in argvs]
        if got_exec != want_exec:
            problems.append(f"ExecStart= runs {got_exec!r}, declared {want_exec!r}")
        ref_env = [w for _s, k, v in ref_entries if k == "Environment" for w in env_words(v)]
        got_env = [w for _s, k, v in entries if k == "Environment" for w in env_words(v)]
        want_env = [_swap(w, ref, slug, decl.name) for w in ref_env]
        want_env += [f"{name}={value}" for name, value in decl.env]
        if got_env != want_env:
            problems.append(f"Environment= is {got_env!r}, declared {want_env!r}")
    except UnitLoadError as err:
        problems.append(str(err))
    timeouts = [v for _s, k, v in entries if k == "TimeoutStartSec"]
    expected_usec = round(decl.timeout * 60 * 1_000_000)
    if len(timeouts) != 1:
        problems.append(f"TimeoutStartSec= set {len(timeouts)} times")
    else:
        usec = timespan_usec(timeouts[0])
        if (usec is None) != (decl.timeout == 0) or (
            usec is not None and abs(usec - expected_usec) > 1000
        ):
            problems.append(
                f"TimeoutStartSec={timeouts[0]} for a declared timeout of {decl.timeout} min"
            )
    return problems


def limit_problems(entries: list[tuple[str, str, str]], decl: Declared) -> list[str]:
    """Each limit setting once, in [Service], exactly the declared value
    (read as systemd 252 reads it: bytes, a percentage, a number, a class;
    it expands no specifier in these settings), and none that was not
    declared."""
    declared_values: dict[str, object] = {
        "MemoryMax": decl.memory_max, "CPUQuota": decl.cpu_quota, "Nice": decl.nice,
        "IOSchedulingClass": decl.io_class,
    }
    readers = {"MemoryMax": int, "CPUQuota": lambda v: float(v.removesuffix("%")),
               "Nice": int, "IOSchedulingClass": str}
    problems = []
    for key, want in declared_values.items():
        found = [(s, v) for s, k, v in entries if k == key]
        expected = [] if want is None else [("Service", want)]
        try:
            got = [(s, readers[key](v)) for s, v in found]
        except ValueError:
            got = [(s, f"<unreadable {v!r}>") for s, v in found]
        if got != expected:
            problems.append(f"{key}= is {got!r}, declared {expected!r}")
    return problems


def compare_timer(text: str, ref_text: str, ref: str, slug: str, decl: Declared) -> list[str]:
    try:
        entries = parse_unit(text)
    except UnitLoadError as err:
        return [f"systemd would not load the timer: {err}"]
    ref_entries = parse_unit(ref_text)
    got = [(s, k, resolve_specifiers(v)) for s, k, v in entries if k not in _TIMER_SPECIAL]
    want = [
        (s, k, _swap(resolve_specifiers(v), ref, slug, decl.name))
        for s, k, v in ref_entries
        if k not in _TIMER_SPECIAL
    ]
    problems = []
    if got != want:
        problems.append(f"timer settings differ: got {got!r}, want {want!r}")
    calendars = [v for _s, k, v in entries if k == "OnCalendar"]
    if not calendars or any("<%" in resolve_specifiers(v) for v in calendars):
        problems.append(f"OnCalendar= {calendars!r}")
    return problems + timer_keys_problems(entries, decl)


def timer_keys_problems(entries: list[tuple[str, str, str]], decl: Declared) -> list[str]:
    """catch_up and random_delay: exactly the settings they declare."""
    def values(key: str) -> list[str]:
        return [v for s, k, v in entries if k == key and s == "Timer"]

    problems = []
    if values("Persistent") != (["yes"] if decl.catch_up else []):
        problems.append(f"Persistent={values('Persistent')!r} for catch_up: {decl.catch_up}")
    delays = values("RandomizedDelaySec")
    fixed = values("FixedRandomDelay")
    if decl.random_delay == 0:
        if delays or fixed:
            problems.append(f"RandomizedDelaySec={delays!r} FixedRandomDelay={fixed!r}, no delay")
    else:
        usec = timespan_usec(delays[0]) if len(delays) == 1 else None
        want = round(decl.random_delay * 60_000_000)
        if usec is None or abs(usec - want) > 1000 or fixed != ["yes"]:
            problems.append(f"RandomizedDelaySec={delays!r} FixedRandomDelay={fixed!r} for "
                            f"random_delay: {decl.random_delay}")
    return problems


# -- the entry points -------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    entry: str
    code: int | None
    out: str
    err: str
    seconds: float  # CPU time
    crash: str | None  # a traceback, or why the call never returned

    def lines(self, stream: str = "out") -> list[str]:
        text = self.out if stream == "out" else self.err
        return [line for line in text.split("\n") if line]


class Hang(BaseException):
    """Raised by the alarm: a call that did not return (BaseException, so
    that no ``except Exception`` in the code under test swallows it)."""


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    def alarm(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def timed(entry: str, call: Callable[[], tuple[int | None, str, str, str | None]]) -> Run:
    start = time.process_time()
    try:
        with deadline(HANG):
            code, out, err, crash = call()
    except Hang as hang:
        code, out, err, crash = None, "", "", f"hang: {hang}"
    except Exception as exc:
        code, out, err, crash = None, "", "", "".join(traceback.format_exception(exc))
    return Run(entry, code, out, err, time.process_time() - start, crash)


def run_cli(site: Site, *args: str) -> Run:
    def call() -> tuple[int | None, str, str, str | None]:
        result = CliRunner().invoke(run_job, ["--config", str(site.config), *args])
        crash = None
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            crash = "".join(traceback.format_exception(result.exception))
        return result.exit_code, result.stdout, result.stderr, crash

    return timed("run-job " + " ".join(args)[:40], call)


def run_generator(site: Site) -> Run:
    def call() -> tuple[int | None, str, str, str | None]:
        messages: list[str] = []
        code = generate(str(site.out), lambda _level, msg: messages.append(msg), str(site.config))
        # one message per log call; a message must be one line
        return code, "\n".join(m.replace("\n", "\\n(NEWLINE)") for m in messages), "", None

    return timed("generator", call)


def run_cron(site: Site) -> Run:
    def call() -> tuple[int | None, str, str, str | None]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cron_generate.main(["--config", str(site.config)])
        return code, out.getvalue(), err.getvalue(), None

    return timed("cron-generate", call)


def every_entry_point(site: Site, job_path: bytes | None = None) -> dict[str, Run]:
    runs = {
        "validate": run_cli(site, "--validate"),
        "generator": run_generator(site),
        "cron": run_cron(site),
        "list": run_cli(site, "--list-jobs"),
        "status": run_cli(site, "--status"),
    }
    if job_path is not None:
        runs["validate-file"] = run_cli(site, "--validate", os.fsdecode(job_path))
    return runs


# -- the checks -----------------------------------------------------------------


class Findings:
    def __init__(self) -> None:
        self.items: list[str] = []

    def check(self, ok: bool, message: str) -> None:
        if not ok:
            self.items.append(message)

    def report(self, case: Case) -> str:
        bug = f" (known bug {case.bug})" if case.bug else ""
        head = f"case {case.id!r} [{case.cls}]{bug}, expected: {case.outcome}"
        return head + "".join(f"\n  - {item}" for item in self.items)


def check_run_basics(found: Findings, run: Run) -> None:
    found.check(run.crash is None, f"{run.entry}: crashed:\n{run.crash}")
    found.check(
        "Traceback" not in run.out + run.err, f"{run.entry}: a traceback in the output"
    )
    found.check(
        run.seconds < LIMIT, f"{run.entry}: took {run.seconds:.2f} s of CPU (limit {LIMIT} s)"
    )
    for line in run.out.split("\n") + run.err.split("\n"):
        found.check(
            not _NOT_IN_A_LINE.search(line),
            f"{run.entry}: an output line holds a line break or control character: {line!r}",
        )


# One problem: `path:line: key: what is wrong` (path absolute here).
_PROBLEM = re.compile(r"/.*?:\d+: .+?: .+")
# What else each entry point may print on the stream its problems go to.
_OTHER_LINES = {
    "validate": (),
    "generator": ("generated units of ", "no units generated"),
    "cron": ("cron-generate: ",),
    "list": ("run-job: ",),
    "status": ("run-job: ", "backend: "),
}


def check_problem_lines(found: Findings, name: str, run: Run) -> None:
    """Every line on the problem stream is one whole problem (so a second
    line of a broken message cannot pass as something else)."""
    text = run.out if name in ("validate", "validate-file", "generator") else run.err
    allowed = _OTHER_LINES[name.removesuffix("-file")]
    for line in text.split("\n"):
        if line and not _PROBLEM.fullmatch(line) and not line.startswith(allowed):
            found.check(False, f"{name}: not a one-line problem: {line[:200]!r}")


def _about(line: str, site: Site, exclude: Sequence[str] = tuple(REFS)) -> bool:
    """Whether a message line is about a file of the job directory other
    than the reference jobs."""
    prefix = f"{site.jobs}/"
    return line.startswith(prefix) and not any(
        line.startswith(f"{prefix}{ref}.yaml:") for ref in exclude
    )


def _names_key(line: str, keys: Sequence[str]) -> bool:
    match = re.search(r"\.yaml:(\d+): (.*)$", line)
    if match is None:
        match = re.search(r":(\d+): (.*)$", line)
    if match is None:
        return False
    rest = match.group(2)
    return any(rest.startswith(f"{k}: ") or rest.startswith(f"{k}.") for k in keys)


def _line_of(line: str) -> int | None:
    match = re.search(r"\.yaml:(\d+): ", line)
    return int(match.group(1)) if match else None


def expected_units(slug: str, decl: Declared | None) -> set[str]:
    names = set(OUR_UNITS)
    for ref in REFS:
        names |= {f"process-control-{ref}.service", f"process-control-{ref}.slow-start.service",
                  f"process-control-{ref}.timer"}
    if decl is not None:
        names.add(f"process-control-{slug}.service")
        if decl.slow_argv:
            names.add(f"process-control-{slug}.slow-start.service")
        if decl.schedule is not None:
            names.add(f"process-control-{slug}.timer")
    return names


def cron_entries(text: str) -> list[str]:
    return sorted(" ".join(line.split()) for line in text.split("\n")
                  if line.strip() and not line.startswith("#"))


def ref_cron_entries() -> list[str]:
    return [" ".join([*REF_SCHEDULE.split(), USER, RUNNER, "--job", ref]) for ref in REFS]


def check_rejected(found: Findings, case: Case, site: Site, runs: Mapping[str, Run]) -> None:
    keys = case.keys or ("(any key)",)
    for entry in ("validate", "validate-file"):
        run = runs[entry]
        found.check(run.code == 1, f"{entry}: exit {run.code}, expected 1")
        about = [line for line in run.lines() if _about(line, site)]
        found.check(
            any(_names_key(line, keys) for line in about) or not case.keys,
            f"{entry}: no line naming the file and key {keys}: {run.out[:500]!r}",
        )
        if case.spec.get("line") is not None:
            found.check(
                any(_line_of(line) == case.spec["line"] for line in about),
                f"{entry}: no error at line {case.spec['line']}: {about!r}",
            )
        found.check(
            not any(_about(line, site, ()) and not _about(line, site) for line in run.lines()),
            f"{entry}: a reference job was reported: {run.out[:300]!r}",
        )
    gen = runs["generator"]
    found.check(gen.code == 0, f"generator: exit {gen.code}, expected 0")
    skipped = [line for line in gen.lines() if _about(line, site) and "(job skipped)" in line]
    found.check(
        any(_names_key(line, keys) for line in skipped) or not case.keys,
        f"generator: no 'job skipped' message naming the key {keys}: {gen.out[:500]!r}",
    )
    check_units_exactly(found, site, expected_units(case.slug, None))
    check_cron(found, site, runs["cron"], ref_cron_entries(), expect_code=1)
    cron_err = [line for line in runs["cron"].lines("err") if _about(line, site)]
    found.check(
        any(_names_key(line, keys) for line in cron_err) or not case.keys,
        f"cron-generate: no error naming the key {keys}: {runs['cron'].err[:300]!r}",
    )
    check_listing(found, site, runs, None, None)


def check_accepted(
    found: Findings, case: Case, site: Site, runs: Mapping[str, Run], decl: Declared
) -> None:
    for entry in ("validate", "validate-file"):
        run = runs[entry]
        found.check(run.code == 0, f"{entry}: exit {run.code}, expected 0: {run.out[:500]!r}")
        errors = [
            line for line in run.lines() if _about(line, site) and ": warning: " not in line
        ]
        found.check(not errors, f"{entry}: errors for an accepted job: {errors!r}")
        if case.spec.get("warn"):
            warned = [line for line in run.lines() if ": warning: " in line]
            found.check(
                any(_names_key(line, (case.spec["warn"],)) for line in warned),
                f"{entry}: no warning naming {case.spec['warn']!r}",
            )
    gen = runs["generator"]
    found.check(gen.code == 0, f"generator: exit {gen.code}")
    found.check(
        not any("(job skipped)" in line for line in gen.lines()),
        f"generator: skipped a job: {gen.out[:500]!r}",
    )
    if gen.crash is None and site.out.is_dir():
        check_units_exactly(found, site, expected_units(case.slug, decl))
        check_unit_contents(found, site, case.slug, decl)
    wants = site.out / "timers.target.wants" / f"process-control-{case.slug}.timer"
    found.check(
        os.path.lexists(wants) == decl.scheduled,
        f"generator: timer enabled is {os.path.lexists(wants)}, scheduled is {decl.scheduled}",
    )
    want_cron = ref_cron_entries()
    # cron has no catch-up: cron-generate refuses such a job (one line)
    if decl.scheduled and not decl.catch_up:
        assert decl.schedule is not None
        scheduled = ["--scheduled"] if decl.random_delay else []
        want_cron.append(" ".join([*decl.schedule.split(), USER, RUNNER, "--job", case.slug,
                                   *scheduled]))
    check_cron(found, site, runs["cron"], sorted(want_cron), expect_code=int(decl.catch_up))
    check_listing(found, site, runs, case.slug, decl)


def check_units_exactly(found: Findings, site: Site, names: set[str]) -> None:
    made = {p.name for p in site.out.iterdir() if p.is_file()} if site.out.is_dir() else set()
    found.check(
        made == names,
        f"generator: units {sorted(made - names)} unexpected, {sorted(names - made)} missing",
    )


def check_unit_contents(found: Findings, site: Site, slug: str, decl: Declared) -> None:
    ref = "reffile0" if decl.logging == "file" else "refjournal0"

    def read(name: str) -> str:
        return (site.out / name).read_text(encoding="utf-8")

    for unit, argvs in ((".service", decl.argv), (".slow-start.service", decl.slow_argv)):
        if argvs is None:
            continue
        problems = compare_service(
            read(f"process-control-{slug}{unit}"), read(f"process-control-{ref}{unit}"),
            ref, slug, decl, argvs,
        )
        for problem in problems:
            found.check(False, f"{unit}: {problem}")
    if decl.schedule is not None:
        for problem in compare_timer(
            read(f"process-control-{slug}.timer"), read(f"process-control-{ref}.timer"),
            ref, slug, decl,
        ):
            found.check(False, f".timer: {problem}")


def check_cron(
    found: Findings, site: Site, run: Run, entries: list[str], expect_code: int
) -> None:
    found.check(run.code == expect_code, f"cron-generate: exit {run.code}, expected {expect_code}")
    if not site.crontab.exists():
        found.check(False, "cron-generate: wrote no cron file")
        return
    raw = site.crontab.read_bytes()
    text = raw.decode("utf-8", "replace")
    found.check(b"\r" not in raw and b"\x00" not in raw, "cron file holds CR or NUL")
    found.check(
        cron_entries(text) == sorted(entries),
        f"cron file entries {cron_entries(text)!r}, expected {sorted(entries)!r}",
    )


def check_listing(
    found: Findings, site: Site, runs: Mapping[str, Run], slug: str | None, decl: Declared | None
) -> None:
    files = len(site.job_files())
    listing = runs["list"]
    found.check(listing.code == 0, f"--list-jobs: exit {listing.code}")
    found.check(
        listing.out.count("\n") == files,
        f"--list-jobs: {listing.out.count(chr(10))} lines for {files} job files: {listing.out!r}",
    )
    status = runs["status"]
    found.check(status.code == 0, f"--status: exit {status.code}")
    # an entry's extra lines start with a tab, as the original's
    heads = [line for line in status.lines() if not line.startswith("\t")]
    found.check(
        len(heads) == files, f"--status: {len(heads)} entries for {files} job files: {heads!r}"
    )
    for ref in REFS:
        found.check(ref in listing.lines(), f"--list-jobs: {ref} missing")
        found.check(f"{ref} - {REF_NAME}" in heads, f"--status: {ref} missing")
    if slug is not None and decl is not None:
        found.check(slug in listing.lines(), f"--list-jobs: {slug!r} missing")
        # the name as written, or (when it holds characters that do not
        # print) in some escaped form -- on the entry's own line either way
        shown = f"{slug} - {decl.name}" in heads or (
            not decl.name.isprintable() and any(h.startswith(f"{slug} - ") for h in heads)
        )
        found.check(shown, f"--status: no line {slug} - {decl.name!r}: {heads!r}")
    elif slug is None:
        invalid = [h for h in heads if h.endswith(" ***Invalid configuration***")]
        found.check(
            len(invalid) == files - len(REFS), f"--status: invalid entries {invalid!r}"
        )


def check_ignored(found: Findings, site: Site, runs: Mapping[str, Run]) -> None:
    found.check(runs["validate"].code == 0, f"--validate: exit {runs['validate'].code}")
    for name in ("validate", "generator", "cron", "list"):
        run = runs[name]
        found.check(
            not any(_about(line, site) for line in run.lines() + run.lines("err")),
            f"{name}: mentions a file that is not a job file",
        )
    check_units_exactly(found, site, expected_units("", None))
    check_cron(found, site, runs["cron"], ref_cron_entries(), expect_code=0)
    check_listing(found, site, runs, None, None)


def check_every_run(runs: Mapping[str, Run]) -> Findings:
    found = Findings()
    for name, run in runs.items():
        check_run_basics(found, run)
        check_problem_lines(found, name, run)
    return found


def check_job_case(case: Case, site: Site, runs: Mapping[str, Run]) -> Findings:
    found = check_every_run(runs)
    outcome = case.outcome
    if outcome == "either":
        outcome = "reject" if runs["validate"].code == 1 else "accept"
    if outcome == "reject":
        check_rejected(found, case, site, runs)
    elif outcome == "accept":
        check_accepted(found, case, site, runs, declared(case))
    else:
        check_ignored(found, site, runs)
    return found


@pytest.mark.parametrize("case", [case_param(c) for c in JOB_CASES])
def test_job_case_through_every_entry_point(case: Case, tmp_path: Path) -> None:
    if case.spec.get("setup") in ("socket", "chardev") and os.geteuid() != 0:
        pytest.skip("mknod of a socket or device node needs root")
    site = make_site(tmp_path)
    path = place_job(site, case)
    runs = every_entry_point(site, path)
    found = check_job_case(case, site, runs)
    assert not found.items, found.report(case)


# -- global configuration ---------------------------------------------------------


def _places(site: Site) -> dict[str, str]:
    return {"@ROOT@": str(site.root), "@JOBS@": str(site.jobs)}


def _placed(site: Site, text: str) -> str:
    for placeholder, value in _places(site).items():
        text = text.replace(placeholder, value)
    return text


def place_config(site: Site, case: Case) -> None:
    spec = case.spec
    setup = spec.get("config_setup")
    if setup == "directory":
        site.config.unlink()
        site.config.mkdir()
    elif setup == "fifo":
        site.config.unlink()
        os.mkfifo(site.config)
    elif setup == "missing":
        site.config.unlink()
    elif "text" in spec or "parts" in spec:
        site.config.write_bytes(case.data(_places(site)))
    else:
        site.write_config(str(spec.get("config", "")))
    if "config_mode" in spec:
        site.config.chmod(int(spec["config_mode"]))
    if "config_owner" in spec:
        os.chown(site.config, int(spec["config_owner"]), -1)
    if "config_dir_mode" in spec:
        site.root.chmod(int(spec["config_dir_mode"]))
    for directory in spec.get("make_dirs", ()):
        Path(_placed(site, directory)).mkdir(parents=True)
    for name, content in (spec.get("make_files") or {}).items():
        Path(_placed(site, name)).write_text(content)
    for name, target in (spec.get("make_links") or {}).items():
        os.symlink(_placed(site, target), _placed(site, name))
    if spec.get("copy_refs_to"):
        for slug, text in REFS.items():
            (Path(_placed(site, spec["copy_refs_to"])) / f"{slug}.yaml").write_text(text)


def _config_value(site: Site, case: Case, key: str) -> str:
    """A configuration value as the case sets it (or the base's)."""
    explicit = case.spec.get("accept") or {}
    if isinstance(explicit, dict) and key in explicit:
        return _placed(site, str(explicit[key]))
    return {"user": USER, "runner_path": RUNNER}[key]


def check_files_kept(found: Findings, case: Case, site: Site) -> None:
    for name, content in (case.spec.get("make_files") or {}).items():
        path = Path(_placed(site, name))
        found.check(path.is_file() and not path.is_symlink() and path.read_text() == content,
                    f"{path} was changed")


def check_config_rejected(found: Findings, case: Case, site: Site, runs: Mapping[str, Run]
                          ) -> None:
    shown = str(site.config)
    exits = {"validate": 2, "generator": 1, "cron": 2, "list": 2, "status": 2}
    exits.update(case.spec.get("exits") or {})
    for name, run in runs.items():
        found.check(run.code == exits[name], f"{name}: exit {run.code}, expected {exits[name]}")
        if exits[name] == 0:  # this entry point reads the file without refusing it
            continue
        text = run.out + run.err
        lines = [line for line in text.split("\n") if line.startswith(shown)]
        found.check(
            any(_names_key(line, case.keys) for line in lines),
            f"{name}: no one-line error naming {shown} and key {case.keys}: {text[:300]!r}",
        )
    made = {p.name for p in site.out.iterdir() if p.is_file()} if site.out.exists() else set()
    if not case.spec.get("allow_units"):
        found.check(not made, f"generator: wrote {sorted(made)} with an invalid configuration")
    else:
        found.check(made <= OUR_UNITS | METRICS_UNITS, f"generator: wrote {sorted(made)}")
    found.check(not site.crontab.exists(), "cron-generate wrote a cron file")
    check_files_kept(found, case, site)


def check_config_accepted(found: Findings, case: Case, site: Site, runs: Mapping[str, Run],
                          baseline: Mapping[str, list[tuple[str, str]]]) -> None:
    exits = {"validate": 0, "generator": 0, "cron": 0, "list": 0, "status": 0}
    exits.update(case.spec.get("exits") or {})
    for name, run in runs.items():
        found.check(run.code == exits[name], f"{name}: exit {run.code}, expected {exits[name]}"
                    f": {(run.out + run.err)[:300]!r}")
    user = _config_value(site, case, "user")
    runner = _config_value(site, case, "runner_path")
    given = case.spec.get("accept")
    env = [tuple(pair) for pair in (given if isinstance(given, dict) else {}).get("env", [])]
    for ref in REFS:
        unit = site.out / f"process-control-{ref}.service"
        if not unit.exists():
            found.check(False, f"generator: {unit.name} missing")
            continue
        try:
            entries = parse_unit(unit.read_text(encoding="utf-8"))
            users = [v for _s, k, v in entries if k == "User"]
            found.check(
                [resolve_specifiers(u) for u in users] == [user], f"{ref}: User= {users!r}"
            )
            got = [exec_argv(v) for _s, k, v in entries if k == "ExecStart"]
            found.check(got[0][-1:] == ["/bin/true"], f"{ref}: ExecStart= {got!r}")
            if ref == "reffile0":
                out = case.spec.get("output_directory", str(site.root / "log"))
                want = wrapped(f"{out}/{ref}", ref, ["/bin/true"])
                found.check(got == [want], f"{ref}: ExecStart= {got!r}, expected {[want]!r}")
                logs = [w for _s, k, v in entries if k == "LogsDirectory" for w in split_words(v)]
                if out.startswith("/var/log/"):
                    # a list of directories: one word per directory
                    found.check(logs == [f"{out[len('/var/log/'):]}/{ref}"],
                                f"{ref}: LogsDirectory= names {logs!r}")
            got_env = [w for _s, k, v in entries if k == "Environment" for w in env_words(v)]
            found.check(
                got_env == [f"{k}={v}" for k, v in env], f"{ref}: Environment= {got_env!r}"
            )
            # LogsDirectory= and Environment= are checked above
            skip = ("LogsDirectory", "Environment")
            keys = sorted((s, k) for s, k, _v in entries if k not in skip)
            found.check(
                keys == [sk for sk in baseline[ref] if sk[1] not in skip],
                f"{ref}: settings {sorted(set(keys) ^ set(baseline[ref]))} differ from "
                "the base configuration's units",
            )
        except UnitLoadError as err:
            found.check(False, f"{ref}: systemd would not load it: {err}")
    cron = runs["cron"]
    check_files_kept(found, case, site)
    if "cron_text" in case.spec and cron.code == 0:
        found.check(
            site.crontab.read_text() == _placed(site, case.spec["cron_text"]),
            f"cron file is {site.crontab.read_text()!r}",
        )
    elif cron.code == 0 and site.crontab.exists():
        for line in site.crontab.read_text().split("\n"):
            if not line or line.startswith("#"):
                continue
            fields = line.split(" ", 6)
            command = fields[6] if len(fields) == 7 else ""
            try:
                words = shlex.split(command)
            except ValueError:
                words = []
            found.check(
                fields[5:6] == [user] and "%" not in command
                and words[:2] == [runner, "--job"] and words[2:] in ([r] for r in REFS),
                f"cron line {line!r} does not run [{runner!r}, '--job', <job>] as {user}",
            )


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[str, str]]]:
    """(section, key) of the reference units under the base configuration."""
    site = make_site(tmp_path_factory.mktemp("baseline"))
    assert generate(str(site.out), lambda _l, _m: None, str(site.config)) == 0
    return {
        ref: sorted((s, k) for s, k, _v in parse_unit(
            (site.out / f"process-control-{ref}.service").read_text(encoding="utf-8")))
        for ref in REFS
    }


@pytest.mark.parametrize("case", [case_param(c) for c in CONFIG_CASES])
def test_config_case_through_every_entry_point(
    case: Case, tmp_path: Path, baseline: dict[str, list[tuple[str, str]]]
) -> None:
    site = make_site(tmp_path)
    place_config(site, case)
    for slug, text in (case.spec.get("jobs") or {}).items():
        (site.jobs / f"{slug}.yaml").write_text(text)
    runs = every_entry_point(site)
    found = check_every_run(runs)
    outcome = case.outcome
    if outcome == "either":
        outcome = "reject" if runs["validate"].code == 2 else "accept"
    if outcome == "reject":
        check_config_rejected(found, case, site, runs)
    else:
        check_config_accepted(found, case, site, runs, baseline)
    assert not found.items, found.report(case)


# -- the whole corpus at once, through the installed executables -----------------

GENERATOR = ROOT / "generators" / "process-control-generator"
BIN = Path(sys.executable).parent
CORPUS_LIMIT = 120.0  # wall seconds per executable for the whole corpus


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _exe(site: Site, argv: Sequence[str]) -> Run:
    env = {**os.environ, "PROCESS_CONTROL_CONFIG": str(site.config)}
    env.pop("SYSTEMD_SCOPE", None)  # never log to the host's kmsg from a test
    start = _children_cpu()
    try:
        done = subprocess.run(argv, capture_output=True, env=env, timeout=CORPUS_LIMIT,
                              check=False)
        crash = None if done.returncode >= 0 else f"killed by signal {-done.returncode}"
        out = done.stdout.decode("utf-8", "backslashreplace")
        err = done.stderr.decode("utf-8", "backslashreplace")
        return Run(argv[0], done.returncode, out, err, _children_cpu() - start, crash)
    except subprocess.TimeoutExpired:
        return Run(argv[0], None, "", "", _children_cpu() - start, "hang")


def test_whole_corpus_at_once_through_the_executables(tmp_path: Path) -> None:
    """All job cases in one directory: one bad file must not hurt another,
    and the real executables (not CliRunner) must not crash on any of them."""
    site = make_site(tmp_path)
    for case in JOB_CASES:
        if case.spec.get("setup") in ("socket", "chardev") and os.geteuid() != 0:
            continue  # mknod needs root; the other cases still run
        place_job(site, case)
    found = Findings()
    runs = {
        "generator": _exe(site, [sys.executable, str(GENERATOR), *(3 * [str(site.out)])]),
        "validate": _exe(site, [str(BIN / "run-job"), "--validate"]),
        "cron": _exe(site, [str(BIN / "cron-generate")]),
        "list": _exe(site, [str(BIN / "run-job"), "--list-jobs"]),
        "status": _exe(site, [str(BIN / "run-job"), "--status"]),
    }
    for name, run in runs.items():
        found.check(run.crash is None, f"{name}: {run.crash}")
        found.check("Traceback" not in run.out + run.err,
                    f"{name}: a traceback:\n{(run.out + run.err)[-3000:]}")
        found.check(run.seconds < 20, f"{name}: took {run.seconds:.1f} s of CPU for the corpus")
    expected = {"generator": 0, "validate": 1, "cron": 1, "list": 0, "status": 0}
    for name, code in expected.items():
        found.check(runs[name].code == code, f"{name}: exit {runs[name].code}, expected {code}")
    made = {p.name for p in site.out.iterdir() if p.is_file()} if site.out.is_dir() else set()
    placed = [c for c in JOB_CASES
              if os.path.lexists(os.path.join(site.job_dir_bytes, c.filename))]
    missing = [c.id for c in placed
               if c.outcome == "accept" and f"process-control-{c.slug}.service" not in made]
    found.check(not missing, f"{len(missing)} accepted job(s) without units: {missing[:8]}")
    extra = [c.id for c in placed if c.outcome in ("reject", "ignored")
             and f"process-control-{c.slug}.service" in made]
    found.check(not extra, f"rejected jobs with units: {extra}")
    for ref in REFS:
        found.check(f"process-control-{ref}.service" in made, f"good job {ref} not generated")
    files = len(site.job_files())
    found.check(len(runs["list"].lines()) == files,
                f"--list-jobs: {len(runs['list'].lines())} lines for {files} job files")
    if site.crontab.exists():
        entries = cron_entries(site.crontab.read_text(encoding="utf-8", errors="replace"))
        # "... --job SLUG", and "--scheduled" after it for a job with a random_delay
        ours = [e.removesuffix(" --scheduled").split()[-2:-1] == ["--job"] for e in entries]
        found.check(all(ours), "cron file has foreign lines: "
                    f"{[e for e, mine in zip(entries, ours, strict=True) if not mine]}")
    _same_from_the_cache(site, runs, found)
    assert not found.items, "\n".join(found.items)


def _tree(out: Path) -> dict[str, str | bytes]:
    return {str(p.relative_to(out)): os.readlink(p).replace(str(out), "OUT")
            if p.is_symlink() else p.read_bytes() for p in out.rglob("*") if not p.is_dir()}


def _same_from_the_cache(site: Site, cold: dict[str, Run], found: Findings) -> None:
    """The cache (pc_systemd.model.file_cache) holds every hostile file's outcome
    and gives the generator and cron-generate the very same result."""
    time.sleep(2.1)  # file_cache keeps no file changed in the last 2 s
    refresh = _exe(site, [sys.executable, str(GENERATOR), "--refresh-cache"])
    found.check(refresh.crash is None and "Traceback" not in refresh.err,
                f"--refresh-cache: {refresh.crash} {refresh.err[-2000:]}")
    warm_out = site.root / "out-warm"
    warm = _exe(site, [sys.executable, str(GENERATOR), *(3 * [str(warm_out)])])
    cold_log, warm_log = cold["generator"].err.splitlines(), warm.err.splitlines()
    found.check(warm.code == cold["generator"].code and warm_log[:-1] == cold_log[:-1],
                f"generator from the cache: exit {warm.code}, log differs")
    # every file but those that cannot be looked at (a dangling link, ...)
    names = config_file.yaml_names(str(site.jobs))
    identified = [n for n in names if file_cache.identity(str(site.jobs / n)) is not None]
    found.check(warm_log[-1:] == [f"{cold_log[-1]} ({len(identified)} unchanged file(s) "
                                  "from the cache)"],
                f"generator from the cache said {warm_log[-1:]}")
    cold_tree = _tree(site.out) if site.out.is_dir() else {}
    found.check(_tree(warm_out) == cold_tree, "generator: other units from the cache")
    before = site.crontab.read_bytes() if site.crontab.exists() else None
    for _ in range(2):  # the first fills cron-generate's cache, the second reads it
        again = _exe(site, [str(BIN / "cron-generate")])
    found.check((again.code, again.err) == (cold["cron"].code, cold["cron"].err),
                f"cron-generate from the cache: exit {again.code}, stderr differs")
    after = site.crontab.read_bytes() if site.crontab.exists() else None
    found.check(after == before, "cron-generate: another file from the cache")


# -- the corpus itself ------------------------------------------------------------


def test_corpus_is_large_and_well_formed() -> None:
    assert len(CASES) >= 200, len(CASES)
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    slugs = [case.filename for case in JOB_CASES]
    assert len(slugs) == len(set(slugs)), "two job cases use one file name"
    for case in JOB_CASES:
        assert case.slug not in REFS, case.id
        assert case.outcome in ("reject", "accept", "either", "ignored")
        if case.outcome in ("accept", "either") and not case.spec.get("setup"):
            decl = declared(case)  # the declared values can be read
            if decl.schedule is not None and not decl.disabled:
                # a timer firing during the real-systemd test would change
                # the properties that test compares
                assert decl.schedule.split()[:4] != ["*", "*", "*", "*"], case.id
    for case in CASES:
        explicit = case.spec.get("accept")
        if isinstance(explicit, dict) and "argv" in explicit and not case.is_config:
            doc = oracle_load(case.text())
            command = doc["command"]
            if isinstance(command, str) or (
                isinstance(command, list) and all(isinstance(c, str) for c in command)
            ):
                oracle = [list(a) for a in command_argvs(case, command)]
                assert oracle == explicit["argv"], f"{case.id}: argv {oracle!r}"
    documented = (ROOT / "docs" / "hostile-inputs.md").read_text(encoding="utf-8")
    for case in CASES:
        if case.bug:
            assert f"**{case.bug}**" in documented, f"{case.id}: bug {case.bug} undocumented"
        assert f"`{case.cls}`" in documented, f"class {case.cls} undocumented"
