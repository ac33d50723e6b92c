"""What each ``run-job`` action does: the library call behind it, its output and exit status."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

import click

from pc_systemd.core.terminal import JobOutput
from pc_systemd.model import backend
from pc_systemd.model.config import Config, load_config
from pc_systemd.model.errors import PcError, printable

if TYPE_CHECKING:  # the annotation only: listings never load the job parser
    from pc_systemd.core.safe_open import Copy
    from pc_systemd.model.job import Job
    from pc_systemd.model.jobinfo import Summary


@dataclass(frozen=True)
class Session:
    """What every action shares: the configuration file given (or None)."""

    config_path: str | None

    def config(self, trusted_only: bool = True) -> Config:
        try:
            return load_config(self.config_path, trusted_only=trusted_only)
        except PcError as err:
            fail(err)


def fail(err: PcError, code: int = 2) -> NoReturn:
    for problem in err.problems:
        click.echo(str(problem), err=True)
    sys.exit(code)


def die(message: str, code: int = 2) -> NoReturn:
    click.echo(f"run-job: {message}", err=True)
    sys.exit(code)


def load_job(config: Config, slug: str) -> Job:
    from pc_systemd.model.jobset import find_job  # listings skip the job parser (~4 ms)

    try:
        return find_job(config, slug)
    except PcError as err:
        fail(err)


def _on_systemd(config: Config) -> bool:
    return backend.choose(config) == backend.SYSTEMD


def _job_output(raw: bool) -> JobOutput:
    """Where a job's output goes: stdout, control characters shown on a
    terminal unless ``raw`` (:mod:`pc_systemd.core.terminal`)."""
    return JobOutput.to(sys.stdout.buffer, raw, sys.stdout.isatty())


def _say(line: str) -> None:
    click.echo(line, err=True)


def _require_member(config: Config, what: str) -> None:
    """On systemd hosts: one line, exit 2, for a user polkit would refuse,
    before systemd is asked (nothing prompts for a password)."""
    from pc_systemd.systemd import access  # systemd hosts only (grp, pwd: ~1 ms)

    if not access.is_member(config.developer_group):
        die(access.refusal(config.developer_group, what))


def run(config: Config, slug: str, slow_start: bool, scheduled: bool = False,
        cron_form: bool = False, raw: bool = False) -> None:
    """``scheduled`` (``--scheduled``, in the cron lines of jobs with
    ``random_delay``): the direct runner waits the job's fixed delay first;
    on systemd hosts the timer has already waited it. ``cron_form``: the form
    cron lines use (``run-job --job NAME``, or ``--scheduled``): on cron
    hosts a held job is skipped (a disabled group, a stop after failures),
    silently, as cron mails output; every other form runs it. ``raw``: the
    job's output to a terminal as it is, control characters included."""
    job = load_job(config, slug)
    if not _on_systemd(config):
        from pc_systemd.cron import direct  # not on systemd hosts (~20 ms of imports)

        if (cron_form or scheduled) and not slow_start:
            _skip_if_held(config, job)
        sys.exit(direct.run_job(config, job, slow_start=slow_start, out=sys.stdout,
                                scheduled=scheduled, raw=raw))
    _require_member(config, "running a job")
    if _say_refused(job):
        die(f"{job.slug}: the generator refused this job, so systemd has no unit to run; "
            "fix the job file (the line above), then run-job reload")
    # systemd's side (~20 ms of imports): cron hosts never load it
    from pc_systemd.systemd import runner as systemd_runner
    from pc_systemd.systemd.bus import BusError
    from pc_systemd.systemd.journal import JournalError

    try:
        code = systemd_runner.run(job, slow_start=slow_start, show=_job_output(raw).line,
                                  say=_say)
    except (BusError, systemd_runner.RunError, JournalError) as err:
        die(str(err))
    if job.logging == "file":
        from pc_systemd.cron.runlog import newest_log  # only logging: file jobs (~3 ms)

        _say(f"{job.slug}: output in {newest_log(config.output_directory, job.slug)}")
    sys.exit(code)


