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

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.box import USER, generated, time_starts
from pc_systemd.systemd import filelog
from pc_systemd.systemd.unit_escape import exec_argv

JOB = "name: filed\ncommand: /bin/true\nlogging: file\n"


def main(argv: list[str]) -> int:
    rounds = int(argv[0]) if argv else 40
    with generated({"filed": JOB}, f"output_directory: /home/{USER}/logs\n") as box:
        unit = box.run(["systemctl", "cat", "process-control-filed.service"]).stdout
        argv = [*filelog.check(f"/home/{USER}/logs"), "filed"]
        post = "ExecStopPost=" + exec_argv(argv)  # no MONITOR_* here: it exits at once
        lines = unit.splitlines()
        at = lines.index("TimeoutStopSec=5s")
        with_check = "\n".join([*lines[:at], post, *lines[at:]])
        text = {"with ExecStopPost= check": with_check, "without it (as generated)": unit,
                "(control: with it again)": with_check}
        timed = time_starts(box, text, rounds)
        version = box.run(["systemctl", "--version"]).stdout.split("\n")[0]
    base = "without it (as generated)"
    ms, cpu = timed.wall_ms, timed.cpu_ms
    print(f"{version}; {timed.header}")
    print("| unit | start, median wall | vs without | CPU, median | vs without |")
    print("|---|---|---|---|---|")
    for name in timed.units:
        print(f"| {name} | {ms[name]:.1f} ms | {ms[name] - ms[base]:+.1f} "
              f"| {cpu[name]:.1f} ms | {cpu[name] - cpu[base]:+.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
