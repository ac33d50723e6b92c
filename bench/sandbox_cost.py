"""What a job's sandbox costs each start, setting by setting, on a real
systemd (issue #26).

    python bench/sandbox_cost.py [ROUNDS]

Boots the test container (tests/systemd_box.py; needs root) and installs
the generator with three ``/bin/true`` jobs: ``sandbox: false``, the default
(``true``) and ``sandbox: strict``. Next to them, written by hand: a plain
unit (``Type=oneshot``, the same ``User=``, ``ExecStart=/bin/true``, nothing
else) and variants of the default job unit with one setting taken out (or,
for the settings only ``strict`` has, put in), and a second copy of the
default as a control: its difference to the default is the method's own
error. All are written to /etc/systemd/system under like names (the job
units copied from the generator's). Each round starts every unit once
with ``systemctl start`` (which waits for the oneshot to finish); each
pair of rounds takes a new random order, the first round in that order
and the second in reverse (ABBA), so that no unit gains from its place
while the machine's load changes. After each start the bench waits
0.15 s: systemd cleans a unit up (its private /tmp, its control group)
after ``systemctl start`` returned, and without the pause that work would
be timed with the next unit's start. Reported, per unit: the median wall
time of a start (until ``systemctl start`` returns) and the median CPU
time the whole container used in that time (its cgroup's ``cpu.stat``:
systemd's work, the job's set-up and ``systemctl`` itself; less disturbed
by other processes than wall time is on a loaded machine), and
``systemd-analyze security``'s exposure. Also the load average before and
after.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.box import USER, generated, time_starts
from tests.systemd_box import SystemdBox

JOBS_BY_SANDBOX = {"false": "open", "true": "default", "strict": "strict"}
# Settings only `sandbox: strict` has, each tried in the default in place of
# the cheaper one it stands for (None: added to the default as it is).
STRICT_ONLY = {
    "PrivateDevices=yes": "DevicePolicy=closed",
    "ProtectKernelTunables=yes": None,
    "ProtectKernelLogs=yes": None,
    "ProtectControlGroups=yes": None,
    "SystemCallFilter=@system-service": "SystemCallFilter=",
}
# Cheaper stand-ins for strict-only settings, measured but not in the default.
# What differs between two jobs besides their sandboxes.
OWN = ("Description=", "SourcePath=", "SyslogIdentifier=")
EQUIVALENTS = ["ReadOnlyPaths=/proc/sys /sys", "InaccessiblePaths=-/proc/kcore -/proc/kallsyms"]

def sandbox_lines(unit: str, open_unit: str) -> list[str]:
    """The settings of ``unit`` that the ``sandbox: false`` unit lacks."""
    others = set(open_unit.splitlines())
    return [line for line in unit.splitlines()
            if line and not line.startswith(("#", *OWN)) and line not in others]


def variants(default: str, sandbox: list[str]) -> dict[str, str]:
    """The default job unit with one setting out or in, by label."""
    lines = default.splitlines()
    out = {}
    for setting in sandbox:
        label = setting.split("=")[0]
        if label == "SystemCallFilter":
            if not setting.startswith("SystemCallFilter=~"):
                continue  # the deny list's exceptions go with it
            out["- SystemCallFilter (deny list)"] = "\n".join(
                line for line in lines if not line.startswith("SystemCallFilter="))
            continue
        out[f"- {label}"] = "\n".join(line for line in lines if line != setting)
    at = lines.index("LogNamespace=process-control")
    for setting, replaces in STRICT_ONLY.items():
        kept = [line for line in lines if not replaces or not line.startswith(replaces)]
        at = kept.index("LogNamespace=process-control")
        what = ("instead of the deny list" if replaces == "SystemCallFilter="
                else f"instead of {replaces}" if replaces else "added")
        out[f"+ {setting} ({what})"] = "\n".join([*kept[:at], setting, *kept[at:]])
    at = lines.index("LogNamespace=process-control")
    for setting in EQUIVALENTS:
        out[f"+ {setting}"] = "\n".join([*lines[:at], setting, *lines[at:]])
    out["(control: the default again)"] = default
    return out


def exposure(box: SystemdBox, unit: str) -> str:
    out = box.run(["systemd-analyze", "security", unit], check=False).stdout
    line = next((ln for ln in out.splitlines() if "Overall exposure level" in ln), "")
    return line.split(":")[1].split()[0] if line else "?"


def main(argv: list[str]) -> int:
    rounds = int(argv[0]) if argv else 40
    jobs = {slug: f"name: {slug}\ncommand: /bin/true\nsandbox: {value}\n"
            for value, slug in JOBS_BY_SANDBOX.items()}
    with generated(jobs) as box:
        text = {f"job, sandbox: {value}":
                box.run(["systemctl", "cat", f"process-control-{slug}.service"]).stdout
                for value, slug in JOBS_BY_SANDBOX.items()}
        default = text["job, sandbox: true"]
        text = {"plain unit": f"[Service]\nType=oneshot\nUser={USER}\nExecStart=/bin/true"} \
            | text | variants(default, sandbox_lines(default, text["job, sandbox: false"]))
        # All in one place and named alike, the job units copied too.
        timed = time_starts(box, text, rounds)
        units = timed.units
        exposures = {name: exposure(box, unit) for name, unit in units.items()}
        version = box.run(["systemctl", "--version"]).stdout.split("\n")[0]
    ms, cpu = timed.wall_ms, timed.cpu_ms
    base = "job, sandbox: true"
    print(f"{version}; {timed.header}")
    print("| unit | start, median wall | vs plain | vs sandbox: false | vs default "
          "| CPU, median | vs plain | vs default | exposure |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in units:
        print(f"| {name} | {ms[name]:.1f} ms | {ms[name] - ms['plain unit']:+.1f} "
              f"| {ms[name] - ms['job, sandbox: false']:+.1f} | {ms[name] - ms[base]:+.1f} "
              f"| {cpu[name]:.1f} ms | {cpu[name] - cpu['plain unit']:+.1f} "
              f"| {cpu[name] - cpu[base]:+.1f} | {exposures[name]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
