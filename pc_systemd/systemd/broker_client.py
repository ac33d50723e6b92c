"""``run-job``'s side of the broker: a member's requests (see :mod:`.protocol`).

Root talks to systemd itself; everyone else asks the broker, and reads
systemd's state over D-Bus (which everyone may) and the jobs' journal.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from typing import Any

from pc_systemd.systemd import broker_protocol as protocol
from pc_systemd.systemd.broker_protocol import Request
from pc_systemd.systemd.bus import BusError


class BrokerError(BusError):
    """The broker refused, or cannot be reached: one line."""


def wanted() -> bool:
    """Whether this process asks the broker (everyone but root)."""
    return os.geteuid() != 0


class Connection:
    """One request to the broker, and its answers."""

    def __init__(self, request: Request | None = None, path: str = protocol.SOCKET) -> None:
        """Connect (systemd starts the broker's process); with ``request``,
        send it too."""
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            self.sock.connect(path)
        except OSError as err:
            self.sock.close()
            raise BrokerError(_unreachable(path, err)) from None
        self._reader = self.sock.makefile("rb")
        if request is not None:
            self.send(request)

    def send(self, request: Request) -> None:
        """Send the request (once; the broker then answers)."""
        try:
            self.sock.sendall(request.encode())
        except OSError as err:
            self.close()
            raise BrokerError(_unreachable(self.path, err)) from None

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._reader.close()
        self.sock.close()

    def answers(self) -> Iterator[dict[str, Any]]:
        """Each answer; a refusal raises :class:`BrokerError`."""
        while True:
            try:
                line = self._reader.readline(protocol.MAX_ANSWER)
            except OSError as err:
                raise BrokerError(f"the broker: {err.strerror or err}") from None
            if not line:
                raise BrokerError("the broker closed the connection without an answer "
                                  "(see journalctl -u 'process-control-broker@*')")
            try:
                fields = json.loads(line)
            except ValueError:
                raise BrokerError("the broker's answer is not one JSON line") from None
            if not isinstance(fields, dict):
                raise BrokerError("the broker's answer is not one JSON object")
            if "refused" in fields:
                raise BrokerError(str(fields["refused"]))
            yield fields

    def ready(self) -> None:
        """Wait for ``ready``: the unit is referenced (and started)."""
        for fields in self.answers():
            if fields.get("ready") is True:
                return

    def stop(self) -> None:
        """Ask that the run be stopped (an interrupt of ``run``)."""
        # the broker gone: so is its reference; the unit runs on
        with contextlib.suppress(OSError):
            self.sock.sendall(protocol.STOP)

    def result(self) -> tuple[list[tuple[bool, str]], int]:
        """The lines (``True``: for stderr) and the exit status of a
        request that ends."""
        lines: list[tuple[bool, str]] = []
        for fields in self.answers():
            if "exit" in fields:
                return lines, int(fields["exit"])
            if "out" in fields:
                lines.append((False, str(fields["out"])))
            elif "err" in fields:
                lines.append((True, str(fields["err"])))
        raise AssertionError("unreachable: answers() ends by raising")


def ask(request: Request) -> tuple[list[tuple[bool, str]], int]:
    """A request that ends (``kill``, the timers of the holds): its lines and exit status."""
    with Connection(request) as conn:
        return conn.result()


def _unreachable(path: str, err: OSError) -> str:
    if isinstance(err, PermissionError):
        return (f"{path}: permission denied: the broker serves root and the developer "
                "group only")
    return (f"cannot reach the broker at {path} ({err.strerror or err}): is "
            "process-control-broker.socket running?")