def _say_refused(job: Job) -> bool:
    """On a systemd host: the lines of what the generator refuses of the job
    (as ``validate`` prints them), on stderr; whether there were any."""
    from pc_systemd.model import systemd_version
    from pc_systemd.model.job import systemd_problems  # loaded already with the job

    refused = systemd_problems(job, systemd_version.manager())
    for problem in refused:
        click.echo(str(problem), err=True)
    return bool(refused)


def _skip_if_held(config: Config, job: Job) -> None:
    from pc_systemd.cron import direct  # cron hosts only
    from pc_systemd.model.jobinfo import Summary
    from pc_systemd.views.holding import Holds

    failures = direct.job_state(config, job.slug).consecutive_failures
    reason = Holds.read(config).reason(Summary.of(job), failures)
    if reason is None:
        return
    line = f"{job.slug}: scheduled run skipped: {reason}; by hand: run-job run {job.slug}"
    if sys.stderr.isatty():
        _say(line)
    # the configuration's `logging` (as a run would log): cron mails only output
    direct.OwnLog.configure(config, _say)(direct.LOG_INFO, line)
    sys.exit(0)


def tagged(config: Config, tag: str) -> list[Summary]:
    """The valid jobs with ``tag``, from the catalog (the per-file cache)."""
    from pc_systemd.views import listing  # listings only (~13 ms of imports)

    return [s for s in listing.names(config).summaries if s.valid and tag in s.tags]


def kill(config: Config, slug: str | None, tag: str | None = None) -> None:
    if slug is None:
        if tag is None:
            die("kill needs a job NAME or --tag TAG")
        _kill_group(config, tag)
    job = load_job(config, slug)
    if tag is not None and tag not in job.tag:
        die(f"{slug} has no tag {tag!r}: not stopped", 1)
    code, message, error = _stop(config, job)
    click.echo(message, err=error)
    sys.exit(code)


def _kill_group(config: Config, tag: str) -> NoReturn:
    """Stop every running job tagged ``tag``; exit 0 unless one could not be."""
    worst = 0
    for summary in tagged(config, tag):
        code, message, _error = _stop(config, load_job(config, summary.slug))
        click.echo(message)
        if code != 0 and "is not running" not in message:
            worst = max(worst, code)
    sys.exit(worst)


def _stop(config: Config, job: Job) -> tuple[int, str, bool]:
    """Stop the job's running instance: the exit status, what to say, and
    whether that is an error line (the direct runner's are, as before)."""
    if not _on_systemd(config):
        from pc_systemd.cron import direct  # not on systemd hosts (~20 ms of imports)

        code, message = direct.kill_job(config, job)
        return code, message, code != 0
    _require_member(config, "stopping a job")
    # systemd's side (~20 ms of imports): cron hosts never load it
    from pc_systemd.systemd import runner as systemd_runner
    from pc_systemd.systemd.bus import BusError

    lines: list[str] = []
    try:
        code = systemd_runner.stop(job, say=lines.append)
    except BusError as err:
        die(str(err))
    return code, "\n".join(lines), False


def show_jobs(config: Config, only_running: bool, full: bool, as_json: bool,
              tag: str | None = None) -> None:
    """``list`` (-l): one slug per line, as the original (broken files too,
    their problems on stderr); ``status`` (-s): the original's status format
    and more (see :mod:`pc_systemd.views.report`); --json: both as one document."""
    # here: run-job's other commands, a job's start above all, skip these (~13 ms of imports)
    from pc_systemd.model.jobinfo import to_json
    from pc_systemd.systemd.bus import BusError
    from pc_systemd.views import listing

    try:
        if not (full or only_running or as_json):
            catalog = listing.names(config)
            for problem in catalog.problems:
                _say(printable(problem))
            for summary in catalog.summaries:
                if tag is None or tag in summary.tags:
                    click.echo(printable(summary.slug) or "''")  # a file named ".yaml"
            return
        found = (listing.systemd_listing(config) if _on_systemd(config)
                 else listing.direct_listing(config))
    except OSError as err:
        _say(str(config.problem("job_directory", f"{config.job_directory}: {err.strerror or err}")))
        sys.exit(2)
    except BusError as err:
        die(str(err))
    for problem in found.catalog.problems:
        _say(printable(problem))
    infos = [i for i in found.infos if (not only_running or i.state == "running")
             and (tag is None or tag in i.summary.tags)]
    if as_json:
        click.echo(to_json(found.backend, infos), nl=False)
    elif full:
        from pc_systemd.views.report import format_status  # only status shows it (~4 ms)

        _say(f"backend: {found.backend}")
        click.echo(format_status(found.backend, infos), nl=False)
    else:
        for info in infos:
            click.echo(printable(info.slug))


