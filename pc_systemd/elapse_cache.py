"""Timers' next elapse, remembered between ``run-job --status`` calls.

A host with a thousand scheduled jobs has a thousand active timers, and
their next elapse is a D-Bus read each (~0.1 ms of round trip apiece,
over half of ``--status``).  systemd's value for a calendar timer does not
change until the timer elapses: it is the first calendar time after the
timer's last trigger or activation, and a restart in between finds the
same one.  So the value systemd gave is reused while

- it is still in the future (by :data:`MARGIN_USEC`),
- the timer's unit file in the generator's directory is the same file
  (every daemon-reload writes new ones, and a changed schedule needs one),
- the host's time zone (``/etc/localtime``) is the same,

and is read again from systemd otherwise.  Stored with :mod:`.file_cache`
(its trust rules apply), under the timer's name.
"""

from __future__ import annotations

import os
import time

from . import file_cache

KIND = "next-elapse"
MARGIN_USEC = 1_000_000
LOCALTIME = "/etc/localtime"


class ElapseCache:
    def __init__(self, directory: str, timers: list[str]) -> None:
        zone = (file_cache.identity(LOCALTIME), _target(LOCALTIME))
        self._store = file_cache.Cache(KIND, extra=(directory, zone))
        loaded = self._store.load()
        entries = loaded[1] if loaded is not None else {}
        # identities first: a reload after this makes them stale, never the values
        self._identities = {t: file_cache.identity(os.path.join(directory, t)) for t in timers}
        now = time.time_ns() // 1000 + MARGIN_USEC
        self.known: dict[str, int] = {}
        for timer, ident in self._identities.items():
            entry = entries.get(timer)
            if ident is not None and entry is not None and entry[0] == ident and entry[1] > now:
                self.known[timer] = int(entry[1])

    def save(self, read: dict[str, int]) -> None:
        """Remember the values read (with those still known), if any were read."""
        if not read:
            return
        values = {**self.known, **{t: v for t, v in read.items() if v}}
        self._store.save(None, {
            timer: (ident, value) for timer, value in values.items()
            if (ident := self._identities.get(timer)) is not None
        })


def _target(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None
