"""Which way run-job runs jobs on this host."""

from __future__ import annotations

import os

from pc_systemd.model.config import Config

SYSTEMD = "systemd"
DIRECT = "direct"


def booted_with_systemd() -> bool:
    # sd_booted(3): systemd creates this directory when it is PID 1.
    return os.path.isdir("/run/systemd/system")


def choose(config: Config) -> str:
    if config.backend != "auto":
        return config.backend
    return SYSTEMD if booted_with_systemd() else DIRECT
