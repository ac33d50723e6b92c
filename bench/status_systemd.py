"""Time ``run-job --status`` over 1,000 generated jobs on a real systemd.

    python bench/status_systemd.py [JOBS] [RUNS]

Boots the test container (tests/systemd_box.py; needs root), writes JOBS
(default 1,000) realistic job files with bench/make_jobs.py, installs the
generator (so every scheduled job has an active timer), and times the
whole command, process start included, inside the container: with
hyperfine when it is installed, else with time.perf_counter around each
run. One untimed run first warms the page cache and the summary cache, as
on a host where someone looked at the status before. Target: <= 300 ms.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.systemd_box import SystemdBox  # noqa: E402

VENV = Path(sys.prefix)
RUN_JOB = str(VENV / "bin" / "run-job")
BASE = "/var/lib/pc-bench"
TARGET_MS = 300.0

TIMER = """\
import json, subprocess, sys, time
runs, argv = int(sys.argv[1]), sys.argv[2:]
times = []
for _ in range(runs):
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
    times.append(time.perf_counter() - start)
print(json.dumps(times))
"""


def main(argv: list[str]) -> int:
    jobs = int(argv[0]) if argv else 1000
    runs = int(argv[1]) if len(argv) > 1 else 20
    binds = [HERE.parent] if VENV.is_relative_to(HERE.parent) else [HERE.parent, VENV]
    with SystemdBox(binds_ro=binds) as box:
        box.run([sys.executable, str(HERE / "make_jobs.py"), BASE, str(jobs)])
        box.run(["cp", f"{BASE}/config.yaml", "/etc/process-control.yaml"])
        box.run([RUN_JOB, "--install-generator"], timeout=300)
        timers = box.run(["systemctl", "list-units", "--no-legend", "--plain",
                          "process-control-job*.timer"]).stdout.count(".timer")
        command = [RUN_JOB, "--status"]
        listing = box.run(command).stdout  # warm-up, and a look at what is timed
        shown = listing.count(" - Benchmark job ")
        hyperfine = box.run(["sh", "-c", "command -v hyperfine"], check=False).stdout.strip()
        if hyperfine:
            box.run([hyperfine, "--shell=none", "--warmup", "3", "--runs", str(runs),
                     "--export-json", "/run/pc-bench.json", shlex.join(command)], timeout=600)
            data = json.loads(box.run(["cat", "/run/pc-bench.json"]).stdout)
            times = data["results"][0]["times"]
            how = f"hyperfine --shell=none --warmup 3 --runs {runs} '{shlex.join(command)}'"
        else:
            out = box.run([sys.executable, "-c", TIMER, str(runs), *command], timeout=600)
            times = json.loads(out.stdout)
            how = f"time.perf_counter around {runs} runs of {shlex.join(command)}"
    ms = sorted(t * 1000 for t in times)
    mean = sum(ms) / len(ms)
    print(f"jobs: {jobs} ({timers} active timers, {shown} jobs shown)")
    print(f"command (inside the container): {how}")
    print(f"run-job --status: min {ms[0]:.0f} ms, median {ms[len(ms) // 2]:.0f} ms, "
          f"mean {mean:.0f} ms, max {ms[-1]:.0f} ms over {len(ms)} runs "
          f"(target <= {TARGET_MS:.0f} ms)")
    return 0 if ms[len(ms) // 2] <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
