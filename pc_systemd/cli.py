"""``run-job``: a thin click layer over the library."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import NoReturn

import click

from . import backend
from .config import Config, load_config
from .errors import PcError
from .job import Job
from .jobset import find_job, job_files, load_jobs
from .status import Line, format_status
from .validate import validate

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


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="PATH",
              help="Global configuration (default: $PROCESS_CONTROL_CONFIG, "
                   "/etc/process-control.yaml, else built-in defaults).")
@click.option("-j", "--job", metavar="NAME", help="Run the job NAME.")
@click.option("-w", "--slow-start", "slow_start", metavar="[NAME]", is_flag=False,
              flag_value=SLOW_START_FLAG, default=None,
              help="Run the job's slow_start_command (with -j NAME, or as --slow-start NAME).")
@click.option("-k", "--kill-job", metavar="NAME", help="Stop the running instance of NAME.")
@click.option("-l", "--list-jobs", is_flag=True, help="List job names, one per line.")
@click.option("-s", "--status", is_flag=True, help="Show every job and its state.")
@click.option("-r", "--only-running", is_flag=True, help="With -l or -s: only running jobs.")
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
    do_validate: bool,
    strict: bool,
    do_reload: bool,
    install_gen: bool,
    uninstall_gen: bool,
    files: tuple[str, ...],
) -> None:
    """Run and inspect process-control jobs."""
    state = Ctx(config_path)
    if files and not do_validate:
        raise click.UsageError("FILES are only taken with --validate")
    if slow_start == SLOW_START_FLAG and not job:
        raise click.UsageError("-w/--slow-start needs a job: -j NAME -w, or --slow-start NAME")
    if do_validate:
        _validate(state.config(), list(files) or None, strict)
    elif install_gen or uninstall_gen:
        _install(uninstall_gen)
    elif do_reload:
        _reload(state.config())
    elif list_jobs or status:
        _status(state.config(), only_running, full=status)
    elif kill_job:
        _kill(state.config(), kill_job)
    elif job or slow_start:
        name = job or slow_start
        assert name is not None
        _run(state.config(), name, slow_start=slow_start is not None)
    else:
        click.echo(ctx.get_help())
        ctx.exit(2)


def _load(config: Config, slug: str) -> Job:
    try:
        return find_job(config, slug)
    except PcError as err:
        fail(err)


def _direct_only(config: Config, what: str) -> None:
    """On systemd hosts jobs run as units; until run-job drives them over
    D-Bus, say how to do it with systemctl instead of running the job
    outside its unit (no sandbox, no journal, no timeout by systemd)."""
    if backend.choose(config) == backend.SYSTEMD:
        click.echo(
            f"run-job: {what} through systemd is not available yet in this version; use "
            "systemctl (start|stop|status) process-control-<job>.service, or set "
            "backend: direct in the global configuration",
            err=True,
        )
        sys.exit(2)


def _run(config: Config, slug: str, slow_start: bool) -> None:
    job = _load(config, slug)
    _direct_only(config, "--job")
    from . import direct

    sys.exit(direct.run_job(config, job, slow_start=slow_start, out=sys.stdout))


def _kill(config: Config, slug: str) -> None:
    job = _load(config, slug)
    _direct_only(config, "--kill-job")
    from . import direct

    code, message = direct.kill_job(config, job)
    click.echo(message, err=code != 0)
    sys.exit(code)


def _status(config: Config, only_running: bool, full: bool) -> None:
    """--list-jobs: one slug per line, as the original (broken files too,
    their problems on stderr); --status: the original's status format."""
    try:
        paths = job_files(config)
    except OSError as err:
        click.echo(f"run-job: {config.job_directory}: {err.strerror}", err=True)
        sys.exit(2)
    jobset = load_jobs(config, paths, listed=True)
    for problem in jobset.problems:
        click.echo(str(problem), err=True)
    by_slug = {j.slug: j for j in jobset.jobs}
    slugs = [os.path.basename(p)[: -len(".yaml")] for p in paths]
    if not (full or only_running):
        for slug in slugs:
            click.echo(slug)
        return
    _direct_only(config, "--status and --only-running")
    from . import direct

    lines = []
    for slug in slugs:
        job = by_slug.get(slug)
        state = direct.job_state(config, slug)
        if only_running and not state.running:
            continue
        pid = state.pid if state.running else None
        lines.append(Line(slug, job, pid, state.last_status))
    if full:
        click.echo(format_status(lines), nl=False)
    else:
        for line in lines:
            click.echo(line.slug)


def _validate(config: Config, paths: list[str] | None, strict: bool) -> None:
    report = validate(config, paths)
    for problem in report.errors + report.warnings:
        click.echo(str(problem))
    click.echo(report.summary(), err=True)
    sys.exit(1 if report.failed(strict) else 0)


def _reload(config: Config) -> None:
    from .systemd_bus import reload_and_apply

    jobset = load_jobs(config)
    for problem in jobset.problems:
        click.echo(f"{problem} (job skipped)", err=True)
    try:
        applied = reload_and_apply()
    except PcError as err:
        click.echo(f"run-job: {err}", err=True)
        sys.exit(2)
    for verb, names in (("started", applied.started), ("restarted", applied.restarted),
                        ("stopped", applied.stopped)):
        for name in names:
            click.echo(f"{verb} {name}")
    sys.exit(1 if jobset.problems else 0)


def _install(remove: bool) -> None:
    from . import install

    try:
        if remove:
            path = install.uninstall()
            click.echo(f"removed {path}" if path else "the generator was not installed")
        else:
            click.echo(f"installed {install.install()}")
    except OSError as err:
        click.echo(f"run-job: {err}", err=True)
        sys.exit(2)
    from .systemd_bus import reload_and_apply

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
