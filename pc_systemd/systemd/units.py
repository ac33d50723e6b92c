"""Jobs -> unit files, through the Jinja2 templates in ``templates/``.

Templates hold the structure only; every value reaches them through an
escape filter of :mod:`pc_systemd.systemd.unit_escape` (``StrictUndefined``: a
missing value is a bug, not an empty string).  The generator renders them
through their compiled form (:mod:`pc_systemd.systemd.template_compiler`) when it matches the
template file, so it never pays for importing Jinja2.
"""

from __future__ import annotations

import grp
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pc_systemd.model import systemd_version
from pc_systemd.model.config import Config
from pc_systemd.model.fields import Command
from pc_systemd.model.job import Job
from pc_systemd.model.job_keys import STRICT
from pc_systemd.model.retry import restart_steps, start_limit
from pc_systemd.model.schedule import DST_YEARS, dst_extras, host_zone
from pc_systemd.model.writers import passwd_entry
from pc_systemd.systemd import _templates, filelog, presence
from pc_systemd.systemd import unit_escape as esc

PREFIX = "process-control-"
SLOW_START = ".slow-start.service"
RELOAD = PREFIX + "reload"
# os.path, not pathlib: pathlib alone costs the generator ~6 ms of imports.
_PACKAGE = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
TEMPLATES = os.path.join(_PACKAGE, "templates")  # in a checkout, a link to ../templates
MAIL = PREFIX + "mail@"
FILECHECK = PREFIX + "filecheck@"
METRICS = PREFIX + "metrics"
# The user our mail and metrics units run as: systemd allocates it
# (DynamicUser=) unless the system has it (the package creates it).
MONITOR_USER = "process-control-monitor"
JOURNAL_GROUP = "systemd-journal"


if TYPE_CHECKING:  # the annotation only: Jinja2 is imported where it renders
    import jinja2

FILTERS: Mapping[str, Callable[..., str]] = {
    "plain": esc.plain,
    "path": esc.path,
    "comment": esc.comment,
    "seconds": esc.seconds,
    "span": esc.span,
    "exec": esc.exec_argv,
    "env": esc.environment,
    "credential": esc.credential,
    "integer": esc.integer,
    "percent": esc.percent,
}
Render = Callable[..., str]


def jinja_environment() -> jinja2.Environment:
    import jinja2  # only for a template changed since it was compiled (~25 ms of imports)

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    return env


def load_templates(compiled: bool = True) -> dict[str, Render]:
    """name -> render(**values): the compiled function where it is current,
    else Jinja2 (a template edited on the host is never ignored)."""
    renders: dict[str, Render] = {}
    env = None
    for name in sorted(n for n in os.listdir(TEMPLATES) if n.endswith(".j2")):
        with open(os.path.join(TEMPLATES, name), encoding="utf-8") as handle:
            source = handle.read()
        if compiled and _templates.SOURCES.get(name) == source:
            renders[name] = _bind(_templates.RENDER[name])
        else:
            env = env or jinja_environment()
            renders[name] = env.get_template(name).render
    return renders


def _bind(function: Callable[[Mapping[str, Any], Mapping[str, Callable[..., str]]], str]) -> Render:
    def render(**values: Any) -> str:
        return function(values, FILTERS)

    return render


def service_name(slug: str) -> str:
    return f"{PREFIX}{slug}.service"


def slow_start_name(slug: str) -> str:
    # Never a job's own unit: a slug cannot end in '.slow-start' (model.job.SLUG).
    return f"{PREFIX}{slug}{SLOW_START}"


def timer_name(slug: str) -> str:
    return f"{PREFIX}{slug}.timer"


@dataclass(frozen=True)
class UnitFile:
    name: str
    text: str
    wanted_by: str | None = None  # target whose .wants/ enables it


