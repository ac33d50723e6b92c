"""``run-job``'s subcommands: one click command per action, with its own options and help."""

from __future__ import annotations

import click
from click.shell_completion import CompletionItem

from pc_systemd.cli import actions, sudo
from pc_systemd.cli.actions import Session
from pc_systemd.model.config import load_config
from pc_systemd.model.config_file import slug_of, yaml_names
from pc_systemd.model.errors import PcError


class JobName(click.types.StringParamType):
    """A job's name (its file's slug), completed from the job directory.

    Taken as given: an unknown or malformed name is reported by the action
    itself (``path:1: job: ...``), as the original flags always did."""

    name = "name"

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        try:
            config = load_config(ctx.find_root().params.get("config_path"))
            names = sorted(slug_of(n) for n in yaml_names(config.job_directory))
        except (PcError, OSError):
            return []
        return [CompletionItem(name) for name in names if name.startswith(incomplete)]


JOB_NAME = JobName()

job_argument = click.argument("name", type=JOB_NAME)
only_running = click.option("-r", "--only-running", is_flag=True, help="Only running jobs.")
as_json = click.option("--json", "as_json", is_flag=True,
                       help="One JSON document instead of text.")
tag_option = click.option("--tag", metavar="TAG", help="Only jobs with this tag.")
raw_option = click.option(
    "--raw", is_flag=True,
    help="The job's output as it is, control characters included (on a terminal they are "
         "shown as \\xNN).")


@click.command("run")
@job_argument
@click.option("-w", "--slow-start", is_flag=True, help="Run its slow_start_command instead.")
@click.option("--scheduled", is_flag=True,
              help="A run cron started: on hosts without systemd, wait the job's "
                   "random_delay first (the cron file passes it).")
@raw_option
@click.pass_obj
def run_command(session: Session, name: str, slow_start: bool, scheduled: bool,
                raw: bool) -> None:
    """Run the job NAME now.

    Shows its output (or where it went) and exits with its status."""
    actions.run(session.config(), name, slow_start=slow_start, scheduled=scheduled, raw=raw)


@click.command("kill")
@click.argument("name", type=JOB_NAME, required=False)
@tag_option
@click.pass_obj
def kill_command(session: Session, name: str | None, tag: str | None) -> None:
    """Stop a running job (or every job with --tag).

    The whole process tree of the run of NAME, or of each running job
    tagged TAG; with both, NAME only if it has the tag."""
    actions.kill(session.config(), name, tag)


@click.command("list")
@only_running
@as_json
@tag_option
@click.pass_obj
def list_command(session: Session, only_running: bool, as_json: bool, tag: str | None) -> None:
    """List job names, one per line."""
    actions.show_jobs(session.config(), only_running, full=False, as_json=as_json, tag=tag)


@click.command("status")
@only_running
@as_json
@tag_option
@click.pass_obj
def status_command(session: Session, only_running: bool, as_json: bool,
                   tag: str | None) -> None:
    """Show every job: state, last run, next run.

    Which backend runs them goes to stderr."""
    actions.show_jobs(session.config(), only_running, full=True, as_json=as_json, tag=tag)


@click.command("logs")
@job_argument
@click.option("--run", "which_run", metavar="N", type=int, default=-1, show_default=True,
              help="Which run; -1 the last, -2 the one before, 1 the oldest kept.")
@click.option("-w", "--slow-start", is_flag=True, help="The slow-start runs.")
@click.option("-f", "--follow", is_flag=True,
              help="Follow the running run until it ends (exit status: its own).")
@raw_option
@click.pass_obj
def logs_command(session: Session, name: str, which_run: int, slow_start: bool,
                 follow: bool, raw: bool) -> None:
    """Show the output of the job's last run.

    Or of the running one, or with --run of an earlier one; with --follow,
    the running one's as it comes."""
    actions.logs(session.config(), name, slow_start, which_run, follow, raw)


@click.command("next")
@job_argument
@click.option("--count", metavar="N", type=click.IntRange(1, 1000), default=5,
              show_default=True, help="How many run times.")
@as_json
@click.pass_obj
def next_command(session: Session, name: str, count: int, as_json: bool) -> None:
    """Show when the job runs next.

    Also its schedule in words."""
    actions.show_next(session.config(), name, count, as_json)


@click.command("validate")
@click.option("--strict", is_flag=True, help="Warnings fail too.")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=True))
@click.pass_obj
def validate_command(session: Session, strict: bool, files: tuple[str, ...]) -> None:
    """Check the job directory, or the FILES given.

    One line per problem; non-zero exit status on problems."""
    sudo.check_request(sudo.Request("validate", session.config_path, files))
    actions.validate(session, list(files) or None, strict)


@click.command("schema")
@click.option("--strict", is_flag=True, help="Unknown keys fail too (else they only warn).")
def schema_command(strict: bool) -> None:
    """Print the JSON Schema of job files.

    For editors: they then check job files as they are typed."""
    from pc_systemd.model.job_schema import schema_text  # only this command pays for json

    click.echo(schema_text(strict), nl=False)


@click.command("reload")
@click.pass_obj
def reload_command(session: Session) -> None:
    """Apply the job directory now.

    Regenerates the units, starts new timers, reschedules changed ones,
    stops removed or disabled ones."""
    actions.reload(session.config())


@click.command("install-generator")
@click.pass_obj
def install_command(session: Session) -> None:
    """Install the systemd generator.

    Then applies the jobs: their timers are started."""
    actions.install(remove=False, session=session)


@click.command("uninstall-generator")
@click.pass_obj
def uninstall_command(session: Session) -> None:
    """Remove the systemd generator.

    Then stops the jobs' timers."""
    actions.install(remove=True, session=session)


@click.command("disable-group")
@click.argument("tag")
@click.pass_obj
def disable_group_command(session: Session, tag: str) -> None:
    """Stop scheduling every job tagged TAG.

    Their timers stop now and stay stopped (reload, reboot) until
    enable-group; jobs given the tag later are held too. Runs by hand work."""
    actions.disable_group(session.config(), tag)


@click.command("enable-group")
@click.argument("tag")
@click.pass_obj
def enable_group_command(session: Session, tag: str) -> None:
    """Schedule the jobs tagged TAG again.

    Their timers start, unless another group or a stop holds a job."""
    actions.enable_group(session.config(), tag)


@click.command("reset")
@job_argument
@click.pass_obj
def reset_command(session: Session, name: str) -> None:
    """Schedule NAME again after a stop on failures.

    stop_after_failures stopped it.
    Its timer starts (systemd); its failure count is reset (cron hosts)."""
    actions.reset(session.config(), name)


@click.group("export")
def export_group() -> None:
    """Export the jobs for another scheduler."""


@export_group.command("kubernetes")
@click.option("--output", metavar="DIR",
              type=click.Path(file_okay=False, dir_okay=True, exists=True, writable=True),
              help="Write <slug>.yaml files there instead of one stream on stdout.")
@click.pass_obj
def export_kubernetes_command(session: Session, output: str | None) -> None:
    """Print every scheduled job as Kubernetes CronJobs.

    batch/v1 CronJob objects, one YAML stream; what a job asks that
    Kubernetes cannot do is refused, one line each (nothing is exported);
    what has no meaning there is listed on stderr."""
    sudo.check_request(sudo.Request("export", session.config_path, output=output))
    actions.export_kubernetes(session.config(), output)


COMMANDS = (run_command, kill_command, list_command, status_command, logs_command,
            next_command, validate_command, schema_command, reload_command, install_command,
            uninstall_command, disable_group_command, enable_group_command, reset_command,
            export_group)
