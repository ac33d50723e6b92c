"""The broker on a real systemd 252 with a real polkitd, the package installed:
members of the developer group have no systemd permission of their own
(polkit never sees a start's job mode: ``--job-mode=flush`` would cancel
every queued job on the host), every run-job action of theirs goes through
``process-control-broker.socket``, each leaves one audit line, and whatever
else they send is refused in one line with nothing started.

One box: the package installed (the checkout hidden), built-in defaults,
users ``dev`` (in process-control-dev) and ``outsider``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, install_package
from tests.systemd_box import SystemdBox, require_systemd_box

pytestmark = pytest.mark.systemd

GROUP = "process-control-dev"
SOCKET = "/run/process-control-broker.sock"
CLIENT = "/usr/local/lib/broker_client.py"
JOB_FILES = {
    "hello": "name: Hello\ncommand: /bin/sh -c 'echo hello-output; echo second line'\n",
    "warm": ("name: Warm\ncommand: /bin/echo warm-main\n"
             "slow_start_command: /bin/echo warm-slow\n"),
    "slow": "name: Slow\ncommand: /bin/sh -c 'echo slow-started; exec sleep 300'\n",
    "ticker": ("name: Ticker\ncommand: /bin/sh -c 'echo tick-1; sleep 2; echo tick-2; "
               "exit 4'\n"),
    "nightly": ("name: Nightly\ncommand: /bin/true\nschedule: '0 3 * * *'\n"
                "tag: [night]\nstop_after_failures: 2\n"),
    "retrying": ("name: Retrying\ncommand: /bin/sh -c 'echo trying; exit 5'\ntimeout: 1\n"
                 "retry: {attempts: 1, delay: 0.02}\n"),
}
# root's own units: a queued restart of "web" waits behind "blocker"
BLOCKER = ("[Service]\nType=oneshot\nExecStart=/bin/sleep 600\nTimeoutStartSec=infinity\n")
WEB = ("[Unit]\nAfter=blocker.service\n[Service]\nType=oneshot\nRemainAfterExit=yes\n"
       "ExecStart=/bin/echo web-secret\n")


@pytest.fixture(scope="module")
def box(built: Path) -> Iterator[SystemdBox]:
    require_systemd_box()
    with SystemdBox() as booted:
        booted.write_file("/etc/systemd/system/blocker.service", BLOCKER)
        booted.write_file("/etc/systemd/system/web.service", WEB)
        booted.write_file(CLIENT, (ROOT / "tests" / "broker_client.py").read_text())
        install_package(booted, built, JOB_FILES)
        booted.run(["useradd", "--create-home", "--groups", GROUP, "dev"])
        booted.run(["useradd", "--create-home", "outsider"])
        booted.systemctl("start", "web.service")
        yield booted


def as_user(box: SystemdBox, user: str, *argv: str,
            timeout: float = 120) -> tuple[int, str, str]:
    done = box.run(list(argv), user=user, check=False, timeout=timeout)
    return done.returncode, done.stdout, done.stderr


def raw(box: SystemdBox, user: str, *args: str, timeout: float = 60) -> str:
    """The broker's answer to what ``broker_client.py ARGS`` sends, as ``user``."""
    code, out, err = as_user(box, user, "python3", CLIENT, *args, timeout=timeout)
    assert code == 0, err
    return out


def audit_lines(box: SystemdBox) -> list[str]:
    done = box.run(["journalctl", "-t", "process-control-broker", "-o", "cat", "--no-pager"])
    return done.stdout.splitlines()


def uid(box: SystemdBox, user: str) -> int:
    return int(box.run(["id", "-u", user]).stdout)


def job_units(box: SystemdBox) -> dict[str, str]:
    """Every loaded unit of ours with when it last started."""
    names = box.run(["systemctl", "list-units", "--all", "--plain", "--no-legend",
                     "process-control-*"]).stdout.split()
    names = [n for n in names if n.startswith("process-control-") and "broker" not in n]
    return {n: box.show(n, "InactiveExitTimestampMonotonic")["InactiveExitTimestampMonotonic"]
            for n in names}


def refused_by_polkit(err: str) -> bool:
    return "Interactive authentication required" in err


# -- members have no systemd permission --------------------------------------------------


