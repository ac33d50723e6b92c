"""The container harness itself, against a real systemd in a real container."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.systemd_box import (
    BASE_ROOT,
    CHECKOUT,
    BoxBootError,
    BoxCommandError,
    SystemdBox,
    _remove_cgroup,
    _unified_cgroup,
    checkout_box,
    host_mounts_under,
    require_systemd_box,
    resolve_in_root,
)

TESTS_DIR = Path(__file__).resolve().parent


def _gone(pid: int) -> bool:
    """No such process, or only a zombie nobody has reaped yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


def assert_torn_down(base: Path, *pids: int) -> None:
    for pid in pids:
        assert _gone(pid), f"process {pid} still alive"
    # Only our own base: other boxes (other tests, other engineers) may be up.
    assert host_mounts_under(base) == []
    assert not base.exists()


@pytest.fixture(scope="module")
def box() -> Iterator[SystemdBox]:
    with checkout_box() as booted:
        yield booted


# -- without a container -------------------------------------------------------


def test_missing_prerequisites_fail_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"needs root.*CI is set"):
        require_systemd_box()


def test_missing_prerequisites_skip_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="needs root"):
        require_systemd_box()


def test_symlinks_resolve_inside_the_root(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "usr/share").mkdir(parents=True)
    (tmp_path / "etc/abs").symlink_to("/usr/share")
    (tmp_path / "etc/rel").symlink_to("../usr")
    assert str(resolve_in_root(tmp_path, "/etc/abs/x")) == "/usr/share/x"
    assert str(resolve_in_root(tmp_path, "/etc/rel/share")) == "/usr/share"
    assert str(resolve_in_root(tmp_path, "/../../etc")) == "/etc"


# -- one shared container ---------------------------------------------------------


@pytest.mark.systemd
def test_boots_to_running(box: SystemdBox) -> None:
    assert box.run(["systemctl", "is-system-running"], check=False).stdout.strip() in {
        "running",
        "degraded",
    }
    assert box.boot_seconds is not None
    print(f"\n{box.name}: booted in {box.boot_seconds:.2f} s")
    assert box.boot_seconds < box.boot_timeout


@pytest.mark.systemd
def test_systemd_run_as_nobody(box: SystemdBox) -> None:
    result = box.run(
        ["systemd-run", "--wait", "--pipe", "--quiet", "-p", "User=nobody", "id", "-u"]
    )
    assert result.stdout.strip() == "65534"


@pytest.mark.systemd
def test_run_as_user(box: SystemdBox) -> None:
    result = box.run(["sh", "-c", 'id -u; echo "$HOME"'], user="nobody")
    assert result.stdout.splitlines() == ["65534", "/nonexistent"]


@pytest.mark.systemd
def test_failed_command_reports_everything(box: SystemdBox) -> None:
    with pytest.raises(BoxCommandError) as caught:
        box.run(["sh", "-c", "echo to-out; echo to-err >&2; exit 3"])
    assert caught.value.returncode == 3
    message = str(caught.value)
    for part in ("sh -c", "exited with 3", "to-out", "to-err", box.name):
        assert part in message
    assert box.run(["false"], check=False).returncode == 1


@pytest.mark.systemd
def test_timeout_kills_the_command_inside(box: SystemdBox) -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        box.run(["sleep", "37"], timeout=0.5)
    # nsenter forks the command into the container's PID namespace; it must
    # not outlive the timeout.
    box.wait_until(
        lambda: box.run(["pgrep", "-fx", "sleep 37"], check=False).returncode == 1,
        timeout=5,
        what="sleep 37 gone",
    )


@pytest.mark.systemd
def test_write_file_is_visible_inside(box: SystemdBox) -> None:
    box.write_file("/etc/pc-test/probe.conf", "hello\n", mode=0o640)
    assert box.run(["cat", "/etc/pc-test/probe.conf"]).stdout == "hello\n"
    assert box.run(["stat", "-c", "%a %U", "/etc/pc-test/probe.conf"]).stdout == "640 root\n"
    # The container's own /tmp (a tmpfs the host overlay does not see) works too.
    box.write_file("/tmp/deep/dir/blob", b"\x00\x01")
    assert box.run(["od", "-An", "-tx1", "/tmp/deep/dir/blob"]).stdout.split() == ["00", "01"]


