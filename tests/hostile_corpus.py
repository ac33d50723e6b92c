"""The hostile corpus (``tests/hostile/``, described in
``docs/hostile-inputs.md``) and what is needed to judge it independently of
pc_systemd: each case, the values a job file declares (PyYAML and shlex),
units read the way systemd 252 reads them, and a throw-away installation
to place a case in. Shared by ``test_hostile.py`` and
``test_hostile_systemd.py``.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ROOT

HOSTILE = ROOT / "tests" / "hostile"
MANIFESTS = ("jobs.yaml", "files.yaml", "config.yaml")
USER = "pcuser"
RUNNER = "/usr/bin/run-job"
REF_NAME = "REFNAME0"
REF_SCHEDULE = "7 3 29 2 *"  # fires only on 29 February: never during a test
REFS = {
    "refjournal0": f"name: {REF_NAME}\ncommand: /bin/true\nslow_start_command: /bin/true\n"
    f"schedule: '{REF_SCHEDULE}'\n",
    "reffile0": f"name: {REF_NAME}\ncommand: /bin/true\nslow_start_command: /bin/true\n"
    f"schedule: '{REF_SCHEDULE}'\nlogging: file\n",
}
DEFAULT_NAME = "Hostile"
DEFAULT_COMMAND = "/bin/true"


class ManifestError(Exception):
    """A case of tests/hostile/ is written wrongly (not a finding)."""


# -- the corpus ----------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    manifest: str
    spec: Mapping[str, Any]

    @property
    def id(self) -> str:
        return str(self.spec["id"])

    @property
    def cls(self) -> str:
        return str(self.spec["class"])

    @property
    def bug(self) -> str | None:
        bug = self.spec.get("bug")
        return None if bug is None else str(bug)

    @property
    def is_config(self) -> bool:
        return self.manifest == "config.yaml"

    @property
    def outcome(self) -> str:
        """reject, accept, either (rejected or exactly accepted) or ignored."""
        if self.spec.get("ignored"):
            return "ignored"
        if "reject" in self.spec:
            return "reject"
        if self.spec.get("either"):
            return "either"
        if "accept" in self.spec:
            return "accept"
        raise ManifestError(f"{self.id}: no expectation (reject, accept, either or ignored)")

    @property
    def keys(self) -> tuple[str, ...]:
        value = self.spec.get("reject", ())
        return (value,) if isinstance(value, str) else tuple(value)

    @property
    def slug(self) -> str:
        return str(self.spec.get("slug", self.id))

    @property
    def filename(self) -> bytes:
        name = str(self.spec["filename"]) if "filename" in self.spec else self.slug + ".yaml"
        return name.encode(str(self.spec.get("fs_encoding", "utf-8")), "surrogateescape")

    def text(self) -> str:
        """The job (or configuration) file as text."""
        spec = self.spec
        if "text" in spec:
            return str(spec["text"])
        if "parts" in spec:
            out = []
            for part, count, *numbered in spec["parts"]:
                if numbered:  # [text, count, numbered]: "{i}" is the index
                    out += [str(part).format(i=i) for i in range(int(count))]
                else:
                    out.append(str(part) * int(count))
            return "".join(out)
        if "job" in spec:
            fields: Mapping[str, Any] = spec["job"] or {}
            lines = [] if "name" in fields else [f"name: {DEFAULT_NAME}"]
            lines += [f"{key}: {value}" for key, value in fields.items()]
            if "command" not in fields:
                lines.append(f"command: {DEFAULT_COMMAND}")
            return "\n".join(lines) + "\n"
        if self.is_config:
            return ""
        raise ManifestError(f"{self.id}: no text, parts or job")

    def data(self, places: Mapping[str, str] | None = None) -> bytes:
        text = self.text()
        for placeholder, value in (places or {}).items():
            text = text.replace(placeholder, value)
        encoding = str(self.spec.get("encoding", "utf-8"))
        return text.encode(encoding, "surrogatepass")


def load_cases() -> list[Case]:
    cases = []
    for manifest in MANIFESTS:
        with open(HOSTILE / manifest, encoding="utf-8") as handle:
            specs = yaml.safe_load(handle)
        cases += [Case(manifest, spec) for spec in specs]
    return cases


CASES = load_cases()
JOB_CASES = [c for c in CASES if not c.is_config]
CONFIG_CASES = [c for c in CASES if c.is_config]

# -- what a job declares, read independently of pc_systemd ----------------------


@dataclass(frozen=True)
class Declared:
    name: str
    argv: tuple[tuple[str, ...], ...]
    slow_argv: tuple[tuple[str, ...], ...] | None
    env: tuple[tuple[str, str], ...]
    schedule: str | None
    timeout: float  # minutes
    disabled: bool
    logging: str
    memory_max: int | None = None  # bytes
    cpu_quota: float | None = None  # percent of one CPU
    nice: int | None = None
    io_class: str | None = None
    catch_up: bool = False
    random_delay: float = 0.0  # minutes
    credentials: tuple[str, ...] = ()  # names in the default credentials_directory

    @property
    def scheduled(self) -> bool:
        return self.schedule is not None and not self.disabled


def failure_units(slug: str, decl: Declared) -> list[list[str]]:
    """What a job's ``OnFailure=`` may name, whichever keys it set: its own
    file check (``logging: file``), then perhaps its own mail unit."""
    check = [f"process-control-filecheck@{slug}.service"] if decl.logging == "file" else []
    return [check, [*check, f"process-control-mail@{slug}.service"]]


def command_argvs(case: Case, value: Any) -> tuple[tuple[str, ...], ...]:
    lines = value if isinstance(value, list) else [value]
    if not all(isinstance(line, str) for line in lines):
        raise ManifestError(f"{case.id}: give argv explicitly (command is not text)")
    return tuple(tuple(shell_split(line)) for line in lines)


def shell_split(line: str) -> list[str]:
    """POSIX shell-like splitting (shlex.split); without quotes and
    backslashes that is splitting at blanks, which is much faster for the
    half-megabyte command lines of the corpus."""
    if not any(c in line for c in "'\"\\"):
        return [w for w in re.split(r"[ \t\r\n]+", line) if w]
    return shlex.split(line)


class _OracleLoader(yaml.CSafeLoader):
    """PyYAML's safe loader, but timestamps stay text: the project takes
    them as written, and an impossible date must not stop the oracle."""


def _timestamp_as_text(loader: _OracleLoader, node: yaml.Node) -> Any:
    assert isinstance(node, yaml.ScalarNode)
    return loader.construct_scalar(node)


_OracleLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)


def oracle_load(text: str) -> Any:
    return yaml.load(text, Loader=_OracleLoader)


def declared(case: Case) -> Declared:
    """The values the job file declares: PyYAML's safe_load and shlex (the
    documented meaning), overridden by what the case states explicitly."""
    given = case.spec.get("accept")
    explicit: Mapping[str, Any] = given if isinstance(given, dict) else {}
    doc = oracle_load(case.text())
    if not isinstance(doc, dict):
        raise ManifestError(f"{case.id}: an accepted job must be a mapping")
    name = explicit.get("name", doc.get("name"))
    if not isinstance(name, str):
        raise ManifestError(f"{case.id}: give name explicitly (it is not text)")
    argv = explicit.get("argv")
    slow = explicit.get("slow_argv")
    env = explicit.get("env")
    if env is None:
        pairs = []
        for key, value in (doc.get("environment") or {}).items():
            if not isinstance(key, str) or not isinstance(value, (str, bool)):
                raise ManifestError(f"{case.id}: give env explicitly (not plain text)")
            pairs.append((key, str(value)))
        env = pairs
    schedule = explicit.get("schedule", doc.get("schedule"))
    return Declared(
        name=name,
        argv=tuple(map(tuple, argv)) if argv is not None else command_argvs(case, doc["command"]),
        slow_argv=(
            tuple(map(tuple, slow))
            if slow is not None
            else command_argvs(case, doc["slow_start_command"])
            if doc.get("slow_start_command") is not None
            else None
        ),
        env=tuple((str(k), str(v)) for k, v in env),
        schedule=None if schedule is None else str(schedule),
        timeout=float(explicit.get("timeout", doc.get("timeout", 0))),
        disabled=bool(explicit.get("disabled", doc.get("disabled", False))),
        logging=str(explicit.get("logging", doc.get("logging", "journal"))),
        memory_max=explicit.get("memory_max", _bytes(case, doc.get("memory_max"))),
        cpu_quota=_float(explicit.get("cpu_quota", _percent(case, doc.get("cpu_quota")))),
        nice=explicit.get("nice", doc.get("nice")),
        io_class=explicit.get("io_class", doc.get("io_class")),
        catch_up=bool(explicit.get("catch_up", doc.get("catch_up", False))),
        random_delay=float(explicit.get("random_delay", doc.get("random_delay", 0))),
        credentials=_names(case, explicit.get("credentials", doc.get("credentials"))),
    )


def _names(case: Case, value: Any) -> tuple[str, ...]:
    """``credentials`` as documented: a name or a list of names."""
    names = [] if value is None else value if isinstance(value, list) else [value]
    if not all(isinstance(name, str) for name in names):
        raise ManifestError(f"{case.id}: give credentials explicitly")
    return tuple(names)


_POWERS = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4}


def _bytes(case: Case, value: Any) -> int | None:
    """``memory_max`` as documented: bytes, K/M/G/T powers of 1024."""
    if value is None or isinstance(value, int):
        return value
    found = re.fullmatch(r"(\d+)([KMGT]?)", str(value))
    if found is None:
        raise ManifestError(f"{case.id}: give memory_max explicitly")
    return int(found.group(1)) * 1024 ** _POWERS[found.group(2)]


def _percent(case: Case, value: Any) -> float | None:
    """``cpu_quota`` as documented: percent of one CPU, ``50`` or ``'50%'``."""
    if value is None or isinstance(value, (int, float)):
        return value
    if not str(value).endswith("%"):
        raise ManifestError(f"{case.id}: give cpu_quota explicitly")
    return float(str(value)[:-1])


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


# -- reading units as systemd 252 does -----------------------------------------

LONG_LINE_MAX = 1 << 20  # systemd's limit on one unit-file line
_WHITESPACE = " \t\n\r"
_EXEC_PREFIXES = "-@:+!|"
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
            "\\": "\\", '"': '"', "'": "'", "s": " "}


class UnitLoadError(Exception):
    """systemd would refuse (part of) this unit."""


def _systemd_char(char: str) -> bool:
    # systemd's unichar_is_valid(): no surrogates, no noncharacters
    code = ord(char)
    return not (0xD800 <= code <= 0xDFFF or 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE)


def parse_unit(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) of every assignment, read like systemd's
    config_parse(): lines end at "\\n" only, a line ending in an unescaped
    backslash continues on the next (the backslash becomes a space),
    comment lines are skipped (also inside a continuation), white space
    around keys and values is stripped."""
    entries = []
    section = ""
    pending: str | None = None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, 1):
        if len(line.encode("utf-8", "surrogatepass")) >= LONG_LINE_MAX:
            raise UnitLoadError(f"line {number} is longer than systemd's {LONG_LINE_MAX} bytes")
        if not all(map(_systemd_char, line)):
            raise UnitLoadError(f"line {number} is not UTF-8 clean for systemd: {line[:80]!r}")
        stripped = line.strip(_WHITESPACE)
        if stripped[:1] in ("#", ";") or (not stripped and pending is None):
            continue
        backslashes = len(line) - len(line.rstrip("\\"))
        if backslashes % 2:
            pending = (pending or "") + line[:-1] + " "
            continue
        full = ((pending or "") + line).strip(_WHITESPACE)
        pending = None
        if full.startswith("[") and full.endswith("]"):
            section = full[1:-1]
            continue
        if "=" not in full:
            raise UnitLoadError(f"line {number}: no '=' in {full[:80]!r}")
        key, _, value = full.partition("=")
        entries.append((section, key.strip(_WHITESPACE), value.strip(_WHITESPACE)))
    if pending is not None:
        raise UnitLoadError("the file ends inside a continued line")
    return entries


