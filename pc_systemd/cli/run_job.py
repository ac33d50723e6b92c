"""``run-job``: the subcommands as one click group, every flag of before kept as an alias."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import click
from click.shell_completion import CompletionItem

from pc_systemd.cli import actions, sudo
from pc_systemd.cli.actions import Session
from pc_systemd.cli.job_commands import COMMANDS, JOB_NAME

SLOW_START_FLAG = "\x00flag"  # -w given without a job name (the `-j NAME -w` form)
FLAGS_MODE = "run_job.flags"  # ctx.meta key: this command line uses the flags, not a subcommand


class Flag(click.Option):
    """An option of the flag-style command line (``run-job -j NAME``, ``run-job -s``):
    kept working, listed in the help apart from the group's own options."""


def complete_files_or_commands(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """FILES after --validate; otherwise the word is where a subcommand goes."""
    if ctx.params.get("do_validate"):
        return [CompletionItem(incomplete, type="file")]
    group = ctx.command
    assert isinstance(group, click.Group)
    return [CompletionItem(name) for name in group.list_commands(ctx)
            if name.startswith(incomplete)]


FILES = click.Argument(["files"], nargs=-1, type=click.Path(dir_okay=True),
                       shell_complete=complete_files_or_commands)


def synopsis(command: click.Command) -> str:
    """``logs NAME [--run N] [-w]``: a command's name, arguments and options
    (a group's: each of its commands', ``export kubernetes [--output DIR]``)."""
    if isinstance(command, click.Group):
        return " | ".join(f"{command.name} {synopsis(sub)}" for sub in command.commands.values())
    words = [command.name or ""]
    for param in command.params:
        name = param.metavar or (param.name or "").upper()
        if isinstance(param, click.Argument):
            words.append(f"[{name}]..." if param.nargs == -1 else name)
        elif isinstance(param, click.Option):
            option = min(param.opts, key=len)
            words.append(f"[{option}]" if param.is_flag else f"[{option} {name}]")
    return " ".join(words)


class RunJob(click.Group):
    """A group whose command line is either ``[--config PATH] COMMAND ...``
    or the flags (``-j NAME``, ``--validate [FILES]...``).

    Which one is decided before parsing: a subcommand's name where a
    subcommand goes (after --config only) means a subcommand; anything else
    is parsed as the one flat command of before, with its FILES anywhere
    and its usage line in errors, so every flag keeps its output."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if self._subcommand_first(args):
            return super().parse_args(ctx, args)
        ctx.meta[FLAGS_MODE] = True
        ctx.allow_interspersed_args = True
        return click.Command.parse_args(self, ctx, args)  # no subcommand: FILES take the rest

    def _subcommand_first(self, args: Sequence[str]) -> bool:
        at = 0
        while at < len(args) and (args[at] == "--config" or args[at].startswith("--config=")):
            at += 2 if args[at] == "--config" else 1
        return at < len(args) and args[at] in self.commands

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)
        return [*params, FILES] if ctx.meta.get(FLAGS_MODE) else params

    def get_usage(self, ctx: click.Context) -> str:
        if not ctx.meta.get(FLAGS_MODE):
            return super().get_usage(ctx)
        formatter = ctx.make_formatter()
        formatter.write_usage(ctx.command_path,
                              " ".join(click.Command.collect_usage_pieces(self, ctx)))
        return formatter.getvalue().rstrip("\n")

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        return [self.options_metavar or "", self.subcommand_metavar or ""]  # the help's usage

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # in the order they were added, not sorted

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Each command with its arguments and options: the man page, made
        from this help alone, then shows every form."""
        commands = [self.commands[name] for name in self.list_commands(ctx)]
        rows = [(synopsis(command), command.get_short_help_str(limit=50))
                for command in commands]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        params = self.get_params(ctx)
        options = [p for p in params if isinstance(p, click.Option)]
        own = [r for p in options if not isinstance(p, Flag) and (r := p.get_help_record(ctx))]
        flags = [r for p in options if isinstance(p, Flag) and (r := p.get_help_record(ctx))]
        with formatter.section("Options"):
            formatter.write_dl(own)
        self.format_commands(ctx, formatter)
        with formatter.section("Flags (as the commands)"):
            formatter.write_dl(flags)


@dataclass(frozen=True)
class Flags:
    """The flags of one command line (all of them, given or not)."""

    job: str | None
    slow_start: str | None
    scheduled: bool
    kill_job: str | None
    list_jobs: bool
    status: bool
    only_running: bool
    as_json: bool
    logs: str | None
    which_run: int
    next_job: str | None
    count: int
    do_validate: bool
    strict: bool
    do_reload: bool
    install_gen: bool
    uninstall_gen: bool
    tag: str | None
    disable_group: str | None
    enable_group: str | None
    reset: str | None
    raw: bool
    files: tuple[str, ...] = ()


@click.group(cls=RunJob, invoke_without_command=True, subcommand_metavar="[COMMAND] [ARGS]...",
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="PATH",
              help="Global configuration (default: $PROCESS_CONTROL_CONFIG, "
                   "/etc/process-control.yaml, else built-in defaults).")
@click.option("-j", "--job", cls=Flag, metavar="NAME", type=JOB_NAME, help="As 'run NAME'.")
@click.option("-w", "--slow-start", "slow_start", cls=Flag, metavar="[NAME]", type=JOB_NAME,
              is_flag=False, flag_value=SLOW_START_FLAG, default=None,
              help="As 'run NAME -w' (-j NAME -w, or --slow-start NAME); "
                   "with --logs: as 'logs NAME -w'.")
@click.option("--scheduled", cls=Flag, is_flag=True,
              help="With -j: as 'run NAME --scheduled' (what the cron file runs).")
@click.option("-k", "--kill-job", cls=Flag, metavar="NAME", type=JOB_NAME,
              help="As 'kill NAME'.")
@click.option("-l", "--list-jobs", cls=Flag, is_flag=True, help="As 'list'.")
@click.option("-s", "--status", cls=Flag, is_flag=True, help="As 'status'.")
@click.option("-r", "--only-running", cls=Flag, is_flag=True,
              help="With -l or -s: only running jobs.")
@click.option("--json", "as_json", cls=Flag, is_flag=True,
              help="With -l, -s or --next: one JSON document instead of text.")
@click.option("--logs", cls=Flag, metavar="NAME", type=JOB_NAME, help="As 'logs NAME'.")
@click.option("--run", "which_run", cls=Flag, metavar="N", type=int, default=-1,
              show_default=True,
              help="With --logs: which run; -1 the last, -2 the one before, 1 the oldest kept.")
@click.option("--next", "next_job", cls=Flag, metavar="NAME", type=JOB_NAME,
              help="As 'next NAME'.")
@click.option("--count", cls=Flag, metavar="N", type=click.IntRange(1, 1000), default=5,
              show_default=True, help="With --next: how many run times.")
@click.option("--validate", "do_validate", cls=Flag, is_flag=True,
              help="As 'validate' (the FILES anywhere on the line).")
@click.option("--strict", cls=Flag, is_flag=True, help="With --validate: warnings fail too.")
@click.option("--reload", "do_reload", cls=Flag, is_flag=True, help="As 'reload'.")
@click.option("--install-generator", "install_gen", cls=Flag, is_flag=True,
              help="As 'install-generator'.")
@click.option("--uninstall-generator", "uninstall_gen", cls=Flag, is_flag=True,
              help="As 'uninstall-generator'.")
@click.option("--tag", cls=Flag, metavar="TAG",
              help="With -l, -s or -k (no NAME): only jobs with this tag.")
@click.option("--disable-group", cls=Flag, metavar="TAG", help="As 'disable-group TAG'.")
@click.option("--enable-group", cls=Flag, metavar="TAG", help="As 'enable-group TAG'.")
@click.option("--reset", cls=Flag, metavar="NAME", type=JOB_NAME, help="As 'reset NAME'.")
@click.option("--raw", cls=Flag, is_flag=True,
              help="With -j or --logs: the job's output as it is (as 'run NAME --raw').")
@click.pass_context
def run_job(ctx: click.Context, /, config_path: str | None, **given: Any) -> None:
    """Run and inspect process-control jobs.

    Each action is a command; 'run-job COMMAND --help' shows its options.
    The flags of the original run-job, and of earlier versions of this one,
    keep working: each does what its command does, with the same output
    and exit status."""
    flags = Flags(**given)
    action = ctx.invoked_subcommand or flag_action(flags)
    # validate's FILES after the subcommand: checked by that command
    sudo.check_request(sudo.Request(action, config_path, flags.files))
    ctx.obj = Session(config_path)
    if ctx.invoked_subcommand is None:
        run_flags(ctx, ctx.obj, flags)


def flag_action(flags: Flags) -> str:
    """The command a flag-style command line stands for, where sudo cares
    (any other is named ``flags``)."""
    for name, given in (("validate", flags.do_validate), ("reload", flags.do_reload),
                        ("install-generator", flags.install_gen),
                        ("uninstall-generator", flags.uninstall_gen),
                        ("disable-group", flags.disable_group is not None),
                        ("enable-group", flags.enable_group is not None)):
        if given:
            return name
    return "flags"


def run_flags(ctx: click.Context, session: Session, flags: Flags) -> None:
    """The flag-style command line: which flags go together, then the action."""
    slow_flag = flags.slow_start == SLOW_START_FLAG
    chosen = [
        name for name, given in (
            ("--validate", flags.do_validate), ("--install-generator", flags.install_gen),
            ("--uninstall-generator", flags.uninstall_gen), ("--reload", flags.do_reload),
            ("-l/-s", flags.list_jobs or flags.status), ("--kill-job", flags.kill_job),
            ("--job", flags.job or (flags.slow_start and not slow_flag)),
            ("--logs", flags.logs), ("--next", flags.next_job),
            ("--disable-group", flags.disable_group), ("--enable-group", flags.enable_group),
            ("--reset", flags.reset),
        ) if given
    ]
    if len(chosen) > 1:
        raise click.UsageError(f"choose one action, not {' and '.join(chosen)}")
    if flags.files and not flags.do_validate:
        raise click.UsageError("FILES are only taken with --validate")
    if slow_flag and not (flags.job or flags.logs):
        raise click.UsageError("-w/--slow-start needs a job: -j NAME -w, or --slow-start NAME")
    if flags.scheduled and not flags.job:
        raise click.UsageError("--scheduled goes with -j/--job")
    if flags.only_running and not (flags.list_jobs or flags.status):
        raise click.UsageError("-r/--only-running goes with -l/--list-jobs or -s/--status")
    if flags.as_json and not (flags.list_jobs or flags.status or flags.next_job):
        raise click.UsageError("--json goes with -l/--list-jobs, -s/--status or --next")
    if flags.which_run != -1 and not flags.logs:
        raise click.UsageError("--run goes with --logs")
    if flags.count != 5 and not flags.next_job:
        raise click.UsageError("--count goes with --next")
    if flags.tag is not None and not (flags.list_jobs or flags.status or flags.kill_job):
        raise click.UsageError("--tag goes with -l/--list-jobs, -s/--status or -k/--kill-job")
    if flags.raw and not (flags.job or flags.slow_start or flags.logs):
        raise click.UsageError("--raw goes with -j/--job or --logs")
    if flags.do_validate:
        actions.validate(session, list(flags.files) or None, flags.strict)
    elif flags.install_gen or flags.uninstall_gen:
        actions.install(flags.uninstall_gen, session)
    elif flags.do_reload:
        actions.reload(session.config())
    elif flags.next_job:
        actions.show_next(session.config(), flags.next_job, flags.count, flags.as_json)
    elif flags.logs:
        actions.logs(session.config(), flags.logs, slow_flag, flags.which_run, raw=flags.raw)
    elif flags.list_jobs or flags.status:
        actions.show_jobs(session.config(), flags.only_running, full=flags.status,
                          as_json=flags.as_json, tag=flags.tag)
    elif flags.kill_job:
        actions.kill(session.config(), flags.kill_job, flags.tag)
    elif flags.disable_group is not None:
        actions.disable_group(session.config(), flags.disable_group)
    elif flags.enable_group is not None:
        actions.enable_group(session.config(), flags.enable_group)
    elif flags.reset:
        actions.reset(session.config(), flags.reset)
    elif flags.job or flags.slow_start:
        name = flags.job if flags.job else flags.slow_start
        assert name is not None
        # cron_form: the form of the cron lines: on cron hosts a held job's run is skipped
        actions.run(session.config(), name, slow_start=flags.slow_start is not None,
                    scheduled=flags.scheduled, cron_form=flags.job is not None, raw=flags.raw)
    else:
        click.echo(ctx.get_help())
        ctx.exit(2)


for command in COMMANDS:
    run_job.add_command(command)


def main() -> None:
    sudo.check_environment()
    run_job(prog_name="run-job")


if __name__ == "__main__":
    main()
