"""``sudo -u <service user> run-job``: what a developer may not ask for through sudo.

On cron hosts an operator may let a group run ``run-job`` as the service
user (``examples/sudoers.d/process-control``). sudo's ``env_reset`` drops
the caller's environment, but run-job's own options stay in the caller's
hands while the process has the service user's rights. So, when sudo made
this process another user than the one who ran it, everything that would
choose what that user runs or reads is refused, one line, exit 2:

- any configuration but ``/etc/process-control.yaml`` (``--config``,
  ``$PROCESS_CONTROL_CONFIG``): a configuration names the job directory,
  so another one would run the caller's own commands as the service user;
- ``$PROCESS_CONTROL_CACHE`` (a cache the caller chose) and click's
  completion variable (job names listed from a ``--config`` of the caller's);
- ``validate FILES`` (it would read files only the service user may read;
  validating runs nothing, so the caller runs it as themselves);
- ``reload``, ``install-generator``, ``uninstall-generator``: root's work;
- ``disable-group``, ``enable-group``: the service user may not write the
  hold directory (a job could lift its own hold): members run them as
  themselves;
- ``export kubernetes --output DIR``: it would write ``<slug>.yaml`` files as
  the service user where the caller says (over the run histories in
  ``state_directory``, named the same): the stream on stdout stays allowed.

Running, stopping, listing a job and reading its output are what the
sudoers rule is for, and stay allowed. Root running sudo, and whom sudo
made root, are trusted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from pc_systemd.cli.actions import die
from pc_systemd.model.config_file import DEFAULT_PATH, ENV_VAR

COMPLETE_VAR = "_RUN_JOB_COMPLETE"  # click's shell completion for prog_name run-job
ROOT_ONLY = ("reload", "install-generator", "uninstall-generator")
# The hold directory is the developer group's, never the service user's
# (a job could lift its own hold): members change it as themselves.
AS_YOURSELF = ("disable-group", "enable-group")


@dataclass(frozen=True)
class Request:
    """What one command line asks for, as far as sudo matters."""

    action: str  # the subcommand's name (the flags' actions are named the same)
    config_path: str | None  # --config, if given
    files: tuple[str, ...] = ()  # validate's FILES
    output: str | None = None  # export's --output DIR


def sudo_caller(environ: Mapping[str, str], euid: int) -> int | None:
    """The uid that ran sudo to become this process's (other, not root)
    user, or None.

    sudo sets ``SUDO_UID`` itself, so a member of the group cannot forge it
    through sudo; set by hand without sudo it only restricts its setter.
    Whom sudo made root, and root itself, may do anything anyway."""
    value = environ.get("SUDO_UID", "")
    if not value.isdigit() or euid == 0:
        return None
    caller = int(value)
    return None if caller in (euid, 0) else caller


def environment_refusal(environ: Mapping[str, str], euid: int) -> str | None:
    """Why this environment is refused through sudo, or None."""
    if sudo_caller(environ, euid) is None:
        return None
    chosen = environ.get(ENV_VAR)
    if chosen and chosen != DEFAULT_PATH:
        return f"through sudo only {DEFAULT_PATH} applies, not ${ENV_VAR}={chosen}"
    # here: only a process started by sudo pays for the cache module (~0.5 ms)
    from pc_systemd.model.file_cache import ENV_VAR as CACHE_VAR

    for name in (CACHE_VAR, COMPLETE_VAR):
        if name in environ:
            return f"through sudo ${name} is not taken"
    return None


def request_refusal(request: Request, environ: Mapping[str, str], euid: int) -> str | None:
    """Why this command line is refused through sudo, or None."""
    caller = sudo_caller(environ, euid)
    if caller is None:
        return None
    if request.action in ROOT_ONLY:
        return f"{request.action} is root's work, not run through sudo (by uid {caller})"
    if request.action in AS_YOURSELF:
        return (f"through sudo {request.action} cannot write the hold directory: "
                f"run `run-job {request.action}` as yourself, a member of the group")
    if request.config_path is not None and request.config_path != DEFAULT_PATH:
        return f"through sudo only {DEFAULT_PATH} applies, not --config {request.config_path}"
    if request.output is not None:
        return (f"through sudo {request.action} writes no files (--output): run it as "
                "yourself, or take its output on stdout")
    if request.files:
        return ("through sudo validate takes no FILES: it runs nothing, "
                "so run `run-job validate FILES` as yourself")
    return environment_refusal(environ, euid)


def enforce(refusal: str | None) -> None:
    """One line and exit 2 for a refusal."""
    if refusal is not None:
        die(refusal)


def check_environment() -> None:
    """Before click reads anything (completion answers before any command)."""
    enforce(environment_refusal(os.environ, os.geteuid()))


def check_request(request: Request) -> None:
    enforce(request_refusal(request, os.environ, os.geteuid()))