def resolve_specifiers(value: str) -> str:
    """``%%`` -> ``%``; any other specifier is marked ``<%x>`` (expanded by
    systemd, so never equal to a declared value)."""
    out = []
    i = 0
    while i < len(value):
        if value[i] == "%":
            following = value[i + 1 : i + 2]
            out.append("%" if following == "%" else f"<%{following}>")
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def _unescape(text: str, i: int) -> tuple[str, int]:
    """One C escape after a backslash at text[i - 1]; (char, next index)."""
    char = text[i : i + 1]
    if char in _ESCAPES:
        return _ESCAPES[char], i + 1
    for prefix, width in (("x", 2), ("u", 4), ("U", 8)):
        if char == prefix:
            digits = text[i + 1 : i + 1 + width]
            if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise UnitLoadError(f"bad \\{prefix} escape in {text[:80]!r}")
            return chr(int(digits, 16)), i + 1 + width
    if char in "01234567":
        digits = text[i : i + 3]
        if len(digits) != 3 or not all(c in "01234567" for c in digits):
            raise UnitLoadError(f"bad octal escape in {text[:80]!r}")
        return chr(int(digits, 8)), i + 3
    raise UnitLoadError(f"unknown escape \\{char} in {text[:80]!r}")


def split_words(value: str) -> list[str]:
    """extract_first_word() with EXTRACT_UNQUOTE | EXTRACT_CUNESCAPE, repeated."""
    words: list[str] = []
    i, n = 0, len(value)
    while True:
        while i < n and value[i] in _WHITESPACE:
            i += 1
        if i >= n:
            return words
        word: list[str] = []
        quote = ""
        while i < n:
            char = value[i]
            if not quote and char in _WHITESPACE:
                break
            if not quote and char in "'\"":
                quote = char
                i += 1
                continue
            if quote and char == quote:
                quote = ""
                i += 1
                continue
            if char == "\\":
                decoded, i = _unescape(value, i + 1)
                word.append(decoded)
                continue
            word.append(char)
            i += 1
        if quote:
            raise UnitLoadError(f"unbalanced quote in {value[:80]!r}")
        words.append("".join(word))


