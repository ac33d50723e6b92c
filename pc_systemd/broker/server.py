"""One broker process: one connection, one request (``process-control-broker@.service``).

systemd accepts the connection (``Accept=yes``) and hands it over as
standard input; this process runs as ``process-control-broker``, which
polkit lets start, stop, reference and reset jobs' units, and nothing else.
It believes nothing the client says about itself:

- who asks is the kernel's answer (``SO_PEERCRED``), their groups NSS's
  (root, or a member of ``developer_group``);
- the request is one line of at most :data:`protocol.MAX_REQUEST` bytes,
  read within :data:`protocol.REQUEST_TIMEOUT` seconds, one of the
  operations of :mod:`.protocol`;
- a job is a valid file of the current job directory, loaded here (never a
  name of process-control's own units), and its unit is the one the
  generator made from that file (loaded, in the generator's directory, its
  ``SourcePath=`` that file);
- systemd is asked with job mode ``replace`` only (:mod:`..systemd.bus`).

Every request leaves one line in the journal (standard output): who, what,
the answer.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pc_systemd.model.config import Config, load_config
from pc_systemd.model.errors import PcError
from pc_systemd.model.job import RESERVED_SLUGS, SLUG, Job
from pc_systemd.systemd import broker_protocol as protocol
from pc_systemd.systemd.broker_protocol import ProtocolError, Request

if TYPE_CHECKING:  # D-Bus is imported once the caller is known
    from pc_systemd.systemd.bus import Systemd

GENERATOR_DIRS = ("/run/systemd/generator", "/run/systemd/generator.early",
                  "/run/systemd/generator.late")


class Refused(Exception):
    """The request is not done; the message is the one line the client gets."""


@dataclass(frozen=True)
class Peer:
    pid: int
    uid: int
    name: str

    @classmethod
    def of(cls, conn: socket.socket) -> Peer:
        raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, _gid = struct.unpack("3i", raw)
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = "?"
        return cls(pid, uid, name)

    def may(self, group: str) -> bool:
        """Root, or a member of ``group`` by the group database (NSS)."""
        if self.uid == 0:
            return True
        try:
            gid = grp.getgrnam(group).gr_gid
            entry = pwd.getpwuid(self.uid)
        except KeyError:
            return False
        return gid in os.getgrouplist(entry.pw_name, entry.pw_gid)


def read_request(conn: socket.socket, limit: int = protocol.MAX_REQUEST,
                 timeout: float = protocol.REQUEST_TIMEOUT) -> bytes:
    """The request line (without its newline), read within ``timeout``."""
    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            raise Refused(f"request not complete within {timeout:g} s")
        conn.settimeout(left)
        try:
            chunk = conn.recv(limit + 1 - len(data))
        except TimeoutError:
            raise Refused(f"request not complete within {timeout:g} s") from None
        if not chunk:
            # (none at all: a run-job that connected early, then found the job running)
            raise Refused("request ended before its newline" if data
                          else "no request: the client closed the connection")
        data += chunk
        if len(data) > limit and b"\n" not in data[:limit]:
            raise Refused(f"request longer than {limit} bytes")
    line, _newline, rest = data.partition(b"\n")
    if rest:
        raise Refused("one request per connection")
    return line


class Broker:
    """What is done for one request, over one connection."""

    def __init__(self, conn: socket.socket, peer: Peer, audit: Callable[[str], None]) -> None:
        self.conn = conn
        self.peer = peer
        self.audit = audit

    def send(self, **fields: object) -> None:
        self.conn.sendall(protocol.answer(**fields))

    def serve(self, config: Config, request: Request) -> str:
        """Carry out ``request``; the answer, for the audit line."""
        if not self.peer.may(config.developer_group):
            raise Refused(f"{request.op} needs root or membership in group "
                          f"{config.developer_group!r}")
        from pc_systemd.systemd.bus import systemd  # after the checks above (~20 ms)

        with systemd() as sd:
            target = Target(config, sd)
            if request.op in ("run", "watch"):
                return self._run(target, request)
            if request.op == "kill":
                return self._kill(target, request)
            return self._timers(target, request)

    def _run(self, target: Target, request: Request) -> str:
        from pc_systemd.systemd.runner import RunError, unit_of

        job = target.job(request.job)
        try:
            unit = unit_of(job, request.slow_start)
        except RunError as err:
            raise Refused(str(err)) from None
        path = target.unit(unit, job)
        target.sd.ref_unit(path)  # for as long as this connection lasts
        if request.op == "run":
            if job.retry is not None:
                target.sd.reset_failed(unit)
            target.sd.start_unit(unit)
        answer = f"{'started' if request.op == 'run' else 'referenced'} {unit}"
        try:
            self.send(ready=True)
        except OSError:
            self.audit(f"{answer} (the client is gone)")
            return ""
        self.audit(answer)
        self._hold(target, unit if request.op == "run" else None)
        return ""

    def _hold(self, target: Target, unit: str | None) -> None:
        """Keep the reference until the client closes; stop ``unit`` on its
        ``stop`` line (an interrupted run), once."""
        self.conn.settimeout(None)
        data = b""
        while True:
            try:
                chunk = self.conn.recv(len(protocol.STOP))
            except OSError:
                return
            if not chunk:
                return
            data += chunk
            if not protocol.STOP.startswith(data) or unit is None:
                return  # anything else ends the connection
            if data == protocol.STOP:
                target.sd.stop_unit(unit)
                self.audit(f"stopped {unit} (the run was interrupted)")
                unit = None
                data = b""

    def _kill(self, target: Target, request: Request) -> str:
        from pc_systemd.systemd import runner

        job = target.job(request.job)
        units = [runner.unit_of(job, False)]
        if job.slow_start_command is not None:
            units.append(runner.unit_of(job, True))
        for unit in units:
            target.unit(unit, job)
        lines: list[str] = []
        code = runner.stop(job, say=lines.append, direct=True)
        for line in lines:
            self.send(out=line)
        self.send(exit=code)
        return f"exit {code}: {'; '.join(lines)}"

    def _timers(self, target: Target, request: Request) -> str:
        """The timer half of ``disable-group``, ``enable-group`` and ``reset``:
        the hold files are the client's to write (the developer group's
        directory); what is done follows from what they say now."""
        from pc_systemd.model import holds
        from pc_systemd.model.jobinfo import Summary
        from pc_systemd.systemd.units import timer_name
        from pc_systemd.views.holding import Holds

        found = Holds.read(target.config)
        if request.op == "reset":
            jobs = [target.job(request.job)]
            start = True
        else:
            assert request.tag is not None
            try:
                disabled = holds.group_file(request.tag) in found.names
            except holds.HoldError as err:
                raise Refused(str(err)) from None
            start = request.op == "enable-group"
            if start == disabled:
                state = "still disabled" if disabled else "not disabled"
                raise Refused(f"group {request.tag} is {state}: no timer is changed")
            jobs = [job for job in target.jobs() if request.tag in job.tag]
        chosen = [job for job in jobs if Summary.of(job).scheduled
                  and not (start and found.reason(Summary.of(job)) is not None)]
        names = [(timer_name(job.slug), job) for job in chosen]
        for name, job in names:
            target.unit(name, job)
        done = []
        for name, _job in names:
            (target.sd.start_unit if start else target.sd.stop_unit)(name)
            line = f"{'started' if start else 'stopped'} {name}"
            self.send(out=line)
            done.append(line)
        self.send(exit=0)
        return "; ".join(done) or "no timer to change"


class Target:
    """The jobs and units a request may name, checked against the job
    directory and systemd."""

    def __init__(self, config: Config, sd: Systemd) -> None:
        self.config = config
        self.sd = sd

    def job(self, slug: str | None) -> Job:
        from pc_systemd.model.jobset import find_job

        if slug is None or not SLUG.match(slug):
            raise Refused("no such job: not a job name")
        if slug in RESERVED_SLUGS:
            raise Refused(f"{slug!r} is a name of process-control's own units, not a job")
        try:
            return find_job(self.config, slug)
        except PcError as err:
            raise Refused(str(err.problems[0])) from None

    def jobs(self) -> list[Job]:
        from pc_systemd.model.jobset import load_jobs

        return list(load_jobs(self.config).jobs)

    def unit(self, name: str, job: Job) -> bytes:
        """The unit's object path, if it is the generator's unit of ``job``."""
        from pc_systemd.systemd.bus import UNIT_IFACE

        path = self.sd.load_unit(name)
        load_state = self.sd.get(path, UNIT_IFACE, b"LoadState", b"s").decode()
        if load_state != "loaded":
            raise Refused(f"systemd has no unit {name} ({load_state}): run-job reload "
                          "generates the jobs' units")
        fragment = self.sd.get(path, UNIT_IFACE, b"FragmentPath", b"s").decode()
        source = self.sd.get(path, UNIT_IFACE, b"SourcePath", b"s").decode()
        if os.path.dirname(fragment) not in GENERATOR_DIRS or source != job.path:
            raise Refused(f"{name} is not the generated unit of {job.path} "
                          "(run-job reload generates it)")
        return path


def serve(conn: socket.socket, write: Callable[[str], None]) -> None:
    """One connection: its request, answered; the audit line written."""
    peer = Peer.of(conn)
    who = f"uid={peer.uid} user={peer.name} pid={peer.pid}"
    what = "request=?"

    def audit(answer: str) -> None:
        write(f"{who} {what}: {_one_line(answer)}")

    broker = Broker(conn, peer, audit)
    try:
        count = connections_of(peer.uid)
        if peer.uid != 0 and count is not None and count > PER_USER:
            raise Refused(f"more than {PER_USER} requests of uid {peer.uid} at once")
        line = read_request(conn)
        request = protocol.decode(line)
        what = request.describe()
        config = load_config(None)
        answer = broker.serve(config, request)
        if answer:
            audit(answer)
    except (Refused, ProtocolError) as err:
        _refuse(broker, audit, str(err))
    except PcError as err:
        _refuse(broker, audit, str(err.problems[0]))
    except Exception as err:
        from pc_systemd.systemd.bus import BusError

        if not isinstance(err, BusError):
            # one line to the client; the traceback to the journal
            _refuse(broker, audit, f"broker: internal error ({type(err).__name__}: see "
                                   "journalctl -t process-control-broker)")
            raise
        _refuse(broker, audit, str(err))


# systemd 252 applies MaxConnectionsPerSource= to IP sockets only: on this
# AF_UNIX socket one user could take every connection (MaxConnections=).
PER_USER = 16
CGROUP_ROOT = "/sys/fs/cgroup"


def connections_of(uid: int, own: str = "/proc/self/cgroup") -> int | None:
    """The broker's instances serving ``uid`` now, this one included: the
    control groups beside this process's own (systemd names each instance
    ``process-control-broker@N-PID-UID.service``); None where that cannot be
    read (no unified cgroup hierarchy)."""
    try:
        with open(own, encoding="utf-8") as handle:
            line = handle.read().splitlines()[-1]
        hierarchy, _sep, path = line.partition("::")
        if hierarchy != "0" or not path.startswith("/"):
            return None
        names = os.listdir(CGROUP_ROOT + os.path.dirname(path))
    except (OSError, IndexError):
        return None
    suffix = f"-{uid}.service"
    return sum(1 for name in names
               if name.startswith("process-control-broker@") and name.endswith(suffix))


def _refuse(broker: Broker, audit: Callable[[str], None], why: str) -> None:
    audit(f"refused: {why}")
    with contextlib.suppress(OSError):  # the client is gone: the audit line says it all
        broker.send(refused=why)
        _drain(broker.conn)


DRAIN_BYTES = 1 << 16
DRAIN_SECONDS = 0.5


def _drain(conn: socket.socket) -> None:
    """Read what the client still sends, a little: a socket closed with
    unread data resets the connection, and the client would lose the line."""
    conn.shutdown(socket.SHUT_WR)
    deadline = time.monotonic() + DRAIN_SECONDS
    left = DRAIN_BYTES
    while left > 0 and (timeout := deadline - time.monotonic()) > 0:
        conn.settimeout(timeout)
        chunk = conn.recv(min(left, 4096))
        if not chunk:
            return
        left -= len(chunk)


def _one_line(text: str) -> str:
    """Text for one journal line: control characters escaped."""
    if text.isprintable():
        return text
    return json.dumps(text)[1:-1]


def main() -> int:
    conn = socket.socket(fileno=0)  # StandardInput=socket: the accepted connection
    try:
        serve(conn, lambda line: print(line, flush=True))
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