@pytest.mark.parametrize("mode", ["replace", "flush", "fail", "ignore-dependencies",
                                  "replace-irreversibly"])
@pytest.mark.parametrize("verb", ["start", "stop"])
@pytest.mark.parametrize("unit", ["process-control-hello.service",
                                  "process-control-nightly.timer",
                                  "process-control-warm.slow-start.service"])
def test_a_member_may_not_start_or_stop_a_job_unit_in_any_mode(
    box: SystemdBox, mode: str, verb: str, unit: str,
) -> None:
    code, _out, err = as_user(box, "dev", "systemctl", "--no-ask-password",
                              f"--job-mode={mode}", verb, unit)
    assert code != 0 and refused_by_polkit(err), err


def test_a_member_may_not_reference_or_reset_a_job_unit(box: SystemdBox) -> None:
    code, _out, err = as_user(box, "dev", "systemctl", "--no-ask-password", "reset-failed",
                              "process-control-retrying.service")
    assert code != 0, err
    code, _out, err = as_user(box, "dev", "busctl", "call", "org.freedesktop.systemd1",
                              "/org/freedesktop/systemd1/unit/process_2dcontrol_2dhello_2eservice",
                              "org.freedesktop.systemd1.Unit", "Ref")
    assert code != 0 and ("Interactive authentication" in err or "Access denied" in err), err


def test_roots_queued_restart_survives_every_member_action(box: SystemdBox) -> None:
    box.systemctl("start", "--no-block", "blocker.service")
    box.systemctl("restart", "--no-block", "web.service")
    before = box.show("web.service", "InvocationID")["InvocationID"]
    try:
        queued = box.run(["systemctl", "list-jobs", "--no-legend"]).stdout
        assert re.search(r"web\.service\s+(re)?start\s+waiting", queued), queued
        box.systemctl("start", "--no-block", "process-control-slow.service")
        for argv in (["run", "hello"], ["-j", "hello"], ["run", "warm", "-w"],
                     ["run", "retrying"], ["kill", "slow"], ["logs", "hello", "-f"],
                     ["status"], ["disable-group", "night"], ["enable-group", "night"],
                     ["reset", "nightly"]):
            as_user(box, "dev", "run-job", *argv)
        for mode in ("flush", "replace-irreversibly"):
            as_user(box, "dev", "systemctl", "--no-ask-password", f"--job-mode={mode}",
                    "start", "process-control-hello.service")
        queued = box.run(["systemctl", "list-jobs", "--no-legend"]).stdout
        assert re.search(r"web\.service\s+(re)?start\s+waiting", queued), queued
        assert re.search(r"blocker\.service\s+start\s+running", queued), queued
    finally:
        box.systemctl("stop", "blocker.service")
    box.wait_until(lambda: box.show("web.service", "InvocationID")["InvocationID"] != before,
                   what="web.service restarted")
    assert box.show("web.service", "ActiveState")["ActiveState"] == "active"


# -- every member action, through the broker, audited ---------------------------------------


@pytest.mark.parametrize(("argv", "code", "out", "audit"), [
    (["run", "hello"], 0, "hello-output\nsecond line\n",
     "run job=\"hello\": started process-control-hello.service"),
    (["-j", "hello"], 0, "hello-output\nsecond line\n",
     "run job=\"hello\": started process-control-hello.service"),
    (["run", "warm", "-w"], 0, "warm-slow\n",
     "run job=\"warm\" slow_start: started process-control-warm.slow-start.service"),
    (["run", "retrying"], 5, "trying\ntrying\n",
     "run job=\"retrying\": started process-control-retrying.service"),
    (["kill", "hello"], 1, "Hello (hello) is not running\n",
     "kill job=\"hello\": exit 1: Hello (hello) is not running"),
    (["disable-group", "night"], 0,
     "stopped process-control-nightly.timer\ngroup night disabled: 1 job(s): nightly\n",
     "disable-group tag=\"night\": stopped process-control-nightly.timer"),
    (["enable-group", "night"], 0, "started process-control-nightly.timer\n"
     "group night enabled: 1 job(s)\n",
     "enable-group tag=\"night\": started process-control-nightly.timer"),
    (["reset", "nightly"], 0, "started process-control-nightly.timer\n"
     "nightly: was not stopped\n", "reset job=\"nightly\": started process-control-nightly.timer"),
])
def test_a_member_action_goes_through_the_broker_and_leaves_its_audit_line(
    box: SystemdBox, argv: list[str], code: int, out: str, audit: str,
) -> None:
    seen = len(audit_lines(box))
    got = as_user(box, "dev", "run-job", *argv)
    assert got[:2] == (code, out), got[2]
    lines = audit_lines(box)[seen:]
    assert len(lines) == 1, lines
    assert re.fullmatch(rf"uid={uid(box, 'dev')} user=dev pid=\d+ {re.escape(audit)}",
                        lines[0]), lines


