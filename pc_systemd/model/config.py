"""Global configuration: ``/etc/process-control.yaml`` or built-in defaults.

Every key of the original is accepted with its meaning, so an existing file
loads unchanged; unlike the original, no file at all is needed.
"""

from __future__ import annotations

import os
import re
import string
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pc_systemd.model import fields as f
from pc_systemd.model.config_file import config_path, untrusted
from pc_systemd.model.errors import PcError, Problem, one
from pc_systemd.model.fields import Key
from pc_systemd.model.nodes import (
    FILE_KEY,
    Entry,
    Map,
    Node,
    Scalar,
    load,
    mapping_entries,
    scalar,
    to_python,
    type_name,
)

CRON_FIELDS = ("source", "schedule", "user", "command")
_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?\Z")
_SPACE = re.compile(r"\s")
_SAFE_PATH = re.compile(r"[A-Za-z0-9/._+-]+\Z")


def _user(entry: Entry) -> str:
    value = scalar(entry, entry.value)
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value < 2**32 - 1:
            raise entry.problem(f"uid {value} is out of range")
        return str(value)
    name = f.text(entry)
    if not _USER.match(name):
        raise entry.problem(f"{name!r} is not a valid user name or uid")
    return name


def _group(entry: Entry) -> str:
    name = f.text(entry)
    if not _USER.match(name) or name.endswith("$"):
        raise entry.problem(f"{name!r} is not a valid group name")
    return name


def _abs_path(entry: Entry) -> str:
    value = f.nonempty_text(entry)
    if not value.startswith("/"):
        raise entry.problem(f"must be an absolute path, got {value!r}")
    if _SPACE.search(value):
        # unit settings such as LogsDirectory= split on white space
        raise entry.problem(f"must not contain white space, got {value!r}")
    return os.path.normpath(value)


def _runner(entry: Entry) -> str:
    """Written unquoted into cron lines, where ';', '%' and spaces mean
    something: plain path characters only."""
    value = _abs_path(entry)
    if not _SAFE_PATH.match(value):
        raise entry.problem(
            f"may contain only letters, digits and '/._+-' (it goes into cron lines), got {value!r}"
        )
    return value


def _crontab_path(entry: Entry) -> str:
    value = f.nonempty_text(entry)
    return value if value == "console" else _abs_path(entry)


def _cron_template(entry: Entry) -> str:
    value = f.free_text(entry)
    try:
        parsed = list(string.Formatter().parse(value))
    except ValueError as err:
        raise entry.problem(f"bad template: {err}") from None
    for _text, name, spec, conversion in parsed:
        if name is not None and (name not in CRON_FIELDS or spec or conversion):
            allowed = ", ".join("{" + n + "}" for n in CRON_FIELDS)
            raise entry.problem(f"unknown field {{{name}}} (allowed: {allowed})")
    return value


def _entries(entry: Entry) -> tuple[Entry, ...]:
    if not isinstance(entry.value, Map):
        raise entry.problem("expected a mapping of job keys")
    return tuple(mapping_entries(entry.value, entry.source, "job keys"))


def _logging(entry: Entry) -> Mapping[str, Any]:
    value = to_python(entry)
    if not isinstance(value, dict) or value.get("version") != 1:
        raise entry.problem("expected a logging.config.dictConfig mapping with version: 1")
    return value


# Kubernetes names (apimachinery's validation): a DNS-1123 label (namespaces),
# subdomain (service accounts, label key prefixes), and label names and values.
DNS_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?\Z")
DNS_SUBDOMAIN = re.compile(r"(?=.{1,253}\Z)[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?\Z")
LABEL_NAME = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?\Z")
# Ours: every exported object carries process-control/job (views/cronjobs.py).
OWN_LABEL_PREFIXES = ("process-control/", "tag.process-control/")
MAX_UID = 2**31 - 1  # runAsUser is an int64, but a uid above this is no one's


@dataclass(frozen=True)
class Kubernetes:
    """The ``kubernetes`` mapping: cluster settings of ``run-job export kubernetes``."""

    image: str | None = None
    namespace: str | None = None
    service_account: str | None = None
    run_as_user: int | None = None
    labels: tuple[tuple[str, str], ...] = ()
    # where run_as_user is written: uid 0 is checked against allow_root after loading
    run_as_user_line: int = field(default=0, compare=False)


