"""The D-Bus edge: everything that talks to systemd goes through here
(pystemd, imported lazily so that cron hosts never need it)."""

from __future__ import annotations

import importlib.machinery
import marshal
import os
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pc_systemd.core import fanout
from pc_systemd.model.errors import PcError, Problem

TIMERS = "process-control-*.timer"
PATHS = "process-control-*.path"
ACTIVE = ("active", "activating", "reloading")


class BusError(PcError):
    def __init__(self, message: str) -> None:
        super().__init__([Problem("systemd", 0, "d-bus", message)])

    def __str__(self) -> str:
        return self.problems[0].message


def _bare_pystemd() -> None:
    """Let ``pystemd.dbuslib`` load without pystemd's package ``__init__``.

    That ``__init__`` imports pystemd's object layer and, through it, lxml
    (~25 ms, a tenth of a whole ``run-job --status``), none of which this
    module uses: it calls systemd's methods through ``dbuslib`` directly.
    A bare package module with pystemd's search path stands in for it, so
    ``pystemd.dbuslib`` and ``pystemd.dbusexc`` still load from pystemd's
    own files.  Where pystemd is missing, or already imported, nothing
    changes.
    """
    if "pystemd" in sys.modules:
        return
    spec = importlib.machinery.PathFinder.find_spec("pystemd")
    if spec is None or not spec.submodule_search_locations:
        return  # not installed: the import below reports it
    package = types.ModuleType(
        "pystemd", "pystemd, without its __init__ (see pc_systemd.systemd.bus)"
    )
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    sys.modules["pystemd"] = package


def _reason(err: Exception) -> str:
    text = str(err)
    lowered = text.lower()
    code = getattr(err, "errno", None)
    # Without a polkit rule allowing it, systemd answers a non-root caller
    # "Interactive authentication required" (or AccessDenied without polkit).
    if code in (-1, -13) or any(
        word in lowered
        for word in ("accessdenied", "access denied", "interactive authentication",
                     "permission denied")
    ):
        return "permission denied by systemd (run as root, or as a member of developer_group)"
    if code in (-2, -111) or "No such file or directory" in text or "Connection refused" in text:
        return "cannot reach systemd over D-Bus (is this host running systemd?)"
    return text


@dataclass(frozen=True)
class Applied:
    started: tuple[str, ...]
    stopped: tuple[str, ...]


def reload_and_apply() -> Applied:
    """daemon-reload (regenerates the units), then make the running timers
    match what the generator wants: new ones started, stale ones (removed,
    disabled or held jobs) stopped.

    A running timer is never restarted: daemon-reload alone moves its next
    elapse to a changed schedule, and a restarted timer fires at once when
    one of its times passed since it last started (systemd 252, issues
    #30510 and #31231): every deploy would add a run."""
    with systemd() as sd:
        sd.reload()
        wanted = {
            unit
            for target in ("timers.target", "paths.target")
            for unit in sd.wants(target)
            if unit.startswith("process-control-")
        }
        present = {row.name: row.active_state for row in sd.list_units(TIMERS, PATHS)}
        started, stopped = [], []
        for name in sorted(wanted):
            if present.get(name) not in ACTIVE:
                sd.start_unit(name)
                started.append(name)
        for name, state in sorted(present.items()):
            if name in wanted:
                continue
            if state in ACTIVE:
                sd.stop_unit(name)
                stopped.append(name)
            elif state == "failed":
                # A removed job's timer: systemd 252 fails a running timer
                # whose service vanished at the daemon-reload ("Unit to
                # trigger vanished"); forgotten, it leaves no failed unit
                # (and no degraded system) behind.
                sd.reset_failed(name)
                stopped.append(name)
        return Applied(tuple(started), tuple(stopped))


# -- lean calls for run-job's run, kill, status and logs ---------------------------
#
# pystemd's Unit and Manager objects introspect each D-Bus object (an extra
# round trip and an XML parse) before the first call; run-job --status reads
# a few properties of a thousand units, so it calls systemd's documented
# methods and properties directly instead.

SYSTEMD = b"org.freedesktop.systemd1"
MANAGER_PATH = b"/org/freedesktop/systemd1"
MANAGER = b"org.freedesktop.systemd1.Manager"
PROPERTIES = b"org.freedesktop.DBus.Properties"
UNIT_IFACE = b"org.freedesktop.systemd1.Unit"
SERVICE_IFACE = b"org.freedesktop.systemd1.Service"
TIMER_IFACE = b"org.freedesktop.systemd1.Timer"
# systemd's own socket, for root only: no bus broker in between, so each
# call costs about a third of one through the system bus.
PRIVATE_SOCKET = "/run/systemd/private"


@dataclass(frozen=True)
class UnitRow:
    """One row of ListUnitsByPatterns: a unit systemd has loaded."""

    name: str
    load_state: str
    active_state: str
    sub_state: str
    path: bytes  # the unit's D-Bus object path