def test_a_member_stops_a_run_and_follows_one_through_the_broker(box: SystemdBox) -> None:
    box.systemctl("start", "--no-block", "process-control-slow.service")
    box.wait_until(lambda: box.show("process-control-slow.service", "ActiveState")
                   ["ActiveState"] == "activating", what="slow job running")
    seen = len(audit_lines(box))
    code, out, err = as_user(box, "dev", "run-job", "kill", "slow")
    assert (code, out.startswith("Slow (slow): stopped process-control-slow.service")) == (
        0, True), err
    box.systemctl("start", "--no-block", "process-control-ticker.service")
    code, out, err = as_user(box, "dev", "run-job", "logs", "ticker", "--follow")
    assert (code, out) == (4, "tick-1\ntick-2\n"), err
    lines = [line.split(" ", 3)[3] for line in audit_lines(box)[seen:]]
    assert len(lines) == 2, lines
    assert re.fullmatch(r'kill job="slow": exit 0: Slow \(slow\): stopped '
                        r"process-control-slow\.service \(pid \d+\)", lines[0]), lines
    assert lines[1] == 'watch job="ticker": referenced process-control-ticker.service'


def test_an_interrupted_run_is_stopped_by_the_broker(box: SystemdBox) -> None:
    done = box.run(["setpriv", "--reuid=dev", "--regid=dev", "--init-groups", "sh", "-c",
                    "run-job run slow & pid=$!; sleep 3; kill -INT $pid; wait $pid; "
                    "echo exit=$?"], check=False, timeout=120)
    assert "slow-started" in done.stdout and "exit=143" in done.stdout, done.stderr
    assert box.show("process-control-slow.service", "ActiveState")["ActiveState"] != "activating"
    assert audit_lines(box)[-1].endswith(
        'run job="slow": stopped process-control-slow.service (the run was interrupted)')


# -- what the broker refuses --------------------------------------------------------------


def request(op: str, **fields: object) -> str:
    return json.dumps({"v": 1, "op": op, **fields})


def refusal(answer: str) -> str:
    lines = answer.splitlines()
    assert len(lines) == 1, answer
    return str(json.loads(lines[0])["refused"])


@pytest.mark.parametrize(("args", "why"), [
    (["send", request("run", job="nosuch", slow_start=False)], "no job named 'nosuch'"),
    (["send", request("run", job="reload", slow_start=False)], "process-control's own units"),
    (["send", request("run", job="after-var", slow_start=False)], "process-control's own units"),
    (["send", request("kill", job="metrics")], "process-control's own units"),
    (["send", request("run", job="broker@x", slow_start=False)], "not a job name"),
    (["send", request("run", job="mail@hello", slow_start=False)], "not a job name"),
    (["send", request("run", job="../../etc/passwd", slow_start=False)], "not a job name"),
    (["send", request("run", job="hello\n", slow_start=False)], "not a job name"),
    (["send", request("run", job="hello", slow_start=True)], "has no slow_start_command"),
    (["send", request("reset", job="-hello")], "not a job name"),
    (["send", request("start", unit="web.service")], "unknown operation"),
    (["send", request("run", job="hello", slow_start=False, mode="flush")], "takes job"),
    (["send", request("disable-group", tag="night")], "group night is not disabled"),
    (["send", "run hello"], "malformed request"),
    (["raw", "ff" * 10 + "0a"], "malformed request"),
    (["raw", "78" * 10000 + "0a"], "request longer than 4096 bytes"),
    (["send", '{"v": 2, "op": "run"}'], "unsupported request version"),
])
def test_the_broker_refuses_in_one_line_and_starts_nothing(
    box: SystemdBox, args: list[str], why: str,
) -> None:
    before = job_units(box)
    seen = len(audit_lines(box))
    assert why in refusal(raw(box, "dev", *args))
    assert job_units(box) == before
    (line,) = audit_lines(box)[seen:]
    assert f"uid={uid(box, 'dev')} user=dev " in line and "refused: " in line, line
    assert "\n" not in line