def no_variables(word: str) -> str:
    """``$$`` -> ``$``; a ``$NAME`` or ``${NAME}`` would be expanded."""
    out = []
    i = 0
    while i < len(word):
        if word[i] == "$":
            following = word[i + 1 : i + 2]
            if following == "$":
                out.append("$")
                i += 2
                continue
            if following == "{" or re.match(r"[A-Za-z_]", following):
                raise UnitLoadError(f"systemd would expand a variable in {word[:80]!r}")
        out.append(word[i])
        i += 1
    return "".join(out)


def exec_argv(value: str) -> list[str]:
    """The argument list systemd runs for one ExecStart= value."""
    if value[:1] in _EXEC_PREFIXES:
        raise UnitLoadError(f"ExecStart= has a prefix systemd acts on: {value[:80]!r}")
    resolved = resolve_specifiers(value)
    if "<%" in resolved and "<%" not in value:
        raise UnitLoadError(f"systemd would expand a specifier in {value[:80]!r}")
    words = [no_variables(word) for word in split_words(resolved)]
    if not words or not words[0]:
        raise UnitLoadError(f"ExecStart= without a program: {value[:80]!r}")
    program = words[0]
    # config_parse_exec(): a path must not name a directory, a bare name
    # must be a valid file name
    if program.endswith("/") or (not program.startswith("/") and program in (".", "..")):
        raise UnitLoadError(f"systemd refuses the executable {program!r}")
    return words


