"""``run-job``: a thin click layer over the library."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

import click
from click.shell_completion import CompletionItem

from pc_systemd.model import backend
from pc_systemd.model.config import Config, load_config
from pc_systemd.model.errors import PcError

if TYPE_CHECKING:
    from pc_systemd.model.job import Job

SLOW_START_FLAG = "\x00flag"  # -w given without a job name (the `-j NAME -w` form)


@dataclass(frozen=True)
class Ctx:
    config_path: str | None

    def config(self) -> Config:
        try:
            return load_config(self.config_path)
        except PcError as err:
            fail(err)


def fail(err: PcError, code: int = 2) -> NoReturn:
    for problem in err.problems:
        click.echo(str(problem), err=True)
    sys.exit(code)


def die(message: str, code: int = 2) -> NoReturn:
    click.echo(f"run-job: {message}", err=True)
    sys.exit(code)


def complete_jobs(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Job names (slugs) for shell completion: the job directory's files."""
    try:
        config = load_config(ctx.params.get("config_path"))
        names = sorted(n[: -len(".yaml")] for n in os.listdir(config.job_directory)
                       if n.endswith(".yaml"))
    except (PcError, OSError):
        return []
    return [CompletionItem(name) for name in names if name.startswith(incomplete)]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="PATH",
              help="Global configuration (default: $PROCESS_CONTROL_CONFIG, "
                   "/etc/process-control.yaml, else built-in defaults).")
@click.option("-j", "--job", metavar="NAME", shell_complete=complete_jobs,
              help="Run the job NAME now, show its output, exit with its status.")
@click.option("-w", "--slow-start", "slow_start", metavar="[NAME]", is_flag=False,
              flag_value=SLOW_START_FLAG, default=None, shell_complete=complete_jobs,
              help="Run the job's slow_start_command (with -j NAME, or as --slow-start NAME); "
                   "with --logs: the slow-start runs.")
@click.option("-k", "--kill-job", metavar="NAME", shell_complete=complete_jobs,
              help="Stop the running instance of NAME (its whole process tree).")
@click.option("-l", "--list-jobs", is_flag=True, help="List job names, one per line.")
@click.option("-s", "--status", is_flag=True,
              help="Show every job: state, last run, next run (and which backend runs them).")
@click.option("-r", "--only-running", is_flag=True, help="With -l or -s: only running jobs.")
@click.option("--json", "as_json", is_flag=True,
              help="With -l, -s or --next: one JSON document instead of text.")
@click.option("--logs", metavar="NAME", shell_complete=complete_jobs,
              help="Show the output of the job's last run (or of the running one).")
@click.option("--run", "which_run", metavar="N", type=int, default=-1, show_default=True,
              help="With --logs: which run; -1 the last, -2 the one before, 1 the oldest kept.")
@click.option("--next", "next_job", metavar="NAME", shell_complete=complete_jobs,
              help="Show when the job runs next, and its schedule in words.")
@click.option("--count", metavar="N", type=click.IntRange(1, 1000), default=5,
              show_default=True, help="With --next: how many run times.")
@click.option("--validate", "do_validate", is_flag=True,
              help="Check the job directory (or the FILES given); non-zero exit on problems.")
@click.option("--strict", is_flag=True, help="With --validate: warnings fail too.")
@click.option("--reload", "do_reload", is_flag=True,
              help="Apply the job directory now: regenerate units, start new timers, "
                   "reschedule changed ones, stop removed or disabled ones.")
@click.option("--install-generator", "install_gen", is_flag=True,
              help="Install the systemd generator (and apply the jobs).")
@click.option("--uninstall-generator", "uninstall_gen", is_flag=True,
              help="Remove the systemd generator (and stop the jobs' timers).")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=True))