class Systemd:
    """systemd's manager over one connection (see :func:`systemd`)."""

    def __init__(self, bus: Any) -> None:
        self._bus = bus

    def _call(self, method: bytes, signature: bytes, *args: Any) -> Any:
        from pystemd.dbuslib import apply_signature  # pystemd: never on cron hosts

        call_args = apply_signature(signature, list(args)) if signature else []
        return self._bus.call_method(SYSTEMD, MANAGER_PATH, MANAGER, method, call_args).body

    def list_units(self, *patterns: str) -> list[UnitRow]:
        rows = self._call(b"ListUnitsByPatterns", b"asas", [], [p.encode() for p in patterns])
        return [
            UnitRow(r[0].decode(), r[2].decode(), r[3].decode(), r[4].decode(), r[6])
            for r in rows
        ]

    def load_unit(self, name: str) -> bytes:
        """The unit's object path; loads its file if systemd has not yet."""
        path: bytes = self._call(b"LoadUnit", b"s", name.encode())
        return path

    def get(self, path: bytes, interface: bytes, name: bytes, signature: bytes) -> Any:
        return self._bus.get_property(SYSTEMD, path, interface, name, signature)

    def unit_properties(self, path: bytes, interface: bytes) -> dict[str, Any]:
        """Every property of one interface of a unit, in one round trip."""
        from pystemd.dbuslib import apply_signature  # pystemd: never on cron hosts

        body = self._bus.call_method(
            SYSTEMD, path, PROPERTIES, b"GetAll", apply_signature(b"s", [interface])
        ).body
        return {key.decode(): value for key, value in body.items()}

    def ref_unit(self, path: bytes) -> None:
        """Keep systemd from forgetting the unit (and its result) while this
        connection lasts: an unreferenced unit that ran successfully is
        unloaded at once. Needs the system bus (a sender to track)."""
        self._bus.call_method(SYSTEMD, path, UNIT_IFACE, b"Ref", [])

    def reload(self) -> None:
        """daemon-reload; returns once systemd has reloaded (generators run)."""
        self._call(b"Reload", b"")

    def wants(self, target: str) -> list[str]:
        path = self.load_unit(target)
        return [w.decode() for w in self.get(path, UNIT_IFACE, b"Wants", b"as")]

    def start_unit(self, name: str) -> bytes:
        job: bytes = self._call(b"StartUnit", b"ss", name.encode(), b"replace")
        return job

    def reset_failed(self, name: str) -> None:
        """Forget the unit's failure and the starts its start limit counted."""
        self._call(b"ResetFailedUnit", b"s", name.encode())

    def stop_unit(self, name: str) -> bytes:
        job: bytes = self._call(b"StopUnit", b"ss", name.encode(), b"replace")
        return job


@contextmanager
def systemd(private: bool = False) -> Iterator[Systemd]:
    """A :class:`Systemd` on the system bus, or with ``private`` for root on
    systemd's private socket (faster, but no ``ref_unit``); D-Bus errors
    leave as :class:`BusError` with a one-line reason."""
    _bare_pystemd()
    try:  # here, not at the top: cron hosts have no pystemd
        from pystemd.dbusexc import DBusBaseError as DBusError
        from pystemd.dbuslib import DBus, DBusAddress
    except ImportError:
        raise BusError(
            "pystemd is not installed (install the package with its [systemd] extra)"
        ) from None
    bus: Any = None
    if private and os.geteuid() == 0 and os.path.exists(PRIVATE_SOCKET):
        bus = DBusAddress(f"unix:path={PRIVATE_SOCKET}".encode(), peer_to_peer=True)
        try:
            bus.open()
        except DBusError:
            bus = None  # e.g. in a container that sees the socket but not its systemd
    try:
        if bus is None:
            bus = DBus()
            bus.open()
        try:
            yield Systemd(bus)
        finally:
            bus.close()
    except DBusError as err:
        raise BusError(_reason(err)) from None


Request = tuple[bytes, bytes, bytes, bytes]  # object path, interface, property, signature
CONNECTIONS = 3  # concurrent connections for get_many
PER_CONNECTION = 150  # fewer reads than this per connection are not worth a fork


def _plain(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def get_many(requests: list[Request], private: bool = True) -> list[Any]:
    """The values of many properties (strings as ``str``), read over several
    connections at once.

    systemd answers one property read in ~45 us of CPU, but a single
    connection waits ~150 us per read (each round trip is a pair of
    wake-ups); three connections in forked processes keep systemd busy and
    read a thousand properties in under half the time. D-Bus errors leave
    as :class:`BusError`.
    """
    if not requests:
        return []
    count = max(1, min(CONNECTIONS, len(requests) // PER_CONNECTION))
    parts = fanout.shares(requests, count)

    def work(part: list[Request]) -> bytes:
        with systemd(private) as sd:
            return marshal.dumps([_plain(sd.get(*request)) for request in part])

    values: list[Any] = []
    for blob in fanout.run(parts, work):
        if blob is None:
            raise BusError("reading unit properties failed in a helper process")
        values.extend(marshal.loads(blob))
    return values
