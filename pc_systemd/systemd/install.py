"""Installing the generator where systemd looks for generators."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pc_systemd.systemd.presence import GENERATOR_DIR, NAME

MARKER = "# installed by run-job --install-generator"
CHECKOUT_GENERATOR = Path(__file__).resolve().parent.parent / "generators" / NAME
# Where the Debian package installs the generator, for its own python3.
PACKAGED_GENERATOR = "/usr/lib/systemd/system-generators/" + NAME
DEBIAN_PACKAGES = "/usr/lib/python3/dist-packages/"


def wrapper_text(python: str = sys.executable) -> str:
    """A two-line shell wrapper: systemd runs generators with a bare
    environment, so it names the Python that has this package installed."""
    if CHECKOUT_GENERATOR.exists():
        target = f"'{python}' -I -S '{CHECKOUT_GENERATOR}'"
    else:
        target = f"'{python}' -I -m pc_systemd.systemd.generator"
    return f"#!/bin/sh\n{MARKER}; do not edit.\nexec {target} \"$@\"\n"


def packaged() -> bool:
    """Whether this is the Debian package, whose generator is installed."""
    return str(Path(__file__).resolve()).startswith(DEBIAN_PACKAGES) and os.path.exists(
        PACKAGED_GENERATOR
    )


def install(directory: str = GENERATOR_DIR) -> str:
    """Install the wrapper; returns the generator's path (the package's
    own, untouched, when this is the Debian package: a wrapper in /etc
    would only shadow it)."""
    if packaged():
        return PACKAGED_GENERATOR
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, NAME)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(wrapper_text())
    os.chmod(tmp, 0o755)
    os.replace(tmp, path)
    return path


def uninstall(directory: str = GENERATOR_DIR) -> str | None:
    """Remove the generator if it is ours; returns the removed path."""
    path = os.path.join(directory, NAME)
    try:
        with open(path, encoding="utf-8") as handle:
            if MARKER not in handle.read(4096):
                raise OSError(f"{path} was not installed by run-job; leaving it alone")
    except FileNotFoundError:
        return None
    os.unlink(path)
    return path
