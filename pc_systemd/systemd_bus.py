"""The D-Bus edge: everything that talks to systemd goes through here
(pystemd, imported lazily so that cron hosts never need it)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .errors import PcError, Problem

TIMERS = b"process-control-*.timer"
PATHS = b"process-control-*.path"


class BusError(PcError):
    def __init__(self, message: str) -> None:
        super().__init__([Problem("systemd", 0, "d-bus", message)])

    def __str__(self) -> str:
        return self.problems[0].message


@dataclass(frozen=True)
class Bus:
    """One system-bus connection and systemd's manager object on it."""

    bus: Any
    manager: Any

    def unit(self, name: str) -> Any:
        from pystemd.systemd1 import Unit

        return Unit(name.encode(), bus=self.bus, _autoload=True)


@contextmanager
def connect() -> Iterator[Bus]:
    try:
        from pystemd.dbuslib import DBus, DBusError
        from pystemd.systemd1 import Manager
    except ImportError:
        raise BusError(
            "pystemd is not installed (install the package with its [systemd] extra)"
        ) from None
    try:
        with DBus() as bus:
            yield Bus(bus, Manager(bus=bus, _autoload=True).Manager)
    except DBusError as err:
        raise BusError(_reason(err)) from None


def _reason(err: Exception) -> str:
    text = str(err)
    if "AccessDenied" in text or "Access denied" in text or "interactive authentication" in text:
        return "permission denied by systemd (run as root)"
    if "No such file or directory" in text or "Connection refused" in text:
        return "cannot reach systemd over D-Bus (is this host running systemd?)"
    return text


def _names(units: list[Any]) -> dict[str, str]:
    """name -> active state, from ListUnitsByPatterns rows."""
    return {row[0].decode(): row[3].decode() for row in units}


@dataclass(frozen=True)
class Applied:
    started: tuple[str, ...]
    restarted: tuple[str, ...]
    stopped: tuple[str, ...]


def _wants(bus: Bus, target: str) -> set[str]:
    return {w.decode() for w in bus.unit(target).Unit.Wants}


def reload_and_apply() -> Applied:
    """daemon-reload (regenerates the units), then make the running timers
    match what the generator wants: new ones started, changed ones
    restarted (so their next elapse is recomputed), stale ones stopped."""
    with connect() as bus:
        mgr = bus.manager
        mgr.Reload()
        wanted = {
            u
            for u in _wants(bus, "timers.target") | _wants(bus, "paths.target")
            if u.startswith("process-control-")
        }
        present = _names(mgr.ListUnitsByPatterns([], [TIMERS, PATHS]))
        started, restarted, stopped = [], [], []
        for name in sorted(wanted):
            if present.get(name) == "active":
                mgr.RestartUnit(name.encode(), b"replace")
                restarted.append(name)
            else:
                mgr.StartUnit(name.encode(), b"replace")
                started.append(name)
        for name, state in sorted(present.items()):
            if name not in wanted and state in ("active", "activating", "reloading"):
                mgr.StopUnit(name.encode(), b"replace")
                stopped.append(name)
        return Applied(tuple(started), tuple(restarted), tuple(stopped))
