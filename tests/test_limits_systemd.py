"""Resource limits on a real systemd 252: what the running job sees (its
nice value and I/O class, as the service user), and what systemd holds
over D-Bus (MemoryMax, CPUQuotaPerSecUSec, Nice, IOSchedulingClass).

These containers get no cgroup memory or CPU controller, so MemoryMax= and
CPUQuota= are not enforced here (docs/real-systemd.md): for them the
properties are what is checked. A negative nice in a job file is honoured
with ``allow_negative_nice: true`` and, without it, the job's units
disappear at the next reload.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.systemd_box import SystemdBox, checkout_box

pytestmark = pytest.mark.systemd

VENV = Path(sys.prefix)
PYTHON = str(VENV / "bin" / "python")
RUN_JOB = str(VENV / "bin" / "run-job")
JOBS = "/var/lib/process-control"
USER = "pclimits"
HOME = f"/home/{USER}"
CONFIG = f"user: {USER}\njob_directory: {JOBS}\n"
INFINITY = 2**64 - 1  # systemd's "no limit" for MemoryMax and CPUQuotaPerSecUSec
IDLE, BEST_EFFORT = 3, 2  # IOPRIO_CLASS_*
# What the job reports, into a file in its working directory (the user's
# home): /proc/self/stat field 19 is the nice value the kernel gives it.
PROBE = ("/bin/sh -c 'exec >{0}.out; cut -d\" \" -f19 /proc/self/stat;"
         " ionice -p $$; id -un'")
JOB_FILES = {
    "niced": f"name: Niced\ncommand: {PROBE.format('niced')}\nnice: 7\nio_class: idle\n",
    "raised": (f"name: Raised\ncommand: {PROBE.format('raised')}\nnice: -5\n"
               "io_class: best-effort\n"),
    "capped": f"name: Capped\ncommand: {PROBE.format('capped')}\nmemory_max: 512M\n"
              "cpu_quota: 150\n",
    "fraction": "name: Fraction\ncommand: /bin/true\ncpu_quota: '12.5%'\nmemory_max: 3G\n",
    "plain": f"name: Plain\ncommand: {PROBE.format('plain')}\n",
}
PROPS = ("LoadState", "MemoryMax", "CPUQuotaPerSecUSec", "Nice", "IOSchedulingClass")
# The properties of each unit over D-Bus (pystemd), as JSON.
DUMP = """
import json, sys
from pystemd.systemd1 import Unit
out = {}
for name in sys.argv[2:]:
    unit = Unit(name.encode(), _autoload=True)
    out[name] = {p: getattr(unit.Service, p) if p != "LoadState" else unit.Unit.LoadState
                 for p in sys.argv[1].split(",")}
    out[name]["LoadState"] = out[name]["LoadState"].decode()
json.dump(out, sys.stdout)
"""


@pytest.fixture(scope="module")
def box() -> Iterator[SystemdBox]:
    with checkout_box() as booted:
        booted.run(["useradd", "--create-home", USER])
        booted.write_file("/etc/process-control.yaml", CONFIG + "allow_negative_nice: true\n")
        for slug, text in JOB_FILES.items():
            booted.write_file(f"{JOBS}/{slug}.yaml", text)
        booted.run([RUN_JOB, "--install-generator"], timeout=120)
        yield booted


def service(slug: str) -> str:
    return f"process-control-{slug}.service"


def properties(box: SystemdBox, *slugs: str) -> dict[str, dict[str, Any]]:
    result = box.run([PYTHON, "-c", DUMP, ",".join(PROPS), *map(service, slugs)])
    loaded: dict[str, dict[str, Any]] = json.loads(result.stdout)
    return loaded


def ran(box: SystemdBox, slug: str) -> list[str]:
    """What the job wrote about itself, after a run it finished."""
    box.systemctl("start", service(slug))
    return box.path(f"{HOME}/{slug}.out").read_text().split("\n")[:-1]


def test_the_job_runs_with_its_nice_and_io_class(box: SystemdBox) -> None:
    assert ran(box, "niced") == ["7", "idle", USER]


def test_a_negative_nice_reaches_the_job_running_as_the_service_user(box: SystemdBox) -> None:
    # systemd sets it before dropping to User=; the job itself could not
    assert ran(box, "raised") == ["-5", "best-effort: prio 4", USER]


def test_without_the_keys_the_job_keeps_the_defaults(box: SystemdBox) -> None:
    assert ran(box, "plain") == ["0", "none: prio 0", USER]


def test_limits_are_the_units_properties_over_dbus(box: SystemdBox) -> None:
    props = properties(box, "niced", "raised", "capped", "fraction", "plain")
    assert props[service("niced")] == {
        "LoadState": "loaded", "MemoryMax": INFINITY, "CPUQuotaPerSecUSec": INFINITY,
        "Nice": 7, "IOSchedulingClass": IDLE}
    assert props[service("raised")]["Nice"] == -5
    assert props[service("raised")]["IOSchedulingClass"] == BEST_EFFORT
    assert props[service("capped")] == {
        "LoadState": "loaded", "MemoryMax": 512 << 20, "CPUQuotaPerSecUSec": 1_500_000,
        "Nice": 0, "IOSchedulingClass": props[service("plain")]["IOSchedulingClass"]}
    assert props[service("fraction")]["MemoryMax"] == 3 << 30
    assert props[service("fraction")]["CPUQuotaPerSecUSec"] == 125_000
    assert props[service("plain")]["MemoryMax"] == INFINITY
    assert props[service("plain")]["CPUQuotaPerSecUSec"] == INFINITY
    # the limited job runs all the same (the limits are not enforced here)
    assert ran(box, "capped") == ["0", "none: prio 0", USER]


def test_without_allow_negative_nice_the_job_file_is_refused(box: SystemdBox) -> None:
    box.write_file("/etc/process-control.yaml", CONFIG)
    validate = box.run([RUN_JOB, "validate"], check=False)
    assert validate.returncode == 1
    assert f"{JOBS}/raised.yaml:3: nice: -5 is a negative nice" in validate.stdout
    reload = box.run([RUN_JOB, "reload"], timeout=120, check=False)
    assert reload.returncode == 1
    assert "raised.yaml:3: nice: -5 is a negative nice" in reload.stderr
    props = properties(box, "raised", "niced")
    assert props[service("raised")]["LoadState"] == "not-found"
    assert props[service("niced")]["LoadState"] == "loaded"