def logs(config: Config, slug: str, slow_start: bool, which: int, follow: bool = False,
         raw: bool = False) -> None:
    """``logs``: one run's output; with ``follow``, the running run's as it
    comes, until the run ends (exit status: the run's, as ``run`` gives it),
    or the last run's when none is running. ``raw`` as for :func:`run`."""
    job = load_job(config, slug)
    on_systemd = _on_systemd(config)
    if on_systemd:
        _require_member(config, "reading a job's output")
    if follow and which != -1:
        die("--follow follows the running run; it takes no --run")
    if on_systemd:
        _say_refused(job)  # earlier runs, from before the refusal, may still be shown
    if job.logging == "file" or not on_systemd:
        _file_logs(config, job, which, _job_output(raw),
                   _running(config, job, slow_start) if follow else None)
        return
    # systemd's side (~20 ms of imports): cron hosts never load it
    from pc_systemd.systemd import runner as systemd_runner
    from pc_systemd.systemd.bus import BusError
    from pc_systemd.systemd.journal import JournalError

    out = _job_output(raw)
    try:
        if follow:
            code = systemd_runner.follow(job, slow_start=slow_start, show=out.line, say=_say)
            if code is not None:
                sys.exit(code)
        log = systemd_runner.logs(job, slow_start=slow_start, which=which)
        _say(systemd_runner.describe_run(job, log))
        shown = 0
        for line in log.lines:
            out.line(line)
            shown += 1
        for note in systemd_runner.describe_gaps(log, shown):
            _say(note)
    except (systemd_runner.RunError, JournalError, BusError) as err:
        die(str(err))


def _running(config: Config, job: Job, slow_start: bool) -> Callable[[], bool]:
    """Whether the job is running now, asked again at each call."""
    if _on_systemd(config):
        from pc_systemd.systemd import runner as systemd_runner  # systemd hosts only

        return lambda: systemd_runner.is_running(job, slow_start)
    from pc_systemd.cron import lock  # cron hosts only

    path = lock.lock_path(config.run_directory, job.slug)

    def held() -> bool:
        try:
            return lock.holder(path) is not None
        except OSError:
            return False  # as direct.job_state: a lock that cannot be read holds nothing

    return held