@click.pass_context
def run_job(
    ctx: click.Context,
    config_path: str | None,
    job: str | None,
    slow_start: str | None,
    kill_job: str | None,
    list_jobs: bool,
    status: bool,
    only_running: bool,
    as_json: bool,
    logs: str | None,
    which_run: int,
    next_job: str | None,
    count: int,
    do_validate: bool,
    strict: bool,
    do_reload: bool,
    install_gen: bool,
    uninstall_gen: bool,
    files: tuple[str, ...],
) -> None:
    """Run and inspect process-control jobs."""
    state = Ctx(config_path)
    slow_flag = slow_start == SLOW_START_FLAG
    actions = [
        name for name, given in (
            ("--validate", do_validate), ("--install-generator", install_gen),
            ("--uninstall-generator", uninstall_gen), ("--reload", do_reload),
            ("-l/-s", list_jobs or status), ("--kill-job", kill_job),
            ("--job", job or (slow_start and not slow_flag)), ("--logs", logs),
            ("--next", next_job),
        ) if given
    ]
    if len(actions) > 1:
        raise click.UsageError(f"choose one action, not {' and '.join(actions)}")
    if files and not do_validate:
        raise click.UsageError("FILES are only taken with --validate")
    if slow_flag and not (job or logs):
        raise click.UsageError("-w/--slow-start needs a job: -j NAME -w, or --slow-start NAME")
    if only_running and not (list_jobs or status):
        raise click.UsageError("-r/--only-running goes with -l/--list-jobs or -s/--status")
    if as_json and not (list_jobs or status or next_job):
        raise click.UsageError("--json goes with -l/--list-jobs, -s/--status or --next")
    if which_run != -1 and not logs:
        raise click.UsageError("--run goes with --logs")
    if count != 5 and not next_job:
        raise click.UsageError("--count goes with --next")
    if do_validate:
        _validate(state.config(), list(files) or None, strict)
    elif install_gen or uninstall_gen:
        _install(uninstall_gen)
    elif do_reload:
        _reload(state.config())
    elif next_job:
        _next(state.config(), next_job, count, as_json)
    elif logs:
        _logs(state.config(), logs, slow_flag, which_run)
    elif list_jobs or status:
        _status(state.config(), only_running, full=status, as_json=as_json)
    elif kill_job:
        _kill(state.config(), kill_job)
    elif job or slow_start:
        name = job if job else slow_start
        assert name is not None
        _run(state.config(), name, slow_start=slow_start is not None)
    else:
        click.echo(ctx.get_help())
        ctx.exit(2)


def _load(config: Config, slug: str) -> Job:
    from pc_systemd.model.jobset import find_job

    try:
        return find_job(config, slug)
    except PcError as err:
        fail(err)


def _on_systemd(config: Config) -> bool:
    return backend.choose(config) == backend.SYSTEMD


def _show(line: str) -> None:
    click.echo(line)


def _say(line: str) -> None:
    click.echo(line, err=True)


def _run(config: Config, slug: str, slow_start: bool) -> None:
    job = _load(config, slug)
    if not _on_systemd(config):
        from pc_systemd.cron import direct

        sys.exit(direct.run_job(config, job, slow_start=slow_start, out=sys.stdout))
    from pc_systemd.systemd import runner as systemd_runner
    from pc_systemd.systemd.bus import BusError
    from pc_systemd.systemd.journal import JournalError

    try:
        code = systemd_runner.run(job, slow_start=slow_start, show=_show, say=_say)
    except (BusError, systemd_runner.RunError, JournalError) as err:
        die(str(err))
    if job.logging == "file":
        from pc_systemd.cron.runlog import newest_log

        _say(f"{job.slug}: output in {newest_log(config.output_directory, job.slug)}")
    sys.exit(code)


def _kill(config: Config, slug: str) -> None:
    job = _load(config, slug)
    if not _on_systemd(config):
        from pc_systemd.cron import direct

        code, message = direct.kill_job(config, job)
        click.echo(message, err=code != 0)
        sys.exit(code)
    from pc_systemd.systemd import runner as systemd_runner
    from pc_systemd.systemd.bus import BusError

    try:
        sys.exit(systemd_runner.stop(job, say=_show))
    except BusError as err:
        die(str(err))


def _status(config: Config, only_running: bool, full: bool, as_json: bool) -> None:
    """--list-jobs: one slug per line, as the original (broken files too,
    their problems on stderr); --status: the original's status format and
    more (see :mod:`pc_systemd.views.report`); --json: both as one document."""
    from pc_systemd.model.errors import printable
    from pc_systemd.systemd.bus import BusError
    from pc_systemd.views import listing

    try:
        if not (full or only_running or as_json):
            catalog = listing.names(config)
            for problem in catalog.problems:
                _say(printable(problem))
            for summary in catalog.summaries:
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
    infos = [i for i in found.infos if not only_running or i.state == "running"]
    if as_json:
        from pc_systemd.model.jobinfo import to_json

        click.echo(to_json(found.backend, infos), nl=False)
    elif full:
        from pc_systemd.views.report import format_status

        _say(f"backend: {found.backend}")
        click.echo(format_status(found.backend, infos), nl=False)
    else:
        for info in infos:
            click.echo(printable(info.slug))