def test_a_slow_request_is_dropped(box: SystemdBox) -> None:
    before = job_units(box)
    answer = raw(box, "dev", "slow", request("run", job="hello", slow_start=False), "0")
    first, rest = answer.split("\n", 1)
    seconds = float(first.split()[1])
    assert 4 <= seconds < 15, answer
    assert refusal(rest) == "request not complete within 5 s"
    assert job_units(box) == before


def test_only_the_generators_unit_of_a_job_file_is_started(box: SystemdBox) -> None:
    # an administrator's unit with a job's name, with and without a job file,
    # and a job file that is a symlink leading out of the job directory
    unit = "[Service]\nType=oneshot\nExecStart=/bin/echo admin-unit\n"
    box.write_file("/etc/systemd/system/process-control-ghost.service", unit)
    box.write_file("/etc/systemd/system/process-control-shadow.service", unit)
    box.write_file("/var/lib/process-control/shadow.yaml", "name: Shadow\ncommand: /bin/true\n")
    box.write_file("/tmp/outside.yaml", "name: Outside\ncommand: /bin/true\n")
    box.run(["ln", "-sf", "/tmp/outside.yaml", "/var/lib/process-control/linked.yaml"])
    box.run(["run-job", "reload"], check=False)
    try:
        before = job_units(box)
        assert "no job named 'ghost'" in refusal(
            raw(box, "dev", "send", request("run", job="ghost", slow_start=False)))
        assert ("process-control-shadow.service is not the generated unit of "
                "/var/lib/process-control/shadow.yaml") in refusal(
            raw(box, "dev", "send", request("run", job="shadow", slow_start=False)))
        assert "symlink leads outside /var/lib/process-control" in refusal(
            raw(box, "dev", "send", request("run", job="linked", slow_start=False)))
        assert job_units(box) == before
    finally:
        box.run(["rm", "-f", "/var/lib/process-control/shadow.yaml",
                 "/var/lib/process-control/linked.yaml",
                 "/etc/systemd/system/process-control-ghost.service",
                 "/etc/systemd/system/process-control-shadow.service"])
        box.run(["run-job", "reload"], check=False)


def test_a_non_member_is_refused_by_the_socket_and_by_its_credentials(box: SystemdBox) -> None:
    stat = box.run(["stat", "-c", "%U %G %a", SOCKET]).stdout.split()
    assert stat == ["root", GROUP, "660"]
    code, _out, err = as_user(box, "outsider", "python3", CLIENT, "send",
                              request("run", job="hello", slow_start=False))
    assert code != 0 and "PermissionError" in err
    code, _out, err = as_user(box, "outsider", "run-job", "run", "hello")
    assert code == 2 and err == (
        f"run-job: running a job needs root or membership in group '{GROUP}'\n")
    # past the socket's permissions (as if they were wrong), the credentials still refuse
    before = job_units(box)
    box.run(["chmod", "666", SOCKET])
    try:
        answer = raw(box, "outsider", "send", request("run", job="hello", slow_start=False))
    finally:
        box.run(["chmod", "660", SOCKET])
    assert refusal(answer) == f"run needs root or membership in group '{GROUP}'"
    assert job_units(box) == before
    assert f"uid={uid(box, 'outsider')} user=outsider" in audit_lines(box)[-1]