def env_words(value: str) -> list[str]:
    """The NAME=VALUE assignments of one Environment= value."""
    words = [resolve_specifiers(w) for w in split_words(value)]
    for word in words:
        if not re.match(r"[A-Za-z_][A-Za-z0-9_]*=", word):
            raise UnitLoadError(f"not an assignment: {word[:80]!r}")
    return words


def timespan_usec(value: str) -> int | None:
    """A systemd time span; None for no limit (``infinity`` and 0)."""
    if value == "infinity":
        return None
    units = {"us": 1, "ms": 1000, "s": 1_000_000, "min": 60_000_000, "h": 3_600_000_000, "": 1_000_000}
    total = 0.0
    for number, unit in re.findall(r"([0-9.]+)\s*(us|ms|min|s|h|)", value):
        total += float(number) * units[unit]
    return None if total == 0 else round(total)


# -- a throw-away installation ---------------------------------------------------


@dataclass(frozen=True)
class Site:
    root: Path
    jobs: Path
    config: Path
    out: Path
    crontab: Path

    @property
    def job_dir_bytes(self) -> bytes:
        return os.fsencode(self.jobs)

    def job_files(self) -> list[bytes]:
        """The original's ``*.yaml`` glob, which skips hidden files."""
        return sorted(n for n in os.listdir(self.job_dir_bytes)
                      if n.endswith(b".yaml") and not n.startswith(b"."))

    def base_config(self) -> dict[str, str]:
        return {
            "user": USER,
            "job_directory": f"'{self.jobs}'",
            "output_crontab": f"'{self.crontab}'",
            "output_directory": f"'{self.root / 'log'}'",
            "run_directory": f"'{self.root / 'run'}'",
            "state_directory": f"'{self.root / 'state'}'",
            "runner_path": RUNNER,
            "backend": "direct",
        }

    def write_config(self, extra: str = "") -> None:
        """The base configuration; keys set at column 0 of ``extra`` replace
        the base's (a key may not appear twice)."""
        given = set(re.findall(r"^([A-Za-z_][A-Za-z0-9_]*):", extra, re.MULTILINE))
        base = "".join(f"{k}: {v}\n" for k, v in self.base_config().items() if k not in given)
        text = base + extra.replace("@ROOT@", str(self.root)).replace("@JOBS@", str(self.jobs))
        self.config.write_text(text, encoding="utf-8")


