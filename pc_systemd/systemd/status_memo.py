"""What systemd said about a unit, remembered between ``run-job --status``
calls while it cannot have changed.

A host with a thousand jobs has a thousand timers and a thousand services,
and each property is a D-Bus round trip (~0.1 ms apiece).  Some of what
systemd says only changes when something else that is cheaper to see
changes too, so a value is reused while its *evidence* is the same and the
unit is in the same state as when it was read:

- a timer's next elapse: evidence is the timer's generated unit file
  (:func:`.file_cache.identity`; every daemon-reload writes new ones, and a
  new schedule needs one), and the value must still be in the future by
  :data:`MARGIN_USEC`: systemd's value for a calendar timer is the first
  calendar time after its activation or last trigger, so it cannot change
  before then;
- when an inactive service's last run ended: evidence is when that run
  started (``InactiveExitTimestamp``, read anyway, one property instead
  of two).  Running units are always asked.

The host's time zone (``/etc/localtime``) is part of the context: a new
one forgets everything.  Stored with :mod:`pc_systemd.model.file_cache`, whose trust and
settling rules apply.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from pc_systemd.model import file_cache
from pc_systemd.systemd import units

KIND = "status-memo"
MARGIN_USEC = 1_000_000
LOCALTIME = "/etc/localtime"
# Where systemd has its generators write: the job units as generated.
GENERATED = "/run/systemd/generator"
PREFIX = units.PREFIX
SLOW = units.SLOW_START


class Remembered(NamedTuple):
    """What systemd said of a unit (the result of its memo entry), stored as
    a plain tuple: the unit's state then, and the values read."""

    state: str
    values: tuple[Any, ...]


def unit_slug(unit: str) -> str:
    """The job of one of its units; unambiguous with dotted slugs because
    none ends in '.slow-start' (:data:`pc_systemd.model.job.SLUG`)."""
    base = unit[len(PREFIX):]
    return base.removesuffix(SLOW) if base.endswith(SLOW) else base.rpartition(".")[0]


class StatusMemo:
    """``get`` what was remembered, ``put`` what was read, then ``save``."""

    def __init__(self, generated: str) -> None:
        self._generated = generated
        zone = (file_cache.identity(LOCALTIME), _target(LOCALTIME))
        self._store = file_cache.Cache(KIND, extra=(generated, zone))
        loaded = self._store.load()
        _data, self._entries = loaded if loaded is not None else (None, {})
        self._evidence: dict[str, Any] = {}
        self._kept: file_cache.Entries = {}
        self._new = False

    def evidence(self, unit: str, given: Any = None) -> Any:
        """A timer's: its unit file's identity, taken before asking systemd
        (a change after that makes the remembered value stale, never the
        evidence). A service's: ``given``, what systemd said first."""
        if unit not in self._evidence:
            if unit.endswith(".timer"):
                self._evidence[unit] = file_cache.identity(os.path.join(self._generated, unit))
            else:
                self._evidence[unit] = given
        return self._evidence[unit]

    def get(self, unit: str, state: str, given: Any = None) -> list[Any] | None:
        ident = self.evidence(unit, given)
        entry = self._entries.get(unit)
        if ident is None or entry is None:
            return None
        evidence, kept = entry
        if evidence != ident:
            return None
        remembered = Remembered._make(kept)
        if remembered.state != state:
            return None
        values: list[Any] = list(remembered.values)
        if unit.endswith(".timer") and not values[0] > time.time_ns() // 1000 + MARGIN_USEC:
            return None
        self._kept[unit] = entry
        return values

    def put(self, unit: str, state: str, values: list[Any], given: Any = None) -> None:
        ident = self.evidence(unit, given)
        if ident is not None:
            self._kept[unit] = (ident, tuple(Remembered(state, tuple(values))))
            self._new = True

    def save(self) -> None:
        """Keep what was used or read now (if anything new was read)."""
        if self._new:
            self._store.save(None, self._kept)


def _target(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def generated_restarts(directory: str = GENERATED) -> Callable[[str], bool]:
    """Whether a job's unit, as the generator wrote it, has ``Restart=``
    (the job has ``retry``: see :mod:`pc_systemd.systemd.journal`); each
    unit file read once."""
    known: dict[str, bool] = {}

    def restarts(unit: str) -> bool:
        if unit not in known:
            try:
                with open(os.path.join(directory, unit), encoding="utf-8") as handle:
                    known[unit] = "\nRestart=on-failure\n" in handle.read(1 << 20)
            except (OSError, ValueError):
                known[unit] = False
        return known[unit]

    return restarts