@pytest.mark.systemd
def test_host_side_path_is_visible_inside_at_once(box: SystemdBox) -> None:
    host = box.path("/etc/pc-test-host-side")
    assert host.is_relative_to(box.root)
    host.write_text("from the host\n")
    assert box.run(["cat", "/etc/pc-test-host-side"]).stdout == "from the host\n"
    assert not Path("/etc/pc-test-host-side").exists()  # the host's /etc is untouched
    with pytest.raises(ValueError, match="own mount /tmp"):
        box.path("/tmp/x")


@pytest.mark.systemd
def test_read_only_bind(box: SystemdBox) -> None:
    inside = str(TESTS_DIR / "systemd_box.py")
    assert box.run(["cat", inside]).stdout == (TESTS_DIR / "systemd_box.py").read_text()
    touch = box.run(["touch", str(CHECKOUT / "pc-test-probe")], check=False)
    assert touch.returncode != 0
    assert "Read-only file system" in touch.stderr
    assert not (CHECKOUT / "pc-test-probe").exists()


@pytest.mark.systemd
def test_show_and_journal(box: SystemdBox) -> None:
    unit = "pc-test-probe.service"
    # The sleep keeps the process (and its cgroup) alive while journald tags
    # its lines with the run's invocation ID; see SystemdBox.journal.
    box.write_file(
        f"/etc/systemd/system/{unit}",
        "[Service]\nType=oneshot\n"
        "ExecStart=/bin/sh -c 'cat /etc/pc-test-msg; sleep 0.3; echo end'\n",
    )
    box.systemctl("daemon-reload")
    runs = 3
    for n in range(runs):
        box.write_file("/etc/pc-test-msg", f"run {n}\n")
        box.systemctl("start", unit)
        props = box.show(unit, "Result", "ActiveState", "InvocationID")
        # systemd clears InvocationID when the unit goes inactive.
        assert props == {"Result": "success", "ActiveState": "inactive", "InvocationID": ""}
    assert box.journal(unit, manager_messages=False) == [
        line for n in range(runs) for line in (f"run {n}", "end")
    ]
    invocations = box.invocations(unit)
    assert len(invocations) == runs
    for n, invocation in enumerate(invocations):
        assert box.journal(unit, invocation, manager_messages=False) == [f"run {n}", "end"]
        whole_run = box.journal(unit, invocation)
        assert f"Starting {unit}..." in whole_run
        assert f"Finished {unit}." in whole_run


@pytest.mark.systemd
def test_pystemd_over_the_system_bus(box: SystemdBox) -> None:
    code = textwrap.dedent(
        """
        from pystemd.systemd1 import Unit
        unit = Unit(b"systemd-journald.service")
        unit.load()
        print(unit.Unit.ActiveState.decode())
        """
    )
    result = box.run([sys.executable, "-c", code])
    assert result.stdout.strip() == "active"
    assert box.show("systemd-journald.service", "ActiveState") == {"ActiveState": "active"}


# -- lifecycle -------------------------------------------------------------------


@pytest.mark.systemd
def test_teardown_and_two_boxes_in_sequence() -> None:
    require_systemd_box()
    for _ in range(2):
        with SystemdBox() as box:
            assert box.systemctl("is-system-running", check=False).stdout.strip() in {
                "running",
                "degraded",
            }
            pids = (box.nspawn_pid, box.init_pid)
            assert box.base.parent == BASE_ROOT
        assert_torn_down(box.base, *pids)
        # Kept after teardown, and shows the shutdown was a clean one.
        assert "Halting system." in box.console_log()


@pytest.mark.systemd
def test_two_boxes_at_once_do_not_interfere() -> None:
    require_systemd_box()
    with SystemdBox() as one, SystemdBox() as two:
        assert one.name != two.name
        assert one.base != two.base
        one.write_file("/etc/pc-test-which", "one\n")
        assert two.run(["test", "-e", "/etc/pc-test-which"], check=False).returncode == 1
        assert one.run(["cat", "/etc/pc-test-which"]).stdout == "one\n"
    assert_torn_down(one.base, one.nspawn_pid)
    assert_torn_down(two.base, two.nspawn_pid)


