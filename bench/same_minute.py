"""How late N jobs due at the same minute start, with each sandbox, on a
real systemd (issue #26). A benchmark, not a test: it asserts nothing.

    python bench/same_minute.py [N] [ORDER]

Boots the test container (tests/systemd_box.py; needs root) and installs
the generator with N jobs for each value of ``sandbox`` (false, true,
strict), each running ``date +%s.%N``: the job prints the time it really
started, after systemd set its sandbox up. ORDER (default ``tsffst``: t =
true, s = strict, f = false, so each sandbox has one early and one late
place) gives one minute to each letter, from the second whole minute
after the jobs are installed: each sandbox's jobs are scheduled in its
minutes only (``'M1,M2 * * * *'``), so the N timers of one sandbox fire
together and nothing else runs then. The timers are never stopped or
restarted: systemd 252 starts a restarted timer at once when one of its
times passed since it last ran (systemd issues #30510, #31231). A job's
start delay is the time it printed minus its minute. On a 2-core machine
with N=200 the whole run takes about eight minutes.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.systemd_box import SystemdBox  # noqa: E402

VENV = Path(sys.prefix)
RUN_JOB = str(VENV / "bin" / "run-job")
JOBS = "/var/lib/process-control"
USER = "pcbench"
SANDBOXES = {"t": "true", "s": "strict", "f": "false"}


def slug(sandbox: str, number: int) -> str:
    return f"sb-{sandbox}-{number:03d}"


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def printed_times(box: SystemdBox) -> dict[str, list[float]]:
    """Each job's printed start times, by slug, from the jobs' journal."""
    out = box.run(["journalctl", "--namespace=process-control", "-o", "json",
                   "--output-fields=MESSAGE,SYSLOG_IDENTIFIER", "--no-pager"],
                  timeout=120).stdout
    times: dict[str, list[float]] = {}
    for line in out.splitlines():
        entry = json.loads(line)
        ident, message = entry.get("SYSLOG_IDENTIFIER"), entry.get("MESSAGE")
        if isinstance(ident, str) and ident.startswith("sb-") and isinstance(message, str):
            times.setdefault(ident, []).append(float(message))
    return times


def main(argv: list[str]) -> int:
    n = int(argv[0]) if argv else 200
    order = argv[1] if len(argv) > 1 else "tsffst"
    binds = [HERE.parent] if VENV.is_relative_to(HERE.parent) else [HERE.parent, VENV]
    with SystemdBox(binds_ro=binds) as box:
        box.run(["useradd", "--create-home", USER])
        box.write_file("/etc/process-control.yaml", f"user: {USER}\njob_directory: {JOBS}\n")
        first = (time.time() // 60 + 2) * 60
        minutes = [first + 60 * i for i in range(len(order))]
        for letter, sandbox in SANDBOXES.items():
            mine = ",".join(str(int(m // 60 % 60)) for m, x in zip(minutes, order, strict=True)
                           if x == letter)
            for i in range(n if mine else 0):
                box.write_file(f"{JOBS}/{slug(sandbox, i)}.yaml",
                               f"name: {slug(sandbox, i)}\ncommand: /bin/date +%s.%N\n"
                               f"schedule: '{mine} * * * *'\nsandbox: {sandbox}\n")
        box.run([RUN_JOB, "--install-generator"], timeout=600)
        if time.time() > first - 5:
            print(f"installing took too long: {time.time() - first + 120:.0f} s")
            return 1
        version = box.run(["systemctl", "--version"]).stdout.split("\n")[0]
        loads = []
        for minute in minutes:
            time.sleep(max(0.0, minute + 58 - time.time()))
            loads.append(Path("/proc/loadavg").read_text().split()[:3])  # at the minute's end
        time.sleep(15)  # the last minute's stragglers
        runs = printed_times(box)
    trials = [(SANDBOXES[x], m, load) for x, m, load in zip(order, minutes, loads, strict=True)]
    print(f"{version}; {n} jobs per sandbox; one minute each, in this order: "
          f"{', '.join(s for s, _m, _l in trials)}")
    print("| sandbox | minute | load average at its end | runs | start delay: median | p90 "
          "| max |")
    print("|---|---|---|---|---|---|---|")
    pooled: dict[str, list[float]] = {}
    for sandbox, minute, load in trials:
        delays = [t - minute for i in range(n) for t in runs.get(slug(sandbox, i), [])
                  if minute <= t < minute + 60]
        pooled.setdefault(sandbox, []).extend(delays)
        stamp = time.strftime("%H:%M", time.gmtime(minute))
        if not delays:
            print(f"| {sandbox} | {stamp} | {' '.join(load)} | 0 | - | - | - |")
            continue
        print(f"| {sandbox} | {stamp} | {' '.join(load)} | {len(delays)} "
              f"| {percentile(delays, 0.5):.2f} s | {percentile(delays, 0.9):.2f} s "
              f"| {max(delays):.2f} s |")
    for sandbox, delays in pooled.items():
        if delays:
            print(f"| {sandbox}, all its minutes | | | {len(delays)} "
                  f"| {percentile(delays, 0.5):.2f} s | {percentile(delays, 0.9):.2f} s "
                  f"| {max(delays):.2f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
