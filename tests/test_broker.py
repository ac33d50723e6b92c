"""The broker's own logic: its request format, the bounded read of a request,
who asks (SO_PEERCRED), and the one-line refusals with their audit lines.
What it does with systemd and polkit: tests/test_broker_systemd.py."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pc_systemd.broker import server
from pc_systemd.broker.server import Peer, Refused, read_request, serve
from pc_systemd.systemd import broker_protocol as protocol
from pc_systemd.systemd.broker_protocol import ProtocolError, Request


@pytest.mark.parametrize("request_", [
    Request("run", job="hello"), Request("run", job="hello", slow_start=True),
    Request("watch", job="a.b-c_d"), Request("kill", job="x"),
    Request("disable-group", tag="nightly"), Request("enable-group", tag="ü %/.."),
    Request("reset", job="x"),
])
def test_requests_go_through_one_line_and_back(request_: Request) -> None:
    line = request_.encode()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert protocol.decode(line) == request_


@pytest.mark.parametrize(("line", "why"), [
    (b"run hello", "not one JSON object"),
    (b"\xff\xfe", "not one JSON object"),
    (b'["run", "hello"]', "not one JSON object"),
    (b"[" * 4000 + b"]" * 4000, "not one JSON object"),
    (b'{"op": "run", "job": "x", "slow_start": false}', "unsupported request version"),
    (b'{"v": true, "op": "run", "job": "x", "slow_start": false}', "unsupported request"),
    (b'{"v": 2, "op": "run", "job": "x", "slow_start": false}', "unsupported request"),
    (b'{"v": 1, "op": "restart", "job": "x"}', "unknown operation"),
    (b'{"v": 1, "op": "start", "unit": "other.service"}', "unknown operation"),
    (b'{"v": 1, "op": "run", "job": "x"}', "run takes job, slow_start"),
    (b'{"v": 1, "op": "run", "job": "x", "slow_start": false, "mode": "flush"}',
     "run takes job, slow_start"),
    (b'{"v": 1, "op": "kill", "job": 7}', "job is not a str"),
    (b'{"v": 1, "op": "run", "job": "x", "slow_start": 1}', "slow_start is not a bool"),
    (b'{"v": 1, "op": "enable-group", "tag": ""}', "a tag has 1 to 255 characters"),
    (b'{"v": 1, "op": "enable-group", "tag": "' + b"t" * 256 + b'"}', "1 to 255"),
])
def test_anything_else_is_refused_in_one_line(line: bytes, why: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        protocol.decode(line)
    assert why in str(caught.value) and "\n" not in str(caught.value)


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    server, client = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    yield server, client
    server.close()
    client.close()


def test_a_request_is_read_to_its_newline(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    client.sendall(b'{"v": 1')
    threading.Timer(0.1, client.sendall, [b', "op": "kill", "job": "x"}\n']).start()
    assert read_request(server, timeout=5) == b'{"v": 1, "op": "kill", "job": "x"}'


@pytest.mark.parametrize("size", [protocol.MAX_REQUEST, protocol.MAX_REQUEST + 10, 1 << 20])
def test_an_oversized_request_is_refused(pair: tuple[socket.socket, socket.socket],
                                         size: int) -> None:
    server, client = pair
    # (the newline just past the limit, or later, or never: each as long)
    def send() -> None:
        with contextlib.suppress(OSError):  # refused before the end: the broker closes
            client.sendall(b"x" * size + b"\n")

    threading.Thread(target=send, daemon=True).start()
    with pytest.raises(Refused, match=f"longer than {protocol.MAX_REQUEST} bytes"):
        read_request(server)


def test_a_request_at_the_limit_is_read(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    client.sendall(b"x" * (protocol.MAX_REQUEST - 1) + b"\n")
    assert read_request(server) == b"x" * (protocol.MAX_REQUEST - 1)


def test_a_slow_request_is_dropped_at_its_deadline(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    server, client = pair
    stop = threading.Event()

    def trickle() -> None:  # one byte at a time: each read returns, the whole never ends
        while not stop.wait(0.05):
            client.sendall(b" ")

    threading.Thread(target=trickle, daemon=True).start()
    started = time.monotonic()
    try:
        with pytest.raises(Refused, match=r"not complete within 0\.5 s"):
            read_request(server, timeout=0.5)
    finally:
        stop.set()
    assert time.monotonic() - started < 3


def test_an_unfinished_or_second_request_is_refused(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    server, client = pair
    client.sendall(b'{"v": 1}\n{"v": 1}\n')
    with pytest.raises(Refused, match="one request per connection"):
        read_request(server)
    client.sendall(b'{"v": 1')
    client.shutdown(socket.SHUT_WR)
    with pytest.raises(Refused, match="ended before its newline"):
        read_request(server)


def test_the_caller_is_the_kernels_answer(pair: tuple[socket.socket, socket.socket]) -> None:
    server, _client = pair
    peer = Peer.of(server)
    assert (peer.pid, peer.uid) == (os.getpid(), os.getuid())
    assert peer.may("no-such-group-here") is (os.getuid() == 0)
    assert Peer(1, 65534, "nobody").may("no-such-group-here") is False
    assert Peer(1, 0, "root").may("no-such-group-here") is True


@pytest.mark.parametrize(("sent", "why"), [
    (b"GET / HTTP/1.0\n", "malformed request"),
    (b"x" * 5000 + b"\n", "request longer than 4096 bytes"),
    (b'{"v": 1, "op": "start", "job": "x"}\n', "unknown operation"),
])
def test_a_refusal_is_one_line_back_and_one_audit_line(
    pair: tuple[socket.socket, socket.socket], sent: bytes, why: str,
) -> None:
    server, client = pair
    client.sendall(sent)
    audit: list[str] = []
    serve(server, audit.append)
    server.close()
    answer = client.makefile("rb").read()
    assert answer.count(b"\n") == 1
    assert why in json.loads(answer)["refused"]
    (line,) = audit
    assert line.startswith(f"uid={os.getuid()} user=") and f"pid={os.getpid()}" in line
    assert f"refused: {why}" in line


def test_the_audit_line_stays_one_line(pair: tuple[socket.socket, socket.socket],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    server, client = pair
    client.sendall(b'{"v": 1, "op": "enable-group", "tag": "a\\nforged line\\u001b[31m"}\n')
    audit: list[str] = []
    monkeypatch.setenv("PROCESS_CONTROL_CONFIG", "/nonexistent/process-control.yaml")
    serve(server, audit.append)
    (line,) = audit
    assert "\n" not in line and "\x1b" not in line
    assert 'enable-group tag="a\\nforged line\\u001b[31m"' in line


def test_a_users_requests_at_once_are_counted_from_the_control_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    slice_ = tmp_path / "system.slice" / "system-process\\x2dcontrol\\x2dbroker.slice"
    for name in ("process-control-broker@1-10-1001.service",
                 "process-control-broker@2-11-1001.service",
                 "process-control-broker@3-12-10010.service",
                 "process-control-broker@4-13-1002.service", "cgroup.procs"):
        (slice_ / name).mkdir(parents=True)
    own = tmp_path / "cgroup"
    own.write_text("0::/system.slice/system-process\\x2dcontrol\\x2dbroker.slice/"
                   "process-control-broker@1-10-1001.service\n")
    monkeypatch.setattr(server, "CGROUP_ROOT", str(tmp_path))
    assert server.connections_of(1001, str(own)) == 2
    assert server.connections_of(1002, str(own)) == 1
    assert server.connections_of(7, str(own)) == 0
    own.write_text("12:pids:/system.slice/x\n")  # no unified hierarchy: not counted
    assert server.connections_of(1001, str(own)) is None
    assert server.connections_of(1001, str(tmp_path / "missing")) is None
