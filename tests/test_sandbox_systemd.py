"""What a job can and cannot do in each sandbox (`sandbox: true`, the
default, and `sandbox: strict`), handed to a real systemd.

One box: three jobs run the same probe (a Python script written into the
box), with `sandbox: false`, `true` and `strict`. The probe tries each thing in a child process of its own, so
that a system call filter's SIGSYS ends only that child, and prints one
line per try: ``name ok``, ``name denied`` (an error) or ``name killed``
(``name broken-probe`` if the try itself is wrong).
The unsandboxed job shows which of the refusals are the sandbox's doing
(the rest the service user's own lack of privilege already refuses).
"""

from __future__ import annotations

import platform
import re
from collections.abc import Iterator

import pytest

from tests.systemd_box import SystemdBox, checkout_box
from tests.user_install import RUN_JOB

pytestmark = pytest.mark.systemd

JOBS = "/var/lib/process-control"
USER = "pcprobe"
PROBE_PATH = "/usr/local/lib/pc-sandbox-probe.py"
MAX_EXPOSURE = 2.5
PROBE = r'''
import ctypes, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)

def call(*args):
    if libc.syscall(*args) == -1:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))

home = os.path.expanduser("~")
mine = os.path.join(home, "probe-file")
open(mine, "w").close()
TRIES = {
    "write_home": lambda: open(os.path.join(home, "written"), "w").close(),
    "write_etc": lambda: open("/etc/pc-probe", "w").close(),
    "write_usr": lambda: open("/usr/pc-probe", "w").close(),
    "see_pid1": lambda: os.stat("/proc/1"),
    "read_proc_sys": lambda: open("/proc/sys/kernel/ostype").read(),
    "chown_own_file": lambda: os.chown(mine, -1, os.getgid()),
    "setuid_self": lambda: os.setuid(os.getuid()),
    "nice": lambda: os.nice(1),
    "inet_socket": lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close(),
    "user_namespace": lambda: call(272, 0x10000000),  # unshare(CLONE_NEWUSER)
    "ptrace_traceme": lambda: call(101, 0, 0, 0, 0),  # ptrace(PTRACE_TRACEME)
    "personality": lambda: call(135, 0x0008),  # personality(PER_LINUX32)
    "setuid_bit": lambda: os.chmod(mine, 0o4755),
    "packet_socket": lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW).close(),
    "mount": lambda: call(165, b"none", b"/mnt", b"tmpfs", 0, 0),
    "set_clock": lambda: call(227, 0, ctypes.byref((ctypes.c_long * 2)(0, 0))),  # clock_settime
    "kernel_log": lambda: call(103, 10, 0, 0),  # syslog(SYSLOG_ACTION_SIZE_BUFFER)
    "open_kmsg": lambda: open("/dev/kmsg", "rb").close(),
}
for name, attempt in TRIES.items():
    pid = os.fork()
    if pid == 0:
        try:
            attempt()
        except OSError:
            os._exit(1)
        except BaseException:
            os._exit(2)
        os._exit(0)
    status = os.waitpid(pid, 0)[1]
    outcome = ("killed" if os.WIFSIGNALED(status)
               else ["ok", "denied", "broken-probe"][os.WEXITSTATUS(status)])
    print(name, outcome, flush=True)
'''
SANDBOXES = ("false", "true", "strict")
# What the sandbox itself refuses: the unsandboxed job may do it.
SANDBOX_REFUSES = ("see_pid1", "user_namespace", "ptrace_traceme", "personality", "setuid_bit")
# What a sandboxed job may not do either, though here the service user's
# lack of privilege may refuse it already.
ALSO_REFUSED = ("write_etc", "write_usr", "packet_socket", "mount", "set_clock", "kernel_log",
                "open_kmsg")
# What every job may do.
ALWAYS = ("write_home", "read_proc_sys", "chown_own_file", "setuid_self", "nice",
          "inet_socket")
# Refused only by a system call filter: the call never reaches the kernel.
FILTERED = ("ptrace_traceme", "mount", "set_clock", "kernel_log")


def slug(sandbox: str) -> str:
    return f"probe_{sandbox}"


@pytest.fixture(scope="module")
def box() -> Iterator[SystemdBox]:
    if platform.machine() != "x86_64":
        pytest.skip("the probe's system call numbers are x86-64's")
    with checkout_box() as booted:
        booted.run(["useradd", "--create-home", USER])
        booted.write_file("/etc/process-control.yaml", f"user: {USER}\njob_directory: {JOBS}\n")
        booted.write_file(PROBE_PATH, PROBE)
        for sandbox in SANDBOXES:
            booted.write_file(f"{JOBS}/{slug(sandbox)}.yaml",
                              f"name: Probe\ncommand: /usr/bin/python3 -I {PROBE_PATH}\n"
                              f"sandbox: {sandbox}\n")
        booted.run([RUN_JOB, "--install-generator"], timeout=120)
        yield booted


@pytest.fixture(scope="module")
def outcomes(box: SystemdBox) -> dict[str, dict[str, str]]:
    found = {}
    for sandbox in SANDBOXES:
        unit = f"process-control-{slug(sandbox)}.service"
        box.systemctl("start", unit)
        lines = box.journal(unit, manager_messages=False)
        found[sandbox] = dict(line.split(" ", 1) for line in lines if " " in line)
    return found


def test_the_probe_ran_every_try_in_every_sandbox(outcomes: dict[str, dict[str, str]]) -> None:
    for sandbox in SANDBOXES:
        got = outcomes[sandbox]
        assert set(got) >= {*SANDBOX_REFUSES, *ALSO_REFUSED, *ALWAYS}, got
        assert "broken-probe" not in got.values(), got


@pytest.mark.parametrize("sandbox", ["true", "strict"])
def test_a_sandboxed_job_cannot(outcomes: dict[str, dict[str, str]], sandbox: str) -> None:
    got = outcomes[sandbox]
    assert {name: got[name] for name in (*SANDBOX_REFUSES, *ALSO_REFUSED) if got[name] == "ok"} == {}
    # the filter's refusals end the process (SIGSYS), as systemd's default action
    assert {name: got[name] for name in FILTERED} == dict.fromkeys(FILTERED, "killed")


def test_the_refusals_are_the_sandboxs(outcomes: dict[str, dict[str, str]]) -> None:
    got = outcomes["false"]
    assert {name: got[name] for name in SANDBOX_REFUSES} == dict.fromkeys(SANDBOX_REFUSES, "ok")
    assert "killed" not in got.values()


@pytest.mark.parametrize("sandbox", SANDBOXES)
def test_what_every_job_may_do(outcomes: dict[str, dict[str, str]], sandbox: str) -> None:
    got = outcomes[sandbox]
    assert {name: got[name] for name in ALWAYS} == dict.fromkeys(ALWAYS, "ok")


def exposure(box: SystemdBox, unit: str) -> float:
    out = box.run(["systemd-analyze", "security", unit], check=False).stdout
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out)
    assert found, out[-500:]
    return float(found.group(1))


def test_exposure_of_each_sandbox(box: SystemdBox) -> None:
    default = exposure(box, f"process-control-{slug('true')}.service")
    strict = exposure(box, f"process-control-{slug('strict')}.service")
    assert default <= MAX_EXPOSURE
    assert strict <= default
    assert exposure(box, f"process-control-{slug('false')}.service") > 9.0