def _file_logs(config: Config, job: Job, which: int, out: JobOutput,
               running: Callable[[], bool] | None = None) -> None:
    """Per-run log files (the direct runner's, or `logging: file` jobs');
    with ``running``, the newest one followed while the job runs.

    Root reads them from a directory the service user (so every job) can
    write: only a regular file of the service user's is shown, opened
    without following a symlink or blocking on a FIFO, and only as much
    as it held when opened (:mod:`pc_systemd.core.safe_open`), or, when
    following, what is appended to that same open file."""
    # here: listings need neither (~5 ms of imports)
    from pc_systemd.core.safe_open import copy_to, open_at, service_uid
    from pc_systemd.cron.runlog import log_names

    directory = os.path.join(config.output_directory, job.slug)
    try:
        dir_fd, names = log_names(config.output_directory, job.slug)
    except FileNotFoundError:
        dir_fd, names = -1, []
    except PermissionError as err:
        _refused(config, f"{err.filename or directory}: {err.strerror}")
    except OSError as err:
        die(f"{err.filename or directory}: {err.strerror}", 1)
    try:
        notes = _file_notes(config, job, names)
        if not names:
            for note in notes(None):
                _say(f"-- {note}")
            die(f"{job.slug}: no log files in {directory}", 1)
        index = which - 1 if which > 0 else len(names) + which
        if which == 0 or not 0 <= index < len(names):
            die(f"{job.slug}: no run {which}: {len(names)} log file(s) in {directory}", 1)
        path = os.path.join(directory, names[index])
        _say(f"-- run {index + 1} of {len(names)}: {path}")
        try:
            fd = open_at(dir_fd, names[index], service_uid(config.user), path)
            try:
                copy = copy_to(fd, out)
                out.flush()
                if running is not None:
                    _follow_file(copy, out, running)
            finally:
                os.close(fd)
            out.finish()
            if skipped := copy.skipped_line(path):
                _say(skipped)
        except OSError as err:
            die(f"{path}: {err.strerror}")
        for note in notes(index):
            _say(f"-- {note}")
    finally:
        if dir_fd >= 0:
            os.close(dir_fd)


def _file_notes(config: Config, job: Job, names: list[str]) -> Callable[[int | None], list[str]]:
    """What the runs recorded about their files (on cron hosts the run
    history's, :func:`_cron_file_notes`; on systemd hosts the journal's,
    :mod:`pc_systemd.systemd.filelog_notes`), for the run whose file is
    ``names[index]``: noted while it ran or after, before the next file was
    made; the later notes of runs that made no file among them. ``None``:
    no file at all, the newest notes."""
    if not _on_systemd(config):
        return _cron_file_notes(config, job, names)
    if job.logging != "file":
        return lambda _index: []
    from pc_systemd.systemd import filelog_notes, journal  # here: file-logged jobs only
    from pc_systemd.systemd.units import filecheck_name, service_name, slow_start_name

    units = [service_name(job.slug), slow_start_name(job.slug), filecheck_name(job.slug)]

    def notes(index: int | None) -> list[str]:
        try:
            if index is None:
                return [n.text for n in filelog_notes.read(units, 0, last=NOTES_SHOWN)]
            start = filelog_notes.stamp_time(names[index], job.slug)
            if start is None:
                return []
            end = (filelog_notes.stamp_time(names[index + 1], job.slug)
                   if index + 1 < len(names) else None)
            found = filelog_notes.read(units, start, last=None if end else NOTES_SHOWN)
        except journal.JournalError as err:
            return [f"the runs' notes on their files cannot be read: {err}"]
        return [n.text for n in found if end is None or n.at < end][-NOTES_SHOWN:]

    return notes


NOTES_SHOWN = 5


def _cron_file_notes(config: Config, job: Job,
                     names: list[str]) -> Callable[[int | None], list[str]]:
    """On cron hosts, what the run history says of the file ``names[index]``
    (why it misses output) and, for the newest, of a last run that has no
    file of its own (:func:`pc_systemd.cron.direct.log_notes`)."""
    from pc_systemd.cron import direct  # cron hosts only

    directory = os.path.join(config.output_directory, job.slug)

    def notes(index: int | None) -> list[str]:
        shown = os.path.join(directory, names[index]) if index is not None else None
        newest = index is None or index == len(names) - 1
        return [printable(n) for n in direct.log_notes(config, job.slug, shown, newest)]

    return notes


FOLLOW_POLL = 0.2  # seconds between looks at a followed log file


def _follow_file(copy: Copy, out: JobOutput, running: Callable[[], bool]) -> None:
    """What is appended to the file while ``running()``, and once more after."""
    import time  # --follow only

    while True:
        alive = running()
        copy.to(out)
        out.flush()
        if not alive:
            return
        time.sleep(FOLLOW_POLL)


def _refused(config: Config, why: str) -> NoReturn:
    """A directory of the service user's, refused to another user: on cron
    hosts, one line that also says how to become that user."""
    if _on_systemd(config):
        die(why, 1)
    from pc_systemd.cron.direct import how_to_become  # cron hosts only, on this error only

    die(f"{why}: {how_to_become(config)}")