KUBERNETES_KEYS = ("image", "namespace", "service_account", "run_as_user", "labels")


def _matching(pattern: re.Pattern[str], what: str) -> Any:
    def parse(entry: Entry) -> str:
        value = f.nonempty_text(entry)
        if not pattern.match(value):
            raise entry.problem(f"{value!r} is not {what}")
        return value

    return parse


def _label_key(entry: Entry, node: Node) -> str:
    """A label key: ``[prefix/]name``, the prefix a DNS subdomain."""
    key = scalar(entry, node)
    if not isinstance(key, str):
        raise entry.problem(f"a label key must be a string, got {type_name(key)}", node)
    prefix, slash, name = key.rpartition("/")
    if not LABEL_NAME.match(name) or (slash and not DNS_SUBDOMAIN.match(prefix)):
        raise entry.problem(f"{key!r} is not a Kubernetes label key ([prefix/]name, the name "
                            "at most 63 letters, digits, '-_.')", node)
    if key.startswith(OWN_LABEL_PREFIXES):
        raise entry.problem(f"{key!r}: the prefixes {', '.join(OWN_LABEL_PREFIXES)} are "
                            "process-control's own", node)
    return key


def label_value(value: str) -> bool:
    """Whether ``value`` is a valid label value (empty is)."""
    return not value or bool(LABEL_NAME.match(value))


def _labels(entry: Entry) -> tuple[tuple[str, str], ...]:
    if not isinstance(entry.value, Map):
        raise entry.problem("expected a mapping of label: value")
    result: dict[str, str] = {}
    for key_node, value_node in entry.value.items:
        key = _label_key(entry, key_node)
        if key in result:
            raise entry.problem("duplicate label", key_node, key)
        value = scalar(entry, value_node)
        if isinstance(value, int | float) and isinstance(value_node, Scalar):
            value = value_node.text  # as written: `cost: 42` is the label value "42"
        if not isinstance(value, str) or not label_value(value):
            raise entry.problem(f"{value!r} is not a Kubernetes label value (a string of at "
                                "most 63 letters, digits, '-_.', starting and ending with a "
                                "letter or digit)", value_node, key)
        result[key] = value
    return tuple(result.items())