@pytest.mark.systemd
def test_two_boxes_at_once_have_cgroups_of_their_own() -> None:
    # A unit of one box named as a unit of the other: stopped in one, it
    # is gone there (its cgroup removed) while the other's still runs.
    # When the boxes shared the container's cgroups, the stopped unit's
    # cgroup held the other's process: systemd could not kill ("Input/
    # output error") nor remove it, and the unit never unloaded.
    require_systemd_box()
    with SystemdBox() as one, SystemdBox() as two:
        for box in (one, two):
            box.run(["systemd-run", "--unit=pc-twin", "--collect", "sleep", "300"])
        one.systemctl("stop", "pc-twin.service")
        one.wait_until(lambda: one.show("pc-twin.service", "LoadState")["LoadState"]
                       == "not-found", timeout=20, what="one's stopped unit unloaded")
        assert two.show("pc-twin.service", "ActiveState") == {"ActiveState": "active"}
        cgroups = [box._cgroup for box in (one, two)]
    assert all(path is not None and not path.exists() for path in cgroups), cgroups


@pytest.mark.systemd
def test_exception_in_the_with_block_still_tears_down() -> None:
    require_systemd_box()
    box = SystemdBox()
    with pytest.raises(RuntimeError, match="boom"), box:
        pids = (box.nspawn_pid, box.init_pid)
        raise RuntimeError("boom")
    assert_torn_down(box.base, *pids)


@pytest.mark.systemd
def test_failed_start_tears_down_and_shows_the_console() -> None:
    require_systemd_box()
    box = SystemdBox(binds_ro=[Path("/nonexistent-pc-test")])
    with pytest.raises(BoxBootError, match="nspawn exited") as caught:
        box.__enter__()
    assert "nonexistent-pc-test" in str(caught.value)
    assert_torn_down(box.base, box.nspawn_pid)


@pytest.mark.systemd
def test_boot_timeout_tears_down() -> None:
    require_systemd_box()
    box = SystemdBox(boot_timeout=0.3)
    with pytest.raises(BoxBootError, match=r"boot timeout 0.3 s"):
        box.__enter__()
    assert_torn_down(box.base, box.nspawn_pid)


# A pytest run holding a box, to interrupt from outside.
_HELD_TEST = """
import time

from collections.abc import Iterator

import pytest

from tests.systemd_box import SystemdBox, checkout_box


@pytest.fixture(scope="module")
def box() -> Iterator[SystemdBox]:
    with checkout_box() as booted:
        yield booted


def test_hold(box: SystemdBox) -> None:
    print("BOX", box.nspawn_pid, box.init_pid, box.base, flush=True)
    time.sleep(120)
"""


def _start_held_pytest(tmp_path: Path) -> tuple[subprocess.Popen[str], int, int, Path]:
    (tmp_path / "test_hold.py").write_text(_HELD_TEST)
    holder = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-s", "-p", "no:cacheprovider", "test_hold.py"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(CHECKOUT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert holder.stdout is not None
    seen = []
    for line in holder.stdout:
        seen.append(line)
        if "BOX " in line:
            nspawn, init, base = line.split("BOX ", 1)[1].split()
            return holder, int(nspawn), int(init), Path(base)
    holder.wait()
    raise AssertionError("held pytest run never booted its box:\n" + "".join(seen))


@pytest.mark.systemd
def test_sigterm_to_pytest_tears_down(tmp_path: Path) -> None:
    require_systemd_box()
    holder, nspawn, init, base = _start_held_pytest(tmp_path)
    holder.send_signal(signal.SIGTERM)
    out, _ = holder.communicate(timeout=60)
    assert holder.returncode == pytest.ExitCode.INTERRUPTED, out
    assert "KeyboardInterrupt" in out
    assert_torn_down(base, nspawn, init)


_PR_SET_CHILD_SUBREAPER = 36


@pytest.mark.systemd
def test_sigkill_to_pytest_still_stops_the_container(tmp_path: Path) -> None:
    require_systemd_box()
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    # Adopt the orphaned nspawn, so that we can reap it rather than leave a
    # zombie for the host's init.
    prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    holder, nspawn, init, base = _start_held_pytest(tmp_path)
    try:
        holder.kill()
        holder.communicate(timeout=10)
        # PR_SET_PDEATHSIG hands nspawn a SIGTERM; it shuts the container down.
        deadline = time.monotonic() + 20
        while not (_gone(nspawn) and _gone(init)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _gone(nspawn)
        assert _gone(init)
    finally:
        prctl(_PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(nspawn, os.WNOHANG)
        # Nobody was left to unmount: clean up this test's own base only,
        # and the box's cgroup (named as its base, under ours: the held
        # pytest's).
        for mount_point in sorted(host_mounts_under(base), key=len, reverse=True):
            subprocess.run(["umount", "--lazy", mount_point], check=True)
        if base.exists():
            base.rmdir()
        parent = _unified_cgroup()
        if parent is not None:
            _remove_cgroup(parent / base.name)
