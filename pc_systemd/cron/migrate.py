"""Take the cron file out of service where timers run the jobs.

On a systemd host every scheduled job has a timer; a cron file written by
``cron-generate`` (the original's, or ours) would run each job a second
time.  The Debian package's maintainer scripts run
``python3 -m pc_systemd.cron.migrate``: on install and upgrade on a systemd host,
and on removal everywhere (the file would call a ``run-job`` that is gone).
The file is renamed, never deleted: a name with a dot is one that cron
ignores (``/etc/cron.d`` follows run-parts' naming rule), and the
administrator finds it beside the original with a note in the log.
"""

from __future__ import annotations

import argparse
import os
import sys
import syslog
import time

from pc_systemd.model.config import load_config
from pc_systemd.systemd import presence

DEFAULT = presence.DEFAULT_CRONTAB
SUFFIX = ".disabled"
IDENT = "process-control"
TIMERS_RUN_THEM = "systemd timers run these jobs now (run-job --status lists them)"


def generated_by_cron_generate(text: str) -> bool:
    """Whether a cron file is cron-generate's: it names jobs by
    ``--job SLUG`` or says it skipped one (``# Skipping ... job``)."""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# Skipping ") and " job " in stripped:
            return True
        if stripped and not stripped.startswith("#") and " --job " in f" {stripped} ":
            return True
    return False


def candidates(config_path: str | None) -> list[str]:
    """The default cron file and the configured ``output_crontab``."""
    try:
        output = load_config(config_path).output_crontab
    except Exception as err:  # an invalid configuration still gets the default checked
        note(f"cannot read the configuration ({_one_line(err)}); checking {DEFAULT} only")
        output = DEFAULT
    return cron_files(output)


def cron_files(output_crontab: str) -> list[str]:
    """The default cron file, and ``output_crontab`` unless it is the console."""
    return presence.cron_files(output_crontab, DEFAULT)


def take_out_of_service(path: str, reason: str) -> str | None:
    """Rename a cron-generate file so cron no longer reads it; returns the
    new name, or None when there was nothing to do."""
    if path == "/etc/crontab":
        note(f"{path}: cron-generate output in the system crontab: remove its "
             f"process-control lines by hand ({reason})")
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read(1 << 22)
    except FileNotFoundError:
        return None
    except OSError as err:
        note(f"{path}: {err.strerror}; left as it is")
        return None
    if not generated_by_cron_generate(text):
        return None
    target = path + SUFFIX
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1, 1000):
        if not os.path.lexists(target):
            break
        # an earlier copy is kept: a second move in the same second gets a number
        target = f"{path}{SUFFIX}-{stamp}" + (f"-{n}" if n > 1 else "")
    try:
        os.rename(path, target)
    except FileNotFoundError:
        return None  # moved aside meanwhile (the reload path unit and a run-job reload)
    note(f"moved {path} to {target}: {reason}")
    return target


def note(message: str) -> None:
    """To the maintainer script's output and to the log (the journal)."""
    print(f"{IDENT}: {message}", file=sys.stderr)
    syslog.openlog(IDENT, 0, syslog.LOG_DAEMON)
    syslog.syslog(syslog.LOG_NOTICE, message)


def _one_line(err: Exception) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m pc_systemd.cron.migrate",
        description="Rename the cron file written by cron-generate so that cron no "
        "longer runs the jobs (systemd timers run them, or the package is removed).",
    )
    parser.add_argument("--config", metavar="PATH", help="global configuration file")
    parser.add_argument("--removed", action="store_true",
                        help="the package is being removed (the reason in the note)")
    args = parser.parse_args(argv)
    reason = ("process-control is being removed, its run-job with it" if args.removed
              else TIMERS_RUN_THEM)
    for path in candidates(args.config):
        try:
            take_out_of_service(path, reason)
        except OSError as err:
            note(f"{path}: cannot rename it: {err.strerror}; cron still runs it")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