def _run_as_user(entry: Entry) -> int:
    value = scalar(entry, entry.value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise entry.problem("expected a numeric uid (a user name does not exist in an image)")
    if not 0 <= value <= MAX_UID:
        raise entry.problem(f"uid {value} is out of range (0 to {MAX_UID})")
    return value


def _kubernetes(entry: Entry) -> Kubernetes:
    sub = f.sub_entries(entry, KUBERNETES_KEYS)
    parsers: dict[str, Any] = {
        "image": f.image,
        "namespace": _matching(DNS_LABEL, "a namespace (a DNS-1123 label: a-z, 0-9, '-')"),
        "service_account": _matching(DNS_SUBDOMAIN, "a service account name (a DNS-1123 "
                                                    "subdomain: a-z, 0-9, '-', '.')"),
        "run_as_user": _run_as_user,
        "labels": _labels,
    }
    line = sub["run_as_user"].line if "run_as_user" in sub else 0
    return Kubernetes(**{key: parsers[key](value) for key, value in sub.items()},
                      run_as_user_line=line)


def _default_runner() -> str:
    # The run-job beside this interpreter is the one installed with this
    # package (a virtualenv or /usr/bin), which the cron lines must call.
    beside = os.path.join(os.path.dirname(sys.executable), "run-job")
    return beside if os.path.isabs(beside) else "/usr/bin/run-job"


CONFIG_KEYS: tuple[Key[Any], ...] = (
    Key("user", "user name or uid", _user, "process-control",
        "Service user every job runs as."),
    Key("allow_root", "boolean", f.flag, False,
        "Allow `user: root` (or uid 0); without it a root service user is refused."),
    Key("allow_negative_nice", "boolean", f.flag, False,
        "Allow a negative `nice` (a priority above other processes') in job files; "
        "`default_job_config` may set one without it. `allow_root` does not imply it."),
    Key("developer_group", "group name", _group, "process-control-dev",
        "Its members may run, stop and follow jobs and read their output with "
        "`run-job`, without root or a password (through the broker on systemd hosts: "
        "the group has no systemd permission of its own; a sudoers drop-in on cron "
        "hosts); the package creates the default group."),
    Key("job_directory", "path", _abs_path, "/var/lib/process-control",
        "Where job files (`<slug>.yaml`) live."),
    Key("default_job_config", "mapping", _entries, (),
        "Job keys merged under every job file (the job's own keys win).",
        default_doc="none"),
    Key("runner_path", "path", _runner, _default_runner(),
        "Absolute path of `run-job`, written into the cron file.",
        default_doc="the `run-job` installed beside this Python"),
    Key("cron_template", "format string", _cron_template,
        "# Generated from {source}\n{schedule} {user} {command}\n",
        "Python `str.format` template of one cron entry; fields "
        "`{source}`, `{schedule}`, `{user}`, `{command}`.",
        default_doc="`# Generated from {source}\\n{schedule} {user} {command}\\n`"),
    Key("output_crontab", "path or `console`", _crontab_path, "/etc/cron.d/process-control",
        "Where `cron-generate` writes; `console` prints to stdout."),
    Key("output_directory", "path", _abs_path, "/var/log/process-control",
        "Per-run log files `<dir>/<slug>/<slug>-YYYYmmdd-HHMMSS.log`."),
    Key("run_directory", "path", _abs_path, "/run/process-control",
        "Lock files of the direct (cron-host) runner."),
    Key("state_directory", "path", _abs_path, "/var/cache/process-control",
        "Run history `<dir>/<slug>.yaml`."),
    Key("hold_directory", "path", _abs_path, "/var/lib/process-control-holds",
        "Jobs not scheduled: groups disabled by `run-job disable-group`, jobs stopped by "
        "`stop_after_failures`; writable by root and the developer group only (the "
        "package's tmpfiles.d makes it)."),
    Key("credentials_directory", "path", _abs_path, "/etc/process-control/credentials",
        "Where the files a job's `credentials` names live, one directory per job "
        "(`<credentials_directory>/<slug>/<name>`): root's only (0700) on systemd hosts; "
        "on cron hosts readable by the service user's group (docs/configuration.md: "
        "\"Credentials\")."),
    Key("smtp_host", "host name", f.nonempty_text, "localhost",
        "SMTP server that failure mail is sent through."),
    Key("smtp_port", "integer", f.positive_int, 25, "Its port."),
    Key("stale_after", "hours", f.positive_number, None,
        "`check-jobs-icinga` warns about a job whose last successful run is older.",
        default_doc="none (never stale)"),
    Key("metrics_file", "path", _abs_path, None,
        "node_exporter textfile-collector file rewritten after each run.",
        default_doc="none (no metrics)"),
    Key("backend", "auto | systemd | direct", f.choice("auto", "systemd", "direct"), "auto",
        "How `run-job` runs jobs: through systemd units, or itself (cron hosts); "
        "`auto`: systemd when the host was booted with it."),
    Key("kubernetes", "mapping", _kubernetes, None,
        "Cluster settings of `run-job export kubernetes`: `image` (the container image; "
        "required there, a job's own `image` wins), `namespace`, `service_account`, "
        "`run_as_user` (a numeric uid; 0 needs `allow_root`) and `labels` (a mapping "
        "added to every object's labels).",
        default_doc="none"),
    Key("logging", "mapping", _logging, None,
        "`logging.config.dictConfig` mapping for the tool's own messages.",
        default_doc="stderr"),
)
KEYS_BY_NAME = {key.name: key for key in CONFIG_KEYS}


@dataclass(frozen=True)
class Config:
    """Field names and meanings are those of :data:`CONFIG_KEYS`."""

    path: str | None  # None: built-in defaults, no file
    user: str
    allow_root: bool
    allow_negative_nice: bool
    developer_group: str
    job_directory: str
    default_job_config: tuple[Entry, ...]
    runner_path: str
    cron_template: str
    output_crontab: str
    output_directory: str
    run_directory: str
    state_directory: str
    hold_directory: str
    credentials_directory: str
    smtp_host: str
    smtp_port: int
    stale_after: float | None
    metrics_file: str | None
    backend: str
    kubernetes: Kubernetes | None
    logging: Mapping[str, Any] | None
    # default_job_config, validated once against the job keys
    job_defaults: Mapping[str, Any] = field(default_factory=dict, compare=False)
    job_default_lines: Mapping[str, tuple[str, int]] = field(default_factory=dict, compare=False)
    lines: Mapping[str, int] = field(default_factory=dict, compare=False)  # key -> line
    # what loads but deserves a look (an unknown key in default_job_config)
    warnings: tuple[Problem, ...] = field(default=(), compare=False)

    def credentials_of(self, slug: str) -> str:
        """The directory of one job's credentials: a job file can name only
        the files an operator put there for that job, never another job's."""
        return os.path.join(self.credentials_directory, slug)

    def problem(self, key: str, message: str) -> Problem:
        """A problem with one configuration value, pointing where it was set."""
        return Problem(self.path or "(built-in defaults)", self.lines.get(key, 1), key, message)


def builtin(path: str | None = None, **values: Any) -> Config:
    """A configuration from the key defaults, overridden by ``values``."""
    merged = {key.name: key.default for key in CONFIG_KEYS}
    merged.update(values)
    return Config(path=path, **merged)


def load_config(
    explicit: str | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    trusted_only: bool = True,
) -> Config:
    """The configuration that applies (see :func:`config_path`).

    ``trusted_only=False`` skips the ownership rule (:func:`untrusted`),
    which protects what runs as root: only for reading it, as
    ``run-job --validate`` does in a job repository's CI, where a checkout
    made with umask 002 is group-writable. Nothing written or run may
    come from such a configuration."""
    path = config_path(explicit, os.environ if environ is None else environ)
    if path is None:
        return builtin()
    if not os.path.exists(path):
        raise one(path, 1, FILE_KEY, "configuration file does not exist")
    distrust = untrusted(path) if trusted_only else None
    if distrust:
        raise one(path, 1, FILE_KEY, distrust)
    root = load(path, path)
    if root is None:  # an empty file: every key at its default
        return builtin(path)
    values: dict[str, Any] = {}
    problems: list[Problem] = []
    lines: dict[str, int] = {}
    for entry in mapping_entries(root, path, "configuration keys"):
        lines[entry.key] = entry.line
        key = KEYS_BY_NAME.get(entry.key)
        if key is None:
            problems.append(Problem(path, entry.line, entry.key, _unknown(entry.key)))
            continue
        value = f.collect(problems, lambda k=key, e=entry: k.parse(e))  # type: ignore[misc]
        if value is not None:
            values[entry.key] = value
    if "default_job_config" in values:
        # here: only a config with job defaults needs the job keys (~3 ms at every start)
        from pc_systemd.model.job_keys import parse_defaults

        defaults, more, warnings = parse_defaults(list(values["default_job_config"]))
        problems.extend(more)
        values["job_defaults"] = defaults
        values["job_default_lines"] = {
            e.key: (e.source, e.line) for e in values["default_job_config"] if e.key in defaults
        }
        values["warnings"] = tuple(warnings)
    if values.get("user") in ("root", "0") and not values.get("allow_root"):
        problems.append(
            Problem(path, lines["user"], "user",
                    "jobs would run as root; set allow_root: true if that is really meant")
        )
    cluster = values.get("kubernetes")
    if cluster and cluster.run_as_user == 0 and not values.get("allow_root"):
        problems.append(Problem(path, cluster.run_as_user_line, "kubernetes.run_as_user",
                                "jobs would run as root in their containers; set "
                                "allow_root: true if that is really meant"))
    if problems:
        raise PcError(problems)
    return builtin(path, lines=lines, **values)


def _unknown(key: str) -> str:
    import difflib  # only an unknown key pays for it (~1 ms at every start)

    close = difflib.get_close_matches(key, KEYS_BY_NAME, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown configuration key{hint}"
