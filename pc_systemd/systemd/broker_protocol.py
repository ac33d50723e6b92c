"""The broker's request and answer format, version 1: one JSON object per line.

A request is one line of at most :data:`MAX_REQUEST` bytes::

    {"v": 1, "op": "run", "job": "SLUG", "slow_start": false}
    {"v": 1, "op": "watch", "job": "SLUG", "slow_start": false}
    {"v": 1, "op": "kill", "job": "SLUG"}
    {"v": 1, "op": "disable-group", "tag": "TAG"}
    {"v": 1, "op": "enable-group", "tag": "TAG"}
    {"v": 1, "op": "reset", "job": "SLUG"}

Every key is required and no other is taken. The answers are lines too:
``{"refused": TEXT}`` (the one line of a refusal, the last),
``{"out": TEXT}`` and ``{"err": TEXT}`` (lines for run-job's stdout and
stderr), ``{"exit": N}`` (the last), and for ``run`` and ``watch``
``{"ready": true}``: the unit is referenced (and started) for as long as
the client keeps the connection open; the client may then send the line
``stop`` once (an interrupted ``run``), and closes the connection when it
has read the unit's end.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

VERSION = 1
SOCKET = "/run/process-control-broker.sock"
MAX_REQUEST = 4096  # bytes of the request line, its newline included
REQUEST_TIMEOUT = 5.0  # seconds for the whole request line to arrive
MAX_ANSWER = 1 << 20  # bytes of one answer line the client reads
STOP = b"stop\n"
MAX_TAG = 255

# op -> its keys besides "v" and "op", each with its type
_FIELDS: dict[str, dict[str, type]] = {
    "run": {"job": str, "slow_start": bool},
    "watch": {"job": str, "slow_start": bool},
    "kill": {"job": str},
    "disable-group": {"tag": str},
    "enable-group": {"tag": str},
    "reset": {"job": str},
}
OPS = tuple(_FIELDS)


class ProtocolError(Exception):
    """A request that is not one of the above; the message is one line."""


@dataclass(frozen=True)
class Request:
    op: str
    job: str | None = None
    tag: str | None = None
    slow_start: bool = False

    def encode(self) -> bytes:
        fields = {"v": VERSION, "op": self.op}
        for key in _FIELDS[self.op]:
            fields[key] = getattr(self, key)
        line = json.dumps(fields, ensure_ascii=True).encode() + b"\n"
        if len(line) > MAX_REQUEST:
            raise ProtocolError(f"request longer than {MAX_REQUEST} bytes")
        return line

    def describe(self) -> str:
        """The request as the audit line names it."""
        if self.tag is not None:
            return f"{self.op} tag={json.dumps(self.tag)}"
        slow = " slow_start" if self.slow_start else ""
        return f"{self.op} job={json.dumps(self.job)}{slow}"


def decode(line: bytes) -> Request:
    """The request of one line (without or with its newline)."""
    try:
        fields = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # ([[[... nested too deep)
        raise ProtocolError("malformed request: not one JSON object") from None
    if not isinstance(fields, dict):
        raise ProtocolError("malformed request: not one JSON object")
    if fields.get("v") != VERSION or type(fields.get("v")) is not int:
        raise ProtocolError(f"unsupported request version (this broker speaks {VERSION})")
    op = fields.get("op")
    if not isinstance(op, str) or op not in _FIELDS:
        raise ProtocolError(f"unknown operation (one of {', '.join(OPS)})")
    wanted = _FIELDS[op]
    if set(fields) != {"v", "op", *wanted}:
        raise ProtocolError(f"malformed request: {op} takes {', '.join(wanted)}")
    for key, kind in wanted.items():
        if type(fields[key]) is not kind:
            raise ProtocolError(f"malformed request: {key} is not a {kind.__name__}")
    tag = fields.get("tag")
    if tag is not None and not 0 < len(tag) <= MAX_TAG:
        raise ProtocolError(f"malformed request: a tag has 1 to {MAX_TAG} characters")
    return Request(op, fields.get("job"), tag, fields.get("slow_start", False))


def answer(**fields: object) -> bytes:
    """One answer line."""
    return json.dumps(fields, ensure_ascii=True).encode() + b"\n"
