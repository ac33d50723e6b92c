"""Why the ``logging: file`` check (issue #25: was the log file's file
system full when a run failed?) is a unit a failed run starts
(``OnFailure=process-control-filecheck@<slug>.service``) and not the job
unit's own ``ExecStopPost=``: what the latter would cost every run, on a
real systemd.

    python bench/file_check_cost.py [ROUNDS]

Boots the test container (tests/systemd_box.py; needs root), installs the
generator with a ``logging: file`` job running ``/bin/true``, and copies its
unit three times to /etc/systemd/system: with an ``ExecStopPost=`` that
runs the check's script (:mod:`pc_systemd.systemd.filelog`; without
``MONITOR_INVOCATION_ID`` it exits at its first test: the least such a line
could cost), as generated (no such line), and
with it again (a control: its difference to the first is the method's own
error). Each unit is started in rounds, ABBA, as bench/sandbox_cost.py
does (its timer), which also says what the wall and CPU figures are.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.sandbox_cost import TIMER, median  # noqa: E402
from pc_systemd.systemd import filelog  # noqa: E402
from pc_systemd.systemd.unit_escape import exec_argv  # noqa: E402
from tests.systemd_box import SystemdBox  # noqa: E402

VENV = Path(sys.prefix)
RUN_JOB = str(VENV / "bin" / "run-job")
JOBS = "/var/lib/process-control"
USER = "pcbench"


def main(argv: list[str]) -> int:
    rounds = int(argv[0]) if argv else 40
    binds = [HERE.parent] if VENV.is_relative_to(HERE.parent) else [HERE.parent, VENV]
    with SystemdBox(binds_ro=binds) as box:
        box.run(["useradd", "--create-home", USER])
        box.write_file("/etc/process-control.yaml",
                       f"user: {USER}\njob_directory: {JOBS}\n"
                       f"output_directory: /home/{USER}/logs\n")
        box.write_file(f"{JOBS}/filed.yaml", "name: filed\ncommand: /bin/true\nlogging: file\n")
        box.run([RUN_JOB, "--install-generator"], timeout=300)
        unit = box.run(["systemctl", "cat", "process-control-filed.service"]).stdout
        argv = [*filelog.check(f"/home/{USER}/logs"), "filed"]
        post = "ExecStopPost=" + exec_argv(argv)  # no MONITOR_* here: it exits at once
        lines = unit.splitlines()
        at = lines.index("TimeoutStopSec=5s")
        with_check = "\n".join([*lines[:at], post, *lines[at:]])
        text = {"with ExecStopPost= check": with_check, "without it (as generated)": unit,
                "(control: with it again)": with_check}
        units = {}
        for number, (label, unit_text) in enumerate(text.items()):
            units[label] = f"pc-bench-{number}.service"
            box.write_file(f"/etc/systemd/system/{units[label]}", unit_text + "\n")
        box.systemctl("daemon-reload")
        load_before = Path("/proc/loadavg").read_text().split()[:3]
        wall, used = json.loads(box.run(["python3", "-c", TIMER, str(rounds), *units.values()],
                                        timeout=3600).stdout)
        load_after = Path("/proc/loadavg").read_text().split()[:3]
        version = box.run(["systemctl", "--version"]).stdout.split("\n")[0]
    ms = {name: median(wall[u]) * 1000 for name, u in units.items()}
    cpu = {name: median(used[u]) * 1000 for name, u in units.items()}
    print(f"{version}; {rounds} rounds of {len(units)} units, ABBA; "
          f"load average before {' '.join(load_before)}, after {' '.join(load_after)}")
    print("| unit | start, median wall | vs without | CPU, median | vs without |")
    print("|---|---|---|---|---|")
    for name in units:
        print(f"| {name} | {ms[name]:.1f} ms | {ms[name] - ms['without it (as generated)']:+.1f} "
              f"| {cpu[name]:.1f} ms | {cpu[name] - cpu['without it (as generated)']:+.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
