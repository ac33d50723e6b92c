"""The version of the systemd that runs here, without D-Bus.

The generator runs at every boot and may not use D-Bus, so the version
comes from the manager's own library: systemd's programs all link
``libsystemd-shared-NNN.so`` (NNN the version; some distributions add a
tag after it), and PID 1 has it mapped. ``/proc/1/maps`` names it for
the manager that runs, even after an upgrade that has not re-executed it
yet -- but only root may read it (the generator and ``run-job --reload``
are root). Anyone else gets the version of the installed library, which is
the running one except between an upgrade and the manager's re-execution
(Debian's systemd package re-executes it when it is upgraded).

Stdlib only (not even ``re``), and cheap (one read of a few kilobytes): the
generator calls it.
"""

from __future__ import annotations

import os

# RestartSteps= and RestartMaxDelaySec= (growing delays between restarts)
BACKOFF_SINCE = 254
# RestartMode=direct: a restart skips the failed state, so OnFailure= does not
# fire for an attempt that is retried (without it, systemd 257 fired it for
# every attempt: measured in tests/test_retry_systemd.py)
RESTART_MODE_SINCE = 254

MAPS = "/proc/1/maps"
NAME = "libsystemd-shared-"
# Debian 12 and 13 keep it in the multiarch directory; others in /usr/lib/systemd.
LIBRARY_DIRS = ("/usr/lib/systemd", "/usr/lib64/systemd")
MULTIARCH_PARENT = "/usr/lib"


def version_in(text: str) -> int | None:
    """The version in the first libsystemd-shared file name in ``text``
    (its digits after the name; a tag such as ``.4-1.fc40`` may follow)."""
    at = text.find("/" + NAME)
    if at < 0:
        return None
    rest = text[at + 1 + len(NAME):]
    digits = rest[:len(rest) - len(rest.lstrip("0123456789"))]
    return int(digits) if digits else None


def from_libraries(dirs: list[str]) -> int | None:
    """The newest version among the libsystemd-shared files in ``dirs``."""
    versions = []
    for directory in dirs:
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        versions += [v for n in names if n.startswith(NAME) and n.endswith(".so")
                     and (v := version_in("/" + n)) is not None]
    return max(versions) if versions else None


def library_dirs() -> list[str]:
    """Where systemd's shared library may be installed."""
    dirs = list(LIBRARY_DIRS)
    try:
        arches = os.listdir(MULTIARCH_PARENT)
    except OSError:
        arches = []
    dirs += [os.path.join(MULTIARCH_PARENT, a, "systemd") for a in arches if "-linux-" in a]
    return dirs


_found: list[int | None] = []  # manager()'s answer, once found (functools imports collections)


def manager() -> int | None:
    """systemd's version here (None: no systemd found); looked up once."""
    if not _found:
        _found.append(_look_up())
    return _found[0]


def forget() -> None:
    """Look the version up again at the next :func:`manager` (for tests)."""
    _found.clear()


def _look_up() -> int | None:
    try:
        with open(MAPS, encoding="utf-8", errors="replace") as maps:
            running = version_in(maps.read())
    except OSError:  # not root, or no /proc
        running = None
    if running is not None:
        return running
    return from_libraries(library_dirs())


def describe(version: int | None) -> str:
    """How messages name it: "systemd 252", or that none was found."""
    return f"systemd {version}" if version is not None else "this host (no systemd found)"
