"""Whether systemd runs this host's jobs: systemd is the init system and our
generator is where systemd looks for generators. Then timers run every
scheduled job, and a cron file of ours would run each one a second time.

The os module only: ``cron-generate`` asks this first, on cron hosts too.
"""

from __future__ import annotations

import os

NAME = "process-control-generator"
GENERATOR_DIR = "/etc/systemd/system-generators"  # where run-job --install-generator writes
# Where systemd looks for system generators (systemd.generator(7)).
GENERATOR_DIRS = (GENERATOR_DIR, "/run/systemd/system-generators",
                  "/usr/local/lib/systemd/system-generators",
                  "/usr/lib/systemd/system-generators", "/lib/systemd/system-generators")
# What sd_booted(3) checks: systemd runs as the init system.
SYSTEMD_RUNS = "/run/systemd/system"
# Where the original's cron-generate writes by default.
DEFAULT_CRONTAB = "/etc/cron.d/process-control"


def installed() -> str | None:
    """Where our generator is installed for systemd to run it, or None."""
    for directory in GENERATOR_DIRS:
        path = os.path.join(directory, NAME)
        if os.path.exists(path):
            return path
    return None


def systemd_runs() -> bool:
    """Whether systemd is this host's init system (as sd_booted(3))."""
    return os.path.isdir(SYSTEMD_RUNS)


def timers_run_jobs() -> bool:
    return systemd_runs() and installed() is not None


def cron_files(output_crontab: str, default: str = DEFAULT_CRONTAB) -> list[str]:
    """The cron files of ours a host where timers run the jobs must not keep
    active: the default one, and ``output_crontab`` unless it is the console."""
    paths = [default]
    if output_crontab != "console" and output_crontab not in paths:
        paths.append(output_crontab)
    return paths