class Renderer:
    """Renders units; built once per generator run (templates compiled once)."""

    def __init__(
        self, config: Config, python: str = sys.executable, compiled: bool = True,
        dst: tuple[str, int] | None = None,
    ) -> None:
        self.config = config
        self.python = python
        # (host zone, first year) of the DST instants added to timers
        self.host_zone, self.dst_year = dst or dst_context()
        templates = load_templates(compiled)
        self.service = templates["job.service.j2"]
        self.timer = templates["job.timer.j2"]
        self.reload_path = templates["reload.path.j2"]
        self.reload_service = templates["reload.service.j2"]
        self.mail_service = templates["mail.service.j2"]
        self.filecheck_service = templates["filecheck.service.j2"]
        self.metrics_service = templates["metrics.service.j2"]
        self.metrics_timer = templates["metrics.timer.j2"]

    def job_units(self, job: Job) -> list[UnitFile]:
        """The units of one job; raises UnitValueError for unrepresentable values."""
        units = [UnitFile(service_name(job.slug), self._service(job, job.command, ""))]
        if job.slow_start_command:
            units.append(
                UnitFile(
                    slow_start_name(job.slug),
                    self._service(job, job.slow_start_command, " (slow start)"),
                )
            )
        if job.schedule is not None:
            text = self.timer(
                source=job.path,
                description=f"Timer of process-control job {job.slug}: {job.name}",
                schedule=job.schedule.expr,
                timezone=job.timezone,
                calendars=job.schedule.on_calendar(job.timezone),
                dst_instants=dst_extras(job.schedule, job.timezone or self.host_zone,
                                        self.dst_year, DST_YEARS),
                service=service_name(job.slug),
                catch_up=job.catch_up,
                random_delay=job.random_delay * 60,
            )
            wanted = "timers.target" if job.scheduled else None
            units.append(UnitFile(timer_name(job.slug), text, wanted))
        return units

    def _service(self, job: Job, commands: Sequence[Command], what: str) -> str:
        argvs: list[Sequence[str]] = [c.argv for c in commands]
        if job.logging == "file":
            # Not LogsDirectory=: systemd would give the directory the service
            # user's group at each start, and the developer group (which the
            # package's output_directory passes on: setgid) could not read it.
            out = os.path.join(self.config.output_directory, job.slug)
            argvs = [filelog.wrapped(out, job.slug, argv) for argv in argvs]
        return self.service(
            source=job.path,
            description=f"process-control job {job.slug}{what}: {job.name}",
            # the mail unit also stops the timer after stop_after_failures
            on_failure=" ".join(on_failure_units(job)),
            user=self.config.user,
            environment=job.environment,
            credentials=job.credentials,
            credentials_directory=self.config.credentials_of(job.slug),
            commands=argvs,
            timeout=job.timeout * 60,
            ident=job.slug,
            sandbox=bool(job.sandbox),
            strict_sandbox=job.sandbox == STRICT,
            memory_max=job.memory_max,
            cpu_quota=job.cpu_quota,
            nice=job.nice,
            io_class=job.io_class,
            **_retry_values(job),
        )

    def _ours(self, module: str) -> list[str]:
        """``python -I -m pc_systemd.MODULE [--config PATH]``."""
        command = [self.python, "-I", "-m", f"pc_systemd.{module}"]
        if self.config.path is not None:
            command += ["--config", self.config.path]
        return command

    def reload_units(self) -> list[UnitFile]:
        """Our own units: the reload path and service, the failure-mail
        template, and with ``metrics_file`` the metrics timer."""
        units = [
            UnitFile(
                RELOAD + ".path",
                self.reload_path(
                    job_directory=self.config.job_directory, service=RELOAD + ".service",
                    cron_files=presence.cron_files(self.config.output_crontab),
                ),
                "paths.target",
            ),
            UnitFile(RELOAD + ".service",
                     self.reload_service(command=[*self._ours("cli.run_job"), "--reload"])),
            UnitFile(MAIL + ".service", self.mail_service(
                command=self._ours("monitoring.on_failure"),
                hold_directory=self.config.hold_directory,
                groups=" ".join([JOURNAL_GROUP,
                                 *_log_groups(self.config.user, self.config.developer_group)]))),
            UnitFile(FILECHECK + ".service", self.filecheck_service(
                command=filelog.check(self.config.output_directory),
                groups=" ".join(_log_groups(self.config.user, self.config.developer_group)))),
        ]
        metrics_file = self.config.metrics_file
        if metrics_file is not None:
            units.append(UnitFile(METRICS + ".service", self.metrics_service(
                command=self._ours("monitoring.metrics_writer"),
                metrics_directory=os.path.dirname(metrics_file))))
            units.append(UnitFile(METRICS + ".timer", self.metrics_timer(
                service=METRICS + ".service"), "timers.target"))
        return units


def _retry_values(job: Job) -> dict[str, Any]:
    """The template's retry settings (``retry`` false: none). The job was
    checked against :func:`pc_systemd.model.job.systemd_problems` before it got here."""
    if job.retry is None:
        return {"retry": False, "retry_interval": 0.0, "retry_burst": "", "retry_delay": 0.0,
                "retry_steps": "", "retry_max_delay": 0.0, "retry_direct": False}
    limit = start_limit(job.retry, job.timeout)
    steps = restart_steps(job.retry)  # only on systemd >= 254: refused before on older ones
    version = systemd_version.manager()
    return {"retry": True, "retry_interval": limit.interval, "retry_burst": str(limit.burst),
            "retry_delay": job.retry.delay * 60,
            "retry_direct": version is not None and version >= systemd_version.RESTART_MODE_SINCE,
            "retry_steps": str(steps.steps) if steps else "",
            "retry_max_delay": steps.max_delay if steps else 0.0}


def dst_context() -> tuple[str, int]:
    """What the DST instants of timers depend on besides the job: the host's
    zone (for jobs without ``timezone:``) and the current year (UTC); part
    of the generator's cache context, so no cached timer outlives either."""
    return host_zone(), time.gmtime().tm_year


def mail_name(slug: str) -> str:
    return f"{MAIL}{slug}.service"


def filecheck_name(slug: str) -> str:
    return f"{FILECHECK}{slug}.service"


def on_failure_units(job: Job) -> list[str]:
    """What a failed run starts: the failure mail (which also stops the
    timer after stop_after_failures); for logging: file, the check of the
    log file's file system (:mod:`pc_systemd.systemd.filelog`)."""
    units = [filecheck_name(job.slug)] if job.logging == "file" else []
    if job.failmail is not None or job.stop_after_failures is not None:
        units.append(mail_name(job.slug))
    return units


def _log_groups(user: str, developer_group: str) -> list[str]:
    """The groups of ``logging: file`` output, for the failure mail to read
    it: the developer group (the package's output_directory passes it on)
    and the service user's primary group (files from before); those that
    exist here, never root's."""
    names = []
    entry = passwd_entry(user)
    try:
        if entry is not None and entry.pw_gid != 0:
            names.append(grp.getgrgid(entry.pw_gid).gr_name)
    except KeyError:
        pass
    try:
        if grp.getgrnam(developer_group).gr_gid != 0:
            names.append(developer_group)
    except KeyError:
        pass
    return [n for n in dict.fromkeys(names) if n and n.isprintable() and " " not in n]