def test_a_flood_leaves_jobs_and_root_unaffected(box: SystemdBox) -> None:
    flood = box.run(["systemd-run", "--uid=dev", "--unit=flood", "--", "python3", CLIENT,
                     "flood", "1000", "20"])
    assert flood.returncode == 0
    box.run(["useradd", "--create-home", "--groups", GROUP, "dev2"])
    try:
        time.sleep(2)
        started = time.monotonic()
        done = box.run(["run-job", "run", "hello"], timeout=60)
        assert done.stdout == "hello-output\nsecond line\n"
        assert time.monotonic() - started < 20  # root goes to systemd itself
        box.systemctl("start", "process-control-ticker.service", check=False)
        assert box.show("process-control-ticker.service", "Result")["Result"] == "exit-code"
        # dev's requests past 16 at once end at once (systemd 252 counts
        # MaxConnectionsPerSource= for IP sockets only): another member gets through
        tries = []
        for _ in range(10):
            tries.append(as_user(box, "dev2", "run-job", "run", "hello"))
            if tries[-1][0] == 0:
                break
        assert tries[-1][:2] == (0, "hello-output\nsecond line\n"), tries
    finally:
        box.wait_until(lambda: box.show("flood.service", "ActiveState")["ActiveState"]
                       in ("inactive", "failed"), timeout=60, what="flood over")
    journal = box.run(["journalctl", "-u", "flood.service", "-o", "cat", "--no-pager"]).stdout
    assert "opened 1000 failed 0" in journal, journal
    assert any(f"refused: more than 16 requests of uid {uid(box, 'dev')} at once" in line
               for line in audit_lines(box))
    # the broker serves again, and no failed instance is left behind
    code, out, err = as_user(box, "dev", "run-job", "run", "hello")
    assert (code, out) == (0, "hello-output\nsecond line\n"), err
    failed = box.run(["systemctl", "list-units", "--state=failed", "--plain", "--no-legend",
                      "process-control-broker@*"]).stdout
    assert failed.strip() == ""


# -- the broker's process ----------------------------------------------------------------------


def test_the_broker_never_runs_as_root_and_cannot_read_the_system_journal(
    box: SystemdBox,
) -> None:
    box.run(["systemd-run", "--uid=dev", "--unit=holder", "--", "python3", CLIENT, "hold",
             "hello", "60"])
    try:
        def instance() -> str:
            return box.run(["systemctl", "list-units", "--plain", "--no-legend",
                            "process-control-broker@*"]).stdout.split("\n")[0].split(" ")[0]
        box.wait_until(lambda: instance() != "", what="a broker instance")
        pid = box.show(instance(), "MainPID")["MainPID"]
        status = dict(line.split(":", 1) for line in box.run(
            ["cat", f"/proc/{pid}/status"]).stdout.splitlines() if ":" in line)
        broker = uid(box, "process-control-broker")
        assert status["Uid"].split() == [str(broker)] * 4
        gid = int(box.run(["id", "-g", "process-control-broker"]).stdout)
        assert status["Gid"].split() == [str(gid)] * 4
        assert status["Groups"].split() in ([], [str(gid)])
        assert int(status["CapEff"], 16) == 0 and int(status["CapBnd"], 16) == 0
        assert status["NoNewPrivs"].strip() == "1"
        assert "web-secret" in box.run(["journalctl", "-u", "web.service", "-o", "cat",
                                        "--no-pager"]).stdout
        files = box.run(["sh", "-c", "ls /var/log/journal/*/system.journal "
                         "/run/log/journal/*/system.journal 2>/dev/null"], check=False)
        journal_file = files.stdout.split()[0]
        box.run(["head", "-c", "1", journal_file])  # root reads it
        # as the broker: in the broker's own mount namespace, and as its user alone
        for prefix in (["nsenter", f"--target={pid}", "--mount"], []):
            done = box.run([*prefix, "setpriv", f"--reuid={broker}", f"--regid={gid}",
                            "--clear-groups", "journalctl", "--no-pager", "-o", "cat",
                            "-u", "web.service"], check=False)
            assert "web-secret" not in done.stdout, prefix
            done = box.run([*prefix, "setpriv", f"--reuid={broker}", f"--regid={gid}",
                            "--clear-groups", "head", "-c", "1", journal_file], check=False)
            assert done.returncode != 0, prefix
    finally:
        box.systemctl("stop", "holder.service", check=False)


def test_the_brokers_sandbox(box: SystemdBox) -> None:
    done = box.run(["systemd-analyze", "security", "--no-pager",
                    "process-control-broker@x.service"])
    level = re.search(r"Overall exposure level for \S+: ([0-9.]+)", done.stdout)
    assert level is not None and float(level.group(1)) <= 1.0, done.stdout
    assert box.show("process-control-broker@x.service", "User")["User"] == (
        "process-control-broker")