def show_next(config: Config, slug: str, count: int, as_json: bool) -> None:
    job = load_job(config, slug)
    from pc_systemd.views.next_runs import NextError, next_runs  # only next uses it (~4 ms)

    try:
        found = next_runs(job, count)
    except NextError as err:
        die(str(err), 1)
    if as_json:
        click.echo(json.dumps({
            "slug": job.slug, "schedule": found.schedule, "timezone": job.timezone,
            "description": found.words, "disabled": job.disabled,
            "next": [t.astimezone().isoformat() for t in found.times],
        }, indent=2))
        return
    from pc_systemd.views.report import when  # only status and next use it (~4 ms)

    click.echo(f"{job.slug}: {found.schedule} ({found.words})")
    if job.disabled:
        _say(f"{job.slug} is disabled: its timer does not fire; these are the schedule's times")
    for time_ in found.times:
        click.echo(when(time_))


def validate(session: Session, paths: list[str] | None, strict: bool) -> None:
    from pc_systemd.model import validate as checks  # only validate (~2 ms of imports)

    # Validating runs and writes nothing: a group-writable configuration
    # (a CI checkout made with umask 002) is read, not refused.
    report = checks.validate(session.config(trusted_only=False), paths)
    for problem in report.errors + report.warnings:
        click.echo(str(problem))
    click.echo(report.summary(), err=True)
    sys.exit(1 if report.failed(strict) else 0)


def reload(config: Config) -> None:
    sys.exit(apply_job_directory(config))


def apply_job_directory(config: Config) -> int:
    """run-job reload (and the reload path unit, and cron-generate on a
    systemd host): regenerate the units, start new timers, stop stale ones,
    and take a cron file of ours out of service. Returns the exit code."""
    # here: run-job's other commands skip D-Bus and the generator (~6 ms of imports)
    from pc_systemd.systemd import bus, generator

    # the generator that daemon-reload runs reuses what this works out
    problems = generator.refresh_cache(config.path)
    for problem in problems:
        click.echo(problem, err=True)
    _apply_access(config)
    _retire_cron_files(config)
    try:
        applied = bus.reload_and_apply()
    except PcError as err:
        click.echo(f"run-job: {err}", err=True)
        return 2
    for verb, names in (("started", applied.started), ("stopped", applied.stopped)):
        for name in names:
            click.echo(f"{verb} {name}")
    return 1 if problems else 0


def _retire_cron_files(config: Config) -> None:
    """Where the generator is installed and systemd runs, timers run the
    jobs: a cron file of cron-generate's (configuration management may put
    the original's back at any deploy) would run each one a second time.
    Moved aside as the package's install does, with a note in the log."""
    from pc_systemd.cron import migrate
    from pc_systemd.systemd import presence

    if not presence.timers_run_jobs():
        return
    for path in migrate.cron_files(config.output_crontab):
        try:
            migrate.take_out_of_service(path, migrate.TIMERS_RUN_THEM)
        except OSError as err:
            migrate.note(f"{path}: cannot rename it: {err.strerror}; cron still runs it")


def _apply_access(config: Config) -> None:
    """The developer group's polkit rule, as root (see systemd.access)."""
    if os.geteuid() != 0:
        return
    from pc_systemd.systemd import access  # reload and install only

    for what, step in (("polkit rule", access.apply_rule),
                       ("broker socket", access.apply_socket_group),
                       ("journal namespace", access.apply_journal_acl),
                       ("output_directory", access.ensure_output_directory),
                       ("hold_directory", access.ensure_hold_directory)):
        try:
            done = step(config)
        except OSError as err:
            click.echo(f"run-job: {what}: {err}", err=True)
            continue
        if done:
            click.echo(f"run-job: {done}", err=True)


