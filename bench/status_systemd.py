"""Time ``run-job --status`` over 1,000 generated jobs on a real systemd.

    python bench/status_systemd.py [JOBS] [RUNS] [--ran]

Boots the test container (tests/systemd_box.py; needs root), writes JOBS
(default 1,000) realistic job files with bench/make_jobs.py, installs the
generator (so every scheduled job has an active timer), and times the
whole command, process start included, inside the container: with
hyperfine when it is installed, else with time.perf_counter around each
run. With --ran every job runs once first (a host after a day: each job
has a last run to show). Twice: "cached", after an untimed run that fills the caches of job
summaries and timers' next elapse (as on a host where someone looked at
the status before), and "cold", with those caches removed before each
run. Target: <= 300 ms.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.systemd_box import SystemdBox  # noqa: E402

VENV = Path(sys.prefix)
RUN_JOB = str(VENV / "bin" / "run-job")
BASE = "/var/lib/pc-bench"
TARGET_MS = 300.0
CACHE = "/var/cache/pc-systemd"

TIMER = """\
import json, subprocess, sys, time
runs, prepare, argv = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
times = []
for _ in range(runs):
    if prepare:
        subprocess.run(prepare, shell=True, check=True)
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
    times.append(time.perf_counter() - start)
print(json.dumps(times))
"""


def main(argv: list[str]) -> int:
    ran = "--ran" in argv
    argv = [a for a in argv if a != "--ran"]
    jobs = int(argv[0]) if argv else 1000
    runs = int(argv[1]) if len(argv) > 1 else 20
    # The checkout is read-only in the container: byte-compile it here, as
    # an installed package is (./dev.sh does it too).
    import subprocess

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(HERE.parent / "pc_systemd")],
                   check=True, stdout=subprocess.DEVNULL)
    binds = [HERE.parent] if VENV.is_relative_to(HERE.parent) else [HERE.parent, VENV]
    with SystemdBox(binds_ro=binds) as box:
        box.run([sys.executable, str(HERE / "make_jobs.py"), BASE, str(jobs)])
        box.run(["cp", f"{BASE}/config.yaml", "/etc/process-control.yaml"])
        box.run([RUN_JOB, "--install-generator"], timeout=300)
        timers = box.run(["systemctl", "list-units", "--no-legend", "--plain",
                          "process-control-job*.timer"]).stdout.count(".timer")
        if ran:
            run_every_job(box, jobs)
        command = [RUN_JOB, "--status"]
        time.sleep(2.5)  # the cache keeps no file younger than 2 s (file_cache.SETTLE_NS)
        listing = box.run(command).stdout  # warm-up, and a look at what is timed
        shown = listing.count(" - Benchmark job ")
        warm, how = timed(box, command, runs, None)
        # cold: no summary and no next-elapse cache (as the first --status
        # after an upgrade or a change of the global configuration)
        cold, _ = timed(box, command, runs, f"rm -rf {CACHE}")
    print(f"jobs: {jobs} ({timers} active timers, {shown} jobs shown"
          f"{', every job run once before' if ran else ', none has run yet'})")
    print(f"command (inside the container): {how}")
    for what, times in (("cached", warm), (f"cold (--prepare 'rm -rf {CACHE}')", cold)):
        ms = sorted(t * 1000 for t in times)
        print(f"run-job --status, {what}: min {ms[0]:.0f} ms, median {ms[len(ms) // 2]:.0f} ms, "
              f"mean {sum(ms) / len(ms):.0f} ms, max {ms[-1]:.0f} ms over {len(ms)} runs "
              f"(target <= {TARGET_MS:.0f} ms)")
    return 0 if sorted(warm)[len(warm) // 2] * 1000 <= TARGET_MS else 1


def run_every_job(box: SystemdBox, jobs: int) -> None:
    """--ran: every job runs once first (as on a host after a day), so each
    has a last run for --status to show. A hundred at a time: with a
    thousand runs queued at once systemd answered systemctl too late."""
    units = [f"process-control-job{n:04d}.service" for n in range(jobs)]
    for first in range(0, len(units), 100):
        box.run(["systemctl", "start", "--no-block", *units[first:first + 100]], timeout=300)
        wait_idle(box)


def wait_idle(box: SystemdBox) -> None:
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        busy = box.run(["systemctl", "list-units", "--no-legend", "--plain",
                        "--state=activating,deactivating", "process-control-*"]).stdout
        queued = box.run(["systemctl", "list-jobs", "--no-legend"]).stdout
        if not busy.strip() and not queued.strip():
            return
        time.sleep(1)
    raise TimeoutError("the jobs did not finish running")


def timed(box: SystemdBox, command: list[str], runs: int,
          prepare: str | None) -> tuple[list[float], str]:
    hyperfine = box.run(["sh", "-c", "command -v hyperfine"], check=False).stdout.strip()
    if hyperfine:
        extra = ["--prepare", prepare] if prepare else []
        box.run([hyperfine, "--shell=none", "--warmup", "3", "--runs", str(runs), *extra,
                 "--export-json", "/run/pc-bench.json", shlex.join(command)], timeout=600)
        data = json.loads(box.run(["cat", "/run/pc-bench.json"]).stdout)
        how = f"hyperfine --shell=none --warmup 3 --runs {runs} '{shlex.join(command)}'"
        return data["results"][0]["times"], how
    out = box.run([sys.executable, "-c", TIMER, str(runs), prepare or "", *command], timeout=600)
    return json.loads(out.stdout), f"time.perf_counter around {runs} runs of {shlex.join(command)}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
