"""What the benches that boot the test container share: a box
(tests/systemd_box.py; needs root) in which this checkout and its
virtualenv are visible, a service user, the built-in configuration for
that user, and the generator installed from the checkout with the given
job files.

A bench script puts the checkout on ``sys.path`` and imports this::

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.box import RUN_JOB, USER, generated  # noqa: E402
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.systemd_box import SystemdBox

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(sys.prefix)
RUN_JOB = str(VENV / "bin" / "run-job")
JOBS = "/var/lib/process-control"
USER = "pcbench"


@contextmanager
def generated(jobs: Mapping[str, str], config: str = "",
              install_timeout: float = 300) -> Iterator[SystemdBox]:
    """A booted box with the service user ``USER``, ``/etc/process-control.yaml``
    (``user``, ``job_directory`` and ``config``), the job files ``jobs``
    (slug: text) and the generator installed (their units loaded)."""
    binds = [ROOT] if VENV.is_relative_to(ROOT) else [ROOT, VENV]
    with SystemdBox(binds_ro=binds) as box:
        box.run(["useradd", "--create-home", USER])
        box.write_file("/etc/process-control.yaml",
                       f"user: {USER}\njob_directory: {JOBS}\n{config}")
        for slug, text in jobs.items():
            box.write_file(f"{JOBS}/{slug}.yaml", text)
        box.run([RUN_JOB, "--install-generator"], timeout=install_timeout)
        yield box


# Run inside the box: each unit started once a round with ``systemctl
# start`` (which waits for the oneshot to finish), each pair of rounds in a
# new random order and then in reverse (ABBA), so that no unit gains from
# its place while the machine's load changes; 0.15 s after each start for
# systemd's clean-up of the unit (its private /tmp, its control group),
# which would otherwise be timed with the next start. Wall time until
# ``systemctl start`` returns, and the CPU time the whole container used
# meanwhile (its cgroup's cpu.stat: less disturbed by other processes).
TIMER = r"""
import json, random, subprocess, sys, time
def cpu():
    with open("/sys/fs/cgroup/cpu.stat") as f:  # the container's own cgroup
        return int(f.readline().split()[1])
rounds, units = int(sys.argv[1]), sys.argv[2:]
PAUSE = 0.15
shuffle = random.Random(26).shuffle
wall = {u: [] for u in units}
used = {u: [] for u in units}
for u in units:  # warm-up
    subprocess.run(["systemctl", "start", u], check=True)
order = list(units)
for r in range(rounds):
    if r % 2 == 0:
        shuffle(order)  # a new order for each pair of rounds: no unit keeps a place
    for u in (order if r % 2 == 0 else order[::-1]):
        c, t = cpu(), time.perf_counter()
        subprocess.run(["systemctl", "start", u], check=True)
        wall[u].append(time.perf_counter() - t)
        used[u].append((cpu() - c) / 1e6)
        time.sleep(PAUSE)  # the unit's clean-up, after systemctl returned
json.dump([wall, used], sys.stdout)
"""


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2



@dataclass(frozen=True)
class Timed:
    units: dict[str, str]  # label -> unit name
    wall_ms: dict[str, float]  # label -> median wall time of a start
    cpu_ms: dict[str, float]  # label -> median CPU time of a start
    header: str  # rounds, units, load average before and after


def time_starts(box: SystemdBox, texts: Mapping[str, str], rounds: int) -> Timed:
    """Write each unit text (by label) as ``pc-bench-N.service`` and time
    its starts (:data:`TIMER`)."""
    units = {}
    for number, (label, text) in enumerate(texts.items()):
        units[label] = f"pc-bench-{number}.service"
        box.write_file(f"/etc/systemd/system/{units[label]}", text + "\n")
    box.systemctl("daemon-reload")
    before = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    wall, used = json.loads(box.run(["python3", "-c", TIMER, str(rounds), *units.values()],
                                    timeout=3600).stdout)
    after = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return Timed(units, {label: median(wall[u]) * 1000 for label, u in units.items()},
                 {label: median(used[u]) * 1000 for label, u in units.items()},
                 f"{rounds} rounds of {len(units)} units, ABBA; "
                 f"load average before {before}, after {after}")