def _logs(config: Config, slug: str, slow_start: bool, which: int) -> None:
    job = _load(config, slug)
    if job.logging == "file" or not _on_systemd(config):
        _file_logs(config, job, which)
        return
    from pc_systemd.systemd import runner as systemd_runner
    from pc_systemd.systemd.journal import JournalError

    try:
        log = systemd_runner.logs(job, slow_start=slow_start, which=which)
        _say(systemd_runner.describe_run(job, log))
        for line in log.lines:
            click.echo(line)
    except (systemd_runner.RunError, JournalError) as err:
        die(str(err))


def _file_logs(config: Config, job: Job, which: int) -> None:
    """Per-run log files (the direct runner's, or `logging: file` jobs').

    Root reads them from a directory the service user (so every job) can
    write: only a regular file of the service user's is shown, opened
    without following a symlink or blocking on a FIFO, and only as much
    as it held when opened (:mod:`pc_systemd.core.safe_open`)."""
    from pc_systemd.core.safe_open import copy_to, open_at, service_uid
    from pc_systemd.cron.runlog import log_names

    directory = os.path.join(config.output_directory, job.slug)
    try:
        dir_fd, names = log_names(config.output_directory, job.slug)
    except FileNotFoundError:
        dir_fd, names = -1, []
    except OSError as err:
        die(f"{err.filename or directory}: {err.strerror}", 1)
    try:
        if not names:
            die(f"{job.slug}: no log files in {directory}", 1)
        index = which - 1 if which > 0 else len(names) + which
        if which == 0 or not 0 <= index < len(names):
            die(f"{job.slug}: no run {which}: {len(names)} log file(s) in {directory}", 1)
        path = os.path.join(directory, names[index])
        _say(f"-- run {index + 1} of {len(names)}: {path}")
        try:
            fd = open_at(dir_fd, names[index], service_uid(config.user), path)
            try:
                copy_to(fd, sys.stdout.buffer)
            finally:
                os.close(fd)
            sys.stdout.flush()
        except OSError as err:
            die(f"{path}: {err.strerror}")
    finally:
        if dir_fd >= 0:
            os.close(dir_fd)


def _next(config: Config, slug: str, count: int, as_json: bool) -> None:
    job = _load(config, slug)
    from pc_systemd.views.next_runs import NextError, next_runs

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
    from pc_systemd.views.report import when

    click.echo(f"{job.slug}: {found.schedule} ({found.words})")
    if job.disabled:
        _say(f"{job.slug} is disabled: its timer does not fire; these are the schedule's times")
    for time_ in found.times:
        click.echo(when(time_))


def _validate(config: Config, paths: list[str] | None, strict: bool) -> None:
    from pc_systemd.model.validate import validate

    report = validate(config, paths)
    for problem in report.errors + report.warnings:
        click.echo(str(problem))
    click.echo(report.summary(), err=True)
    sys.exit(1 if report.failed(strict) else 0)


def _reload(config: Config) -> None:
    from pc_systemd.systemd.bus import reload_and_apply
    from pc_systemd.systemd.generator import refresh_cache

    # the generator that daemon-reload runs reuses what this works out
    problems = refresh_cache(config.path)
    for problem in problems:
        click.echo(problem, err=True)
    try:
        applied = reload_and_apply()
    except PcError as err:
        click.echo(f"run-job: {err}", err=True)
        sys.exit(2)
    for verb, names in (("started", applied.started), ("restarted", applied.restarted),
                        ("stopped", applied.stopped)):
        for name in names:
            click.echo(f"{verb} {name}")
    sys.exit(1 if problems else 0)


def _install(remove: bool) -> None:
    from pc_systemd.systemd import install

    try:
        if remove:
            path = install.uninstall()
            click.echo(f"removed {path}" if path else "the generator was not installed")
        else:
            click.echo(f"installed {install.install()}")
            from pc_systemd.systemd.generator import refresh_cache

            refresh_cache()  # its problems: see run-job --validate or --reload
    except OSError as err:
        click.echo(f"run-job: {err}", err=True)
        sys.exit(2)
    from pc_systemd.systemd.bus import reload_and_apply

    try:
        applied = reload_and_apply()
    except PcError as err:
        click.echo(f"run-job: generator {'removed' if remove else 'installed'}, but: {err}",
                   err=True)
        sys.exit(2)
    for name in applied.started:
        click.echo(f"started {name}")
    for name in applied.stopped:
        click.echo(f"stopped {name}")


def main() -> None:
    run_job(prog_name="run-job")


if __name__ == "__main__":
    main()