def install(remove: bool, session: Session) -> None:
    # here: run-job's other commands skip the installer's pathlib and the generator (~5 ms)
    from pc_systemd.systemd import generator
    from pc_systemd.systemd import install as installer

    try:
        if remove:
            path = installer.uninstall()
            click.echo(f"removed {path}" if path else "the generator was not installed")
        else:
            click.echo(f"installed {installer.install()}")
            generator.refresh_cache()  # its problems: see run-job --validate or --reload
            # an invalid configuration: run-job reload names its problems
            with contextlib.suppress(PcError):
                _apply_access(load_config(session.config_path))
            # timers run the jobs from now on: not cron as well
            with contextlib.suppress(PcError):
                _retire_cron_files(load_config(session.config_path))
    except OSError as err:
        click.echo(f"run-job: {err}", err=True)
        sys.exit(2)
    from pc_systemd.systemd import bus  # here: run-job's other commands skip D-Bus (~5 ms)

    try:
        applied = bus.reload_and_apply()
    except PcError as err:
        click.echo(f"run-job: generator {'removed' if remove else 'installed'}, but: {err}",
                   err=True)
        sys.exit(2)
    for name in applied.started:
        click.echo(f"started {name}")
    for name in applied.stopped:
        click.echo(f"stopped {name}")


# -- holds: disable-group, enable-group, reset (see pc_systemd.model.holds) ----------


def _who() -> str:
    import pwd  # the hold's record only

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return f"uid {os.getuid()}"


def _timers(config: Config, summaries: list[Summary], start: bool,
            request: Callable[[], object] | None = None) -> None:
    """Stop (or start) the timers of the scheduled jobs among ``summaries``,
    now (the generator keeps them out of timers.target.wants from the next
    daemon-reload on, and puts them back). Cron hosts: nothing to do, the
    runner reads the hold directory at each scheduled run. A member asks
    the broker (``request()``: the broker's request), which finds the same
    timers from the hold files."""
    if not _on_systemd(config):
        return
    from pc_systemd.systemd.bus import BusError, systemd  # systemd hosts only
    from pc_systemd.systemd.runner import brokered

    if request is not None and brokered():
        from pc_systemd.systemd import broker_client as client  # members only
        from pc_systemd.systemd.broker_protocol import Request

        asked = request()
        assert isinstance(asked, Request)
        try:
            lines, code = client.ask(asked)
        except BusError as err:
            die(str(err))
        for error, line in lines:
            click.echo(line, err=error)
        if code != 0:
            sys.exit(code)
        return
    from pc_systemd.systemd.units import timer_name

    names = [timer_name(s.slug) for s in summaries if s.scheduled]
    try:
        with systemd() as sd:
            for name in names:
                (sd.start_unit if start else sd.stop_unit)(name)
                click.echo(f"{'started' if start else 'stopped'} {name}")
    except BusError as err:
        die(str(err))


def _request(op: str, job: str | None = None, tag: str | None = None
             ) -> Callable[[], object]:
    """The broker's request for a hold's timers (made only when it is sent)."""
    def make() -> object:
        from pc_systemd.systemd.broker_protocol import Request  # members only

        return Request(op, job=job, tag=tag)

    return make


def disable_group(config: Config, tag: str) -> None:
    from pc_systemd.model import holds  # these commands only

    _require_member(config, "disabling a group")
    try:
        added = holds.add(config.hold_directory, holds.group_file(tag), holds.record(_who()))
    except holds.HoldError as err:
        die(str(err))
    jobs = tagged(config, tag)
    _timers(config, jobs, start=False, request=_request("disable-group", tag=tag))
    names = ", ".join(s.slug for s in jobs) or "none yet; jobs given the tag later are held too"
    click.echo(f"group {tag} {'disabled' if added else 'was already disabled'}: "
               f"{len(jobs)} job(s): {names}")


