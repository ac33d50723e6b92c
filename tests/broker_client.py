"""A raw client of the broker's socket, run inside a box as a user
(tests/test_broker_systemd.py): what a developer at a shell could send.

    python3 broker_client.py send TEXT         one line (TEXT, then a newline)
    python3 broker_client.py raw HEX           these bytes, as they are
    python3 broker_client.py slow TEXT SECONDS TEXT without its newline, then wait
    python3 broker_client.py hold JOB SECONDS  a watch of JOB, kept open
    python3 broker_client.py flood N SECONDS   N connections at once, silent, kept open

Each prints the broker's answer lines (``send``, ``raw``, ``slow``), or
what happened (``flood``: how many connected).
"""

from __future__ import annotations

import json
import socket
import sys
import time

SOCKET = "/run/process-control-broker.sock"


def connect() -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(SOCKET)
    return sock


def answers(sock: socket.socket) -> str:
    sock.settimeout(30)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except OSError as err:
        data += f"<{type(err).__name__}>".encode()
    return data.decode(errors="replace")


def main(argv: list[str]) -> None:
    mode = argv[0]
    if mode == "flood":
        count, seconds = int(argv[1]), float(argv[2])
        held, failed = [], 0
        for _ in range(count):
            try:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(10)
                sock.connect(SOCKET)
                held.append(sock)
            except OSError:
                failed += 1
        print(f"opened {len(held)} failed {failed}", flush=True)
        time.sleep(seconds)
        for sock in held:
            sock.close()
        return
    sock = connect()
    if mode == "send":
        sock.sendall(argv[1].encode() + b"\n")
    elif mode == "raw":
        sock.sendall(bytes.fromhex(argv[1]))
    elif mode == "slow":
        sock.sendall(argv[1].encode())
        started = time.monotonic()
        text = answers(sock)
        print(f"after {time.monotonic() - started:.1f} s")
        print(text, end="")
        return
    elif mode == "hold":
        request = {"v": 1, "op": "watch", "job": argv[1], "slow_start": False}
        sock.sendall(json.dumps(request).encode() + b"\n")
        print(sock.recv(4096).decode(), end="", flush=True)
        time.sleep(float(argv[2]))
        return
    print(answers(sock), end="")


if __name__ == "__main__":
    main(sys.argv[1:])
