"""Time a member's ``run-job run`` of a ``/bin/true`` job (through the broker)
against root's (to systemd directly), on a real systemd with the package.

    python bench/broker_run.py [RUNS] [DEB]

Builds the Debian package from a clone of HEAD (or takes DEB), boots the
test container (tests/systemd_box.py; needs root), installs the package as
an operator does, adds a member of the developer group and a job running
``/bin/true``, and times the whole command, process start included, inside
the container: RUNS (default 30) of each, root's and the member's runs
alternated, after 3 untimed runs each. Also timed: the broker's own round
trip (connect, request, the broker's checks, systemd's ``Ref``, answer),
as a member's ``watch`` request. Prints the medians. Target: the broker
adds at most 150 ms.

Note: a member's run also waits 0.3 s more than root's at its end, as it
did before the broker: ``journalctl --sync`` needs root, so run-job gives
journald a moment instead (pc_systemd.systemd.journal.Follower.finish).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.conftest import BUILD_ENV, install_package  # noqa: E402
from tests.systemd_box import SystemdBox  # noqa: E402

TARGET_MS = 150.0
TIMER = """\
import json, socket, subprocess, sys, time
runs = int(sys.argv[1])
as_dev = ["setpriv", "--reuid=dev", "--regid=dev", "--init-groups"]
run = ["run-job", "run", "true"]
def once(argv):
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start
for _ in range(3):
    once(run), once(as_dev + run)
root, dev = [], []
for _ in range(runs):
    root.append(once(run))
    dev.append(once(as_dev + run))
print(json.dumps({"root": root, "member": dev}))
"""
ROUND_TRIP = """\
import json, socket, sys, time
times = []
for _ in range(int(sys.argv[1]) + 3):
    start = time.perf_counter()
    sock = socket.socket(socket.AF_UNIX)
    sock.connect("/run/process-control-broker.sock")
    sock.sendall(b'{"v": 1, "op": "watch", "job": "true", "slow_start": false}\\n')
    answer = sock.makefile("rb").readline()
    times.append(time.perf_counter() - start)
    sock.close()
    assert b"ready" in answer, answer
print(json.dumps(times[3:]))
"""


def build() -> Path:
    top = Path(tempfile.mkdtemp(prefix="pc-bench-deb-"))
    src = top / "process-control"
    subprocess.run(["git", "clone", "--quiet", str(HERE.parent), str(src)], check=True)
    subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src, env=BUILD_ENV,
                   check=True, capture_output=True, timeout=600)
    (deb,) = top.glob("process-control_*_all.deb")
    return deb


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} ms"


def main(argv: list[str]) -> int:
    runs = int(argv[0]) if argv else 30
    deb = Path(argv[1]) if len(argv) > 1 else build()
    with SystemdBox() as box:
        install_package(box, deb, {"true": "name: True\ncommand: /bin/true\n"})
        box.run(["useradd", "--create-home", "--groups", "process-control-dev", "dev"])
        box.write_file("/usr/local/lib/bench_timer.py", TIMER)
        box.write_file("/usr/local/lib/bench_round_trip.py", ROUND_TRIP)
        done = box.run(["python3", "/usr/local/lib/bench_timer.py", str(runs)],
                       timeout=60 + runs * 20)
        times = json.loads(done.stdout)
        trip = json.loads(box.run(["python3", "/usr/local/lib/bench_round_trip.py", str(runs)],
                                  user="dev", timeout=60 + runs * 5).stdout)
    root, member = times["root"], times["member"]
    added = statistics.median(member) - statistics.median(root)
    print(f"run-job run true, {runs} runs each, alternated:")
    print(f"  root (systemd directly):      median {ms(root)} (min {ms([min(root)])})")
    print(f"  member (through the broker):  median {ms(member)} (min {ms([min(member)])})")
    print(f"  difference of the medians:    {added * 1000:.0f} ms "
          "(of which 300 ms: a member's wait for journald, as before the broker)")
    print(f"  the broker's round trip (watch): median {ms(trip)} (min {ms([min(trip)])}); "
          f"target <= {TARGET_MS:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