def enable_group(config: Config, tag: str) -> None:
    from pc_systemd.model import holds  # these commands only
    from pc_systemd.views.holding import Holds

    _require_member(config, "enabling a group")
    try:
        removed = holds.remove(config.hold_directory, holds.group_file(tag))
    except holds.HoldError as err:
        die(str(err))
    if not removed:
        die(f"group {tag} is not disabled", 1)
    found = Holds.read(config)  # another group, or a stop, may still hold a job
    jobs = tagged(config, tag)
    free = [s for s in jobs if found.reason(s) is None]
    _timers(config, free, start=True, request=_request("enable-group", tag=tag))
    still = [f"{s.slug} ({found.reason(s)})" for s in jobs if s not in free]
    click.echo(f"group {tag} enabled: {len(jobs)} job(s)"
               + (f"; still held: {', '.join(still)}" if still else ""))


def reset(config: Config, slug: str) -> None:
    """Lift a stop after failures. systemd hosts: the hold file goes and the
    timer starts. Cron hosts: the stop is the history's count of failures
    in a row, which the service user (or root) sets back to 0."""
    job = load_job(config, slug)
    from pc_systemd.model import holds  # these commands only
    from pc_systemd.model.jobinfo import Summary
    from pc_systemd.views.holding import Holds

    if not _on_systemd(config):
        _reset_history(config, job)
        return
    _require_member(config, "resetting a job")
    try:
        removed = holds.remove(config.hold_directory, holds.stopped_file(slug))
        # the failure-mail unit counts failures from the newest reset on
        holds.remove(config.hold_directory, holds.reset_file(slug))
        holds.add(config.hold_directory, holds.reset_file(slug), holds.record(_who()))
    except holds.HoldError as err:
        die(str(err))
    summary = Summary.of(job)
    reason = Holds.read(config).reason(summary)
    if reason is None:
        _timers(config, [summary], start=True, request=_request("reset", job=slug))
    click.echo(f"{slug}: {'stop lifted' if removed else 'was not stopped'}"
               + (f"; still held: {reason}" if reason else ""))


def _reset_history(config: Config, job: Job) -> None:
    import dataclasses  # cron hosts' reset only

    from pc_systemd.cron import direct
    from pc_systemd.cron import history as hist

    # Only as the service user, as a run: root would find the history not its
    # own and replace it, and leave it and its lock root's (the runner could
    # then record no run).
    why = direct.wrong_user(config)
    if why:
        die(why)
    path = hist.history_path(config.state_directory, job.slug)
    try:
        hist.update(path, lambda h: dataclasses.replace(h, consecutive_failures=0),
                    lambda message: _say(f"run-job: {message}"))
    except (OSError, hist.HistoryError) as err:
        die(f"{path}: {getattr(err, 'strerror', None) or err}")
    from pc_systemd.cron.direct import after_run  # the metrics file, if there is one

    after_run(config, job, _say)
    click.echo(f"{job.slug}: failure count reset")


def export_kubernetes(config: Config, output: str | None) -> None:
    """Every scheduled job as CronJobs: one YAML stream on stdout, or
    ``<output>/<slug>.yaml`` per job. A refusal (or a broken job file)
    exports nothing: a partial set applied to a cluster would drop jobs."""
    from pc_systemd.model.jobset import load_jobs
    from pc_systemd.model.robfig import cronjob_schedules
    from pc_systemd.views.cronjobs import export, to_yaml

    try:
        import kubernetes  # noqa: F401
    except ImportError:
        die("the Kubernetes client is missing: pip install 'pc-systemd[kubernetes]' "
            "(Debian: apt install python3-kubernetes)")
    found = load_jobs(config)
    result = export(config, found.jobs, cronjob_schedules)
    for problem in result.not_mapped:
        click.echo(str(problem), err=True)
    if found.problems or result.problems:
        fail(PcError([*found.problems, *result.problems]), 1)
    if output is None:
        click.echo(to_yaml(obj for _slug, objects in result.objects for obj in objects),
                   nl=False)
        return
    from pc_systemd.core.atomic import write_atomically

    for slug, objects in result.objects:
        write_atomically(os.path.join(output, f"{slug}.yaml"), to_yaml(objects))
    click.echo(f"{len(result.objects)} job(s) exported to {output}", err=True)