def make_site(tmp: Path) -> Site:
    site = Site(tmp, tmp / "jobs", tmp / "process-control.yaml", tmp / "out", tmp / "crontab")
    site.jobs.mkdir()
    site.write_config()
    for slug, text in REFS.items():
        (site.jobs / f"{slug}.yaml").write_text(text, encoding="utf-8")
    return site


def place_job(site: Site, case: Case) -> bytes:
    """Put the case into the job directory; returns its path."""
    path = os.path.join(site.job_dir_bytes, case.filename)
    setup: Any = case.spec.get("setup")
    kind = setup if isinstance(setup, str) else (setup or {}).get("kind")
    if kind is None:
        with open(path, "wb") as handle:
            handle.write(case.data())
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        os.mkdir(path)
        (Path(os.fsdecode(path)) / "inside.yaml").write_text(REFS["refjournal0"])
    elif kind == "socket":
        os.mknod(path, stat.S_IFSOCK | 0o600)
    elif kind == "chardev":
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 5))  # like /dev/zero
    elif kind == "sparse":
        with open(path, "wb") as handle:
            handle.write(case.data())
            handle.truncate(int(setup["size"]))
    elif kind == "symlink":
        os.symlink(_link_target(site, case, setup["target"]), path)
    else:
        raise ManifestError(f"{case.id}: unknown setup {kind!r}")
    return path


def _link_target(site: Site, case: Case, target: str) -> bytes:
    """Where a symlink case points (the case's text is the target's content)."""
    outside = site.root / f"outside-{case.id}"
    inside = site.jobs / f".target-{case.id}"
    if target == "outside":
        outside.write_bytes(case.data())
        return os.fsencode(outside)
    if target == "inside":
        inside.write_bytes(case.data())
        return os.fsencode(inside)
    if target == "inside-relative":
        inside.write_bytes(case.data())
        return os.fsencode(inside.name)
    if target == "outside-relative":
        outside.write_bytes(case.data())
        return os.fsencode(f"../{outside.name}")
    if target == "subfolder":
        sub = site.jobs / f"sub-{case.id}"
        sub.mkdir()
        (sub / "job.yaml").write_bytes(case.data())
        return os.fsencode(sub / "job.yaml")
    if target == "outside-dir":
        outside.mkdir()
        return os.fsencode(outside)
    if target == "dangling":
        return os.fsencode(site.root / "no-such-file.yaml")
    if target == "loop":
        return case.filename
    if target == "devzero":
        return b"/dev/zero"
    if target == "jobdir":
        return b"."
    if target == "chain-outside":
        outside.write_bytes(case.data())
        os.symlink(outside, inside)
        return os.fsencode(inside)
    raise ManifestError(f"{case.id}: unknown symlink target {target!r}")
