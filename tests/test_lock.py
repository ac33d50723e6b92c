"""The job lock: one holder at a time, freed when the holder dies, never
fooled by a PID left in the file."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pc_systemd.cron import lock

# A process that takes the lock, says so, then waits to be killed; with
# "spawn" it first starts a `sleep` that would inherit the lock if it could.
HOLDER = textwrap.dedent(
    """
    import subprocess, sys, time
    from pc_systemd.cron import lock
    held = lock.acquire(sys.argv[1])
    if sys.argv[2] == "spawn":
        print(subprocess.Popen(["sleep", "300"], close_fds=False).pid)
    print("locked", flush=True)
    time.sleep(300)
    """
)


def start_holder(path: Path, spawn: bool = False) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), "spawn" if spawn else "-"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    said: list[str] = []
    while not said or said[-1] != "locked":
        line = proc.stdout.readline()
        assert line, "the holder exited before taking the lock"
        said.append(line.strip())
    return proc, said


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def test_second_acquire_fails_and_names_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "job.lock"
    with lock.acquire(str(path)):
        # Another open file description conflicts even in the same process.
        with pytest.raises(lock.LockHeld) as held:
            lock.acquire(str(path), patience=0)
        assert held.value.pid == os.getpid()
        assert lock.holder(str(path)) == lock.Holder(os.getpid())
        assert path.read_text() == f"{os.getpid()}\n"


def test_release_frees_the_lock_and_empties_the_file(tmp_path: Path) -> None:
    path = tmp_path / "job.lock"
    lock.acquire(str(path)).release()
    assert lock.holder(str(path)) is None
    assert path.read_text() == ""  # nobody reads a finished run's PID as running
    assert path.exists()  # never unlinked: see the module docstring
    lock.acquire(str(path)).release()


def test_the_lock_is_freed_when_its_holder_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "job.lock"
    proc, _ = start_holder(path)
    try:
        assert lock.holder(str(path)) == lock.Holder(proc.pid)
        with pytest.raises(lock.LockHeld):
            lock.acquire(str(path), patience=0)
    finally:
        kill(proc)
    assert lock.holder(str(path)) is None
    with lock.acquire(str(path), patience=0):
        pass


def test_a_pid_left_in_the_file_is_not_a_holder(tmp_path: Path) -> None:
    # PID 1 is alive: the original's PID file would have refused to run.
    path = tmp_path / "job.lock"
    path.write_text("1\n")
    assert lock.holder(str(path)) is None
    with lock.acquire(str(path), patience=0):
        assert path.read_text() == f"{os.getpid()}\n"


def test_children_of_the_holder_do_not_keep_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "job.lock"
    proc, said = start_holder(path, spawn=True)
    sleeper = int(said[0])
    try:
        kill(proc)
        assert Path(f"/proc/{sleeper}").exists()  # still running, without the lock
        assert lock.holder(str(path)) is None
        lock.acquire(str(path), patience=0).release()
    finally:
        os.kill(sleeper, signal.SIGKILL)


def test_a_status_probe_never_makes_a_run_fail(tmp_path: Path) -> None:
    """holder() takes the lock shared for an instant; a run starting in
    that instant must wait it out, not report the job as running."""
    path = tmp_path / "job.lock"
    path.touch()
    probe = subprocess.Popen(
        [sys.executable, "-c",
         "import sys\nfrom pc_systemd import lock\nprint(flush=True)\n"
         "while True: lock.holder(sys.argv[1])",
         str(path)],
        stdout=subprocess.PIPE,
    )
    try:
        assert probe.stdout is not None
        probe.stdout.readline()  # probing from now on
        # Without the retry, a few in a hundred of these fail here.
        for _ in range(1000):
            lock.acquire(str(path)).release()
    finally:
        probe.kill()
        probe.wait()


def test_a_symlink_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.write_text("keep me\n")
    (tmp_path / "job.lock").symlink_to(target)
    with pytest.raises(OSError):
        lock.acquire(str(tmp_path / "job.lock"))
    assert target.read_text() == "keep me\n"


# -- other users must not be able to take our locks ------------------------------

# Opens a file read-only, as anyone may open a world-readable file, and
# holds an flock on it until killed.
SQUATTER = textwrap.dedent(
    """
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("locked", flush=True)
    time.sleep(300)
    """
)


def squat(path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", SQUATTER, str(path)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
    return proc


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_lock_files_are_created_for_their_owner_only(tmp_path: Path) -> None:
    with lock.acquire(str(tmp_path / "job.lock")):
        pass
    with lock.held(str(tmp_path / "job.yaml.lock")):
        pass
    assert mode(tmp_path / "job.lock") == mode(tmp_path / "job.yaml.lock") == 0o600


@pytest.mark.parametrize("take", ["acquire", "held"])
def test_a_lock_file_left_open_to_others_is_replaced_under_its_squatter(
    tmp_path: Path, take: str
) -> None:
    """A world-readable lock file from before may be open, and locked, in
    anyone's process: a chmod does not reach that descriptor."""
    path = tmp_path / "job.lock"
    path.touch(mode=0o644)
    old = path.stat().st_ino
    squatter = squat(path)
    try:
        started = time.monotonic()
        if take == "acquire":
            lock.acquire(str(path)).release()
        else:
            with lock.held(str(path)):
                pass
        assert time.monotonic() - started < 2 * lock.PATIENCE
        assert path.stat().st_ino != old and mode(path) == 0o600
        with lock.acquire(str(path), patience=0):  # the squatter holds nothing now
            pass
    finally:
        kill(squatter)


def test_a_free_lock_file_open_to_others_is_replaced_too(tmp_path: Path) -> None:
    path = tmp_path / "job.lock"
    path.touch(mode=0o666)
    old = path.stat().st_ino
    with lock.acquire(str(path), patience=0):
        assert path.stat().st_ino != old and mode(path) == 0o600
        assert lock.holder(str(path)) == lock.Holder(os.getpid())


def test_a_run_of_ours_holding_an_old_lock_file_is_still_a_holder(tmp_path: Path) -> None:
    path = tmp_path / "job.lock"
    proc, _ = start_holder(path)
    try:
        path.chmod(0o644)  # as an older version left it, its run still going
        with pytest.raises(lock.LockHeld) as held:
            lock.acquire(str(path))
        assert held.value.pid == proc.pid
    finally:
        kill(proc)


def test_a_short_lock_held_too_long_is_one_line_not_a_hang(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml.lock"
    path.touch(mode=0o600)
    squatter = squat(path)
    try:
        started = time.monotonic()
        with pytest.raises(lock.LockHeld) as held, lock.held(str(path), patience=0.5):
            pass
        assert 0.5 <= time.monotonic() - started < 1.5
        assert str(held.value) == f"{path}: held by another process for more than 0.5 s"
    finally:
        kill(squatter)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_a_lock_file_of_another_user_cannot_be_protected(tmp_path: Path) -> None:
    path = tmp_path / "job.lock"
    path.touch(mode=0o644)
    os.chown(path, 65534, 65534)
    for take in (lambda: lock.acquire(str(path)), lambda: lock.held(str(path)).__enter__()):
        with pytest.raises(OSError) as refused:
            take()
        assert str(refused.value) == (f"{path}: owned by uid 65534, not by uid 0: "
                                      "the lock cannot be protected")


def test_a_fifo_is_not_a_lock_file(tmp_path: Path) -> None:
    path = tmp_path / "job.lock"
    os.mkfifo(path)
    with pytest.raises(OSError, match="not a regular file"):
        lock.acquire(str(path))
    assert lock.holder(str(path)) is None
