"""Boot a real systemd in a throw-away container, for tests.

A test that only compares strings with what we believe systemd does is not
evidence that systemd does it, so tests that matter hand units to a real
systemd booted with ``systemd-nspawn`` (see
``/work/shared/docs/real-systemd.md`` for the recipe this follows): the
host's own Debian 12 (systemd 252), or a Debian 13 root (systemd 257) that
tests/debian_root.py builds, given as ``lower``.

Each :class:`SystemdBox` gets its own base directory ``/run/pc-test/<name>``:
a tmpfs holding an overlay whose lower layer is the host's ``/`` (or
``lower``). So the container has everything installed there, and everything it writes
lands in the tmpfs and vanishes at teardown; the host's own files are never
written. :func:`checkout_box` binds the checkout read-only on top, because
the overlay's lower layer must not change under a mounted overlay (the
kernel calls that undefined behaviour) while the tests need the live tree.

A test module boots one box (about 2.5 s) for all its tests::

    pytestmark = pytest.mark.systemd  # the marker, registered in pyproject.toml

    @pytest.fixture(scope="module")
    def box() -> Iterator[SystemdBox]:
        with checkout_box() as booted:
            booted.write_file("/etc/systemd/system/x.service", "...")
            booted.systemctl("daemon-reload")
            yield booted

:func:`checkout_box` (and :func:`require_systemd_box`, for a bare
:class:`SystemdBox`) skips the test when the host cannot boot a box --
except under CI (``CI`` set in the environment), where it fails: CI must
never silently skip the real tests.

Teardown (``__exit__``, and any failure during ``__enter__``): SIGTERM to
the nspawn process (nspawn then shuts the container down cleanly), SIGKILL to
the container's PID 1 and to nspawn if that takes too long, unmount the
overlay and tmpfs (lazily if still busy), remove the box's cgroup (each box
has one of its own under the test's, in the unified hierarchy, so that two
boxes up at once never share the container's cgroups) and the base
directory. Every
kill is by the PID this object started or found -- never by name. Against an
interrupted run: SIGTERM/SIGHUP are turned into ``KeyboardInterrupt`` (when
nobody else handles them), so pytest stops the session and tears its fixtures
down as on Ctrl-C; an ``atexit`` hook tears down any box still up; and nspawn
gets ``PR_SET_PDEATHSIG`` so even a SIGKILLed pytest takes its containers
down (only the mounts are then left).

Note that nspawn mounts a fresh tmpfs on ``/tmp`` inside the container: a
host path under ``/tmp`` (such as a virtual environment) is only visible
inside if it is bind-mounted.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import errno
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import FrameType, TracebackType
from typing import TypeVar

import pytest

from tests.user_install import install_in_box, installation, wheel

CHECKOUT = Path(__file__).resolve().parent.parent
BASE_ROOT = Path("/run/pc-test")

# Commands run through nsenter inherit our environment; give them a clean,
# predictable one instead of the host's (which would leak e.g. PWD, VIRTUAL_ENV).
_CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_RUNNING_STATES = frozenset({"running", "degraded"})
_CONSOLE_TAIL_LINES = 40
_STOP_TIMEOUT = 10.0  # seconds for a clean shutdown
_REBOOT_STOP_TIMEOUT = 90.0  # ... before a reboot, where it must be clean
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_PR_SET_PDEATHSIG = 1

T = TypeVar("T")


class BoxError(RuntimeError):
    """The box could not be started or torn down."""


class BoxBootError(BoxError):
    """nspawn exited, or systemd did not come up in time."""


class BoxCommandError(subprocess.CalledProcessError):
    """A command inside the box failed; the message carries all its output."""

    def __init__(
        self,
        returncode: int,
        cmd: Sequence[str],
        output: str,
        stderr: str,
        *,
        box: str,
        user: str | None,
    ) -> None:
        super().__init__(returncode, list(cmd), output, stderr)
        self.box = box
        self.user = user

    def __str__(self) -> str:
        who = f" as {self.user}" if self.user else ""
        return (
            f"command in {self.box}{who} exited with {self.returncode}: "
            f"{shlex.join(self.cmd)}\n"
            f"--- stdout ---\n{self.output}"
            f"--- stderr ---\n{self.stderr}"
        )


@dataclass(frozen=True)
class _Account:
    """A passwd entry as the container (not the host) sees it."""

    name: str
    uid: int
    gid: int
    home: str
    shell: str

    @classmethod
    def parse(cls, line: str) -> _Account:
        name, _pw, uid, gid, _gecos, home, shell = line.rstrip("\n").split(":")
        return cls(name, int(uid), int(gid), home, shell)


@dataclass(frozen=True)
class _JournalEntry:
    message: str
    invocation: str  # "" when journald did not tag the entry with a run
    stream: str  # _STREAM_ID: one per process's stdout connection; "" if none
    from_manager: bool  # logged by systemd about the unit, not by the unit


def _journal_text(value: object) -> str:
    """A MESSAGE field from journalctl's JSON: a string, or bytes as a number list."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return bytes(value).decode(errors="replace")
    return ""


@dataclass(frozen=True)
class _ProcessId:
    """A PID plus its start time, so a recycled PID is never signalled."""

    pid: int
    start_time: int

    @classmethod
    def of(cls, pid: int) -> _ProcessId | None:
        stat = _read_stat(pid)
        return None if stat is None else cls(pid, int(stat[19]))

    def alive(self) -> bool:
        return _ProcessId.of(self.pid) == self

    def kill(self, sig: signal.Signals) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)


def _read_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (field 3 onwards)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may itself contain ") ".
    return raw[raw.rindex(")") + 2 :].split()


def _comm(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except (FileNotFoundError, ProcessLookupError):
        return None


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = _read_stat(int(entry.name))
            if stat is not None and int(stat[1]) == pid:
                found.append(int(entry.name))
    return found


def _mount_points(mountinfo: Path) -> list[str]:
    points = []
    for line in mountinfo.read_text().splitlines():
        # Field 5 is the mount point, with space, tab, newline and backslash
        # octal-escaped.
        raw = line.split()[4]
        points.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), raw))
    return points


def host_mounts_under(prefix: Path) -> list[str]:
    """Mount points in the host's (our) mount namespace at or below prefix."""
    top = str(prefix)
    return [
        p
        for p in _mount_points(Path("/proc/self/mountinfo"))
        if p == top or p.startswith(top + "/")
    ]


def resolve_in_root(root: Path, path: str) -> PurePosixPath:
    """Resolve path as if chrooted at root, returning the container path.

    Following symlinks on the host would let an absolute link inside the
    container (Debian's /var/run -> /run, say) point at the host's files.
    """
    if not path.startswith("/"):
        raise ValueError(f"container path must be absolute: {path!r}")
    pending = deque(PurePosixPath(path).parts[1:])
    resolved: list[str] = []
    hops = 0
    while pending:
        part = pending.popleft()
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root.joinpath(*resolved, part)
        if not candidate.is_symlink():
            resolved.append(part)
            continue
        hops += 1
        if hops > 40:
            raise OSError(f"too many levels of symbolic links resolving {path!r}")
        target = PurePosixPath(os.readlink(candidate))
        if target.is_absolute():
            resolved = []
            pending.extendleft(reversed(target.parts[1:]))
        else:
            pending.extendleft(reversed(target.parts))
    return PurePosixPath("/", *resolved)


def _die_with_parent(prctl: Callable[..., int]) -> None:
    """Run in the nspawn child before exec: SIGTERM it if pytest dies.

    SIGTERM is what makes nspawn shut its container down, so even a pytest
    killed with SIGKILL (no atexit, no finally) leaves no container running.
    """
    prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


def _unified_cgroup() -> Path | None:
    """This process's cgroup directory in the unified (v2) hierarchy, or
    None where there is none to be found (no cgroup2 mount, or a cgroup
    outside this namespace's view)."""
    mount = None
    with open("/proc/self/mountinfo", encoding="utf-8") as mounts:
        for line in mounts:
            left, _, right = line.partition(" - ")
            if right.split()[:1] == ["cgroup2"]:
                mount = left.split()[4]
                break
    with open("/proc/self/cgroup", encoding="utf-8") as cgroups:
        own = next((line[3:].strip() for line in cgroups if line.startswith("0::")), None)
    if mount is None or own is None or ".." in own.split("/"):
        return None
    path = Path(mount) / own.lstrip("/")
    return path if path.is_dir() else None


def _join_cgroup(procs: bytes) -> None:
    """Run in the nspawn child before exec: move it into the box's own cgroup
    (its ``cgroup.procs``), so that the container's cgroups are the box's
    alone. Only system calls: no import, no allocation of note."""
    fd = os.open(procs, os.O_WRONLY)
    try:
        os.write(fd, b"0")
    finally:
        os.close(fd)


def _remove_cgroup(top: Path) -> None:
    """Remove a box's cgroup and those the container made in it, deepest
    first, once their processes are gone (which may take a moment after
    nspawn exited)."""
    attempts = 50
    for attempt in range(attempts):
        try:
            for path, _dirs, _files in os.walk(top, topdown=False):
                os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY or attempt == attempts - 1:
                raise
            time.sleep(0.1)


def _interrupt_on_signal(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def _install_signal_teardown() -> None:
    """Turn SIGTERM/SIGHUP into KeyboardInterrupt, so everything unwinds.

    Not SystemExit: pytest reports that as one failed test and carries on,
    whereas a KeyboardInterrupt ends the session and runs fixture teardown.
    Only where nobody has installed a handler: we must not replace one.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, _interrupt_on_signal)


class SystemdBox:
    """A systemd booted in a container; a context manager, usable once."""

    def __init__(
        self,
        binds_ro: Sequence[Path] = (),
        *,
        boot_timeout: float = 30.0,
        lower: Path = Path("/"),
        prepare: Sequence[Callable[[SystemdBox], None]] = (),
    ) -> None:
        for bind in binds_ro:
            # nspawn splits --bind=SRC:DST on ':'; refuse rather than escape.
            if not Path(bind).is_absolute() or ":" in str(bind):
                raise ValueError(f"bind path must be absolute and without ':': {bind}")
        self.binds_ro = tuple(Path(p) for p in binds_ro)
        self.boot_timeout = boot_timeout
        # The overlay's lower layer: the host's own root (Debian 12 here), or
        # another release's (tests/debian_root.py), never written.
        if not lower.is_absolute() or ":" in str(lower) or "," in str(lower):
            raise ValueError(f"lower root must be absolute, without ':' or ',': {lower}")
        self.lower = lower
        self.prepare = tuple(prepare)  # run once it has booted, before __enter__ returns
        # Unique per process and per box, so concurrent boxes (and concurrent
        # pytest runs) never share a machine name or a base directory.
        self.name = f"pc-test-{os.getpid()}-{secrets.token_hex(4)}"
        self.base = BASE_ROOT / self.name
        self.root = self.base / "root"
        self.boot_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._init: _ProcessId | None = None
        self._mounted: list[Path] = []
        self._made_base = False
        # The box's own cgroup, under this process's in the unified hierarchy:
        # nspawn (--keep-unit, no systemd on the host) makes the container's
        # cgroups under its own, so boxes started from one cgroup would share
        # them (a unit of one box named as another's: systemd could neither
        # stop nor remove it). None: nspawn stays in ours.
        self._cgroup: Path | None = None
        self._final_console: str | None = None
        self._used = False

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> SystemdBox:
        if self._used:
            raise BoxError(f"{self.name} was already used; make a new SystemdBox")
        self._used = True
        _install_signal_teardown()
        atexit.register(self.close)
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def nspawn_pid(self) -> int:
        if self._proc is None:
            raise BoxError(f"{self.name} is not started")
        return self._proc.pid

    @property
    def init_pid(self) -> int:
        """PID (in the host's PID namespace) of the container's systemd."""
        if self._init is None:
            raise BoxError(f"{self.name} is not started")
        return self._init.pid

    def _start(self) -> None:
        started = time.monotonic()
        BASE_ROOT.mkdir(parents=True, exist_ok=True)
        self.base.mkdir(mode=0o700)  # fails if it exists: never adopt another box's dir
        self._made_base = True
        self._mount(self.base, "-t", "tmpfs", "-o", "mode=0700", "tmpfs")
        self._mounted.append(self.base)
        for sub in ("upper", "work", "root"):
            (self.base / sub).mkdir()
        # The overlay's root takes its mode from the upper dir; the container's
        # / must be 0755 or unprivileged services cannot reach anything.
        (self.base / "upper").chmod(0o755)
        lower = f"lowerdir={self.lower},upperdir={self.base}/upper,workdir={self.base}/work"
        self._mount(self.root, "-t", "overlay", "-o", lower, "overlay")
        self._mounted.append(self.root)
        parent = _unified_cgroup()
        if parent is not None:
            try:
                (parent / self.name).mkdir()
                self._cgroup = parent / self.name
            except OSError:
                pass  # not ours to divide: the boxes share this one, as before
        self._boot(started)

    def reboot(self) -> None:
        """Shut the container down cleanly and boot it again on the same
        root: what it wrote (the persistent journal among it) is kept,
        /run and /tmp and mounts made inside are not, as on a real reboot."""
        proc = self._proc
        if proc is None or self.boot_seconds is None:
            raise BoxError(f"{self.name} is not running")
        proc.send_signal(signal.SIGTERM)
        try:
            # as long as systemd's own default stop timeout (90 s): Debian 13
            # once took over 30 s here, unseen since (its console is shown)
            proc.wait(_REBOOT_STOP_TIMEOUT)
        except subprocess.TimeoutExpired as err:
            tail = self.console_log().splitlines()[-_CONSOLE_TAIL_LINES:]
            raise BoxError(f"{self.name}: no clean shutdown for the reboot; console log "
                           "tail:\n" + "\n".join(tail)) from err
        self._proc = None
        self._init = None
        self.boot_seconds = None
        self._boot(time.monotonic())

    def _boot(self, started: float) -> None:
        command = [
            "systemd-nspawn",
            "--quiet",
            f"--directory={self.root}",
            f"--machine={self.name}",
            "--boot",
            # Without a system bus on the host, nspawn exits at once ("Failed
            # to open system bus") unless told not to register or make a unit.
            "--register=no",
            "--keep-unit",
            "--private-network",
            *(f"--bind-ro={p}" for p in self.binds_ro),
        ]
        env = dict(os.environ, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY="1")
        # Looked up before the fork: loading a library in the child of a
        # threaded process can deadlock.
        prctl = ctypes.CDLL(None, use_errno=True).prctl
        procs = bytes(self._cgroup / "cgroup.procs") if self._cgroup is not None else None

        def before_exec() -> None:
            _die_with_parent(prctl)
            if procs is not None:
                _join_cgroup(procs)

        with open(self.base / "console.log", "ab") as console:
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                env=env,
                # Own session: a Ctrl-C on the terminal reaches pytest, which
                # tears down in order, not nspawn directly.
                start_new_session=True,
                preexec_fn=before_exec,
            )
        deadline = started + self.boot_timeout
        self._init = self._find_init(deadline)
        self._wait_running(deadline)
        self.boot_seconds = time.monotonic() - started
        for step in self.prepare:
            step(self)

    def _find_init(self, deadline: float) -> _ProcessId:
        while True:
            self._check_nspawn_alive()
            for child in _children(self.nspawn_pid):
                if _comm(child) == "systemd":
                    found = _ProcessId.of(child)
                    if found is not None:
                        return found
            if time.monotonic() >= deadline:
                raise self._boot_error("no systemd child of nspawn appeared")
            time.sleep(0.05)

    def _wait_running(self, deadline: float) -> None:
        state = ""
        while True:
            self._check_nspawn_alive()
            try:
                result = self._exec(["systemctl", "is-system-running"], timeout=5)
                state = result.stdout.decode(errors="replace").strip()
            except subprocess.TimeoutExpired:
                state = "(systemctl timed out)"
            if state in _RUNNING_STATES:
                return
            if time.monotonic() >= deadline:
                raise self._boot_error(f"systemd still {state!r}")
            time.sleep(0.1)

    def _check_nspawn_alive(self) -> None:
        assert self._proc is not None
        code = self._proc.poll()
        if code is not None:
            raise self._boot_error(f"systemd-nspawn exited with {code}")

    def _boot_error(self, why: str) -> BoxBootError:
        tail = self.console_log().splitlines()[-_CONSOLE_TAIL_LINES:]
        return BoxBootError(
            f"{self.name}: {why} (boot timeout {self.boot_timeout} s); console log tail:\n"
            + "\n".join(tail)
        )

    def close(self) -> None:
        """Tear down; idempotent, and safe on a partly started box."""
        errors: list[str] = []
        try:
            self._stop()
        except Exception as exc:
            errors.append(f"stopping nspawn: {exc}")
        if self._cgroup is not None:
            try:
                _remove_cgroup(self._cgroup)
                self._cgroup = None
            except OSError as exc:
                errors.append(f"removing cgroup {self._cgroup}: {exc}")
        # Kept past the unmount, shutdown messages included, for post-mortems.
        if self._proc is not None and self._final_console is None:
            with contextlib.suppress(OSError):
                self._final_console = self._read_console()
        for mount_point in list(reversed(self._mounted)):
            try:
                self._unmount(mount_point)
                self._mounted.remove(mount_point)
            except Exception as exc:
                errors.append(str(exc))
        if self._made_base and not self._mounted:
            try:
                self.base.rmdir()
                self._made_base = False
            except FileNotFoundError:
                self._made_base = False
            except OSError as exc:
                errors.append(f"removing {self.base}: {exc}")
        atexit.unregister(self.close)
        if errors:
            raise BoxError(f"{self.name}: teardown incomplete: " + "; ".join(errors))

    def _stop(self) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        if self.boot_seconds is not None:
            # SIGTERM makes nspawn send SIGRTMIN+3 to the container's systemd:
            # a clean shutdown, about 2 s here.
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(_STOP_TIMEOUT)
                return
            except subprocess.TimeoutExpired:
                pass
        # A box that never finished booting is not shut down politely: a PID 1
        # that has not yet installed its handler ignores SIGRTMIN+3, and we
        # would wait out _STOP_TIMEOUT for nothing.
        # Kill PID 1 first: that kills its whole PID namespace, whereas a
        # SIGKILLed nspawn would leave the container running, orphaned.
        if self._init is not None:
            self._init.kill(signal.SIGKILL)
        proc.kill()
        proc.wait(10)

    @staticmethod
    def _mount(target: Path, *args: str) -> None:
        subprocess.run(["mount", *args, str(target)], check=True, capture_output=True, text=True)

    def _unmount(self, target: Path) -> None:
        if str(target) not in host_mounts_under(target):
            return
        last = ""
        for _attempt in range(20):
            result = subprocess.run(["umount", str(target)], capture_output=True, text=True)
            if result.returncode == 0:
                return
            last = result.stderr.strip()
            time.sleep(0.1)
        # Still busy (a stray process with a cwd inside, say): detach it so
        # the path is gone; the kernel frees it when the last user leaves.
        result = subprocess.run(["umount", "--lazy", str(target)], capture_output=True, text=True)
        if result.returncode != 0:
            raise BoxError(f"umount {target}: {last}; lazy: {result.stderr.strip()}")

    # -- commands ----------------------------------------------------------

    def _exec(
        self,
        args: Sequence[str],
        *,
        input: bytes | None = None,
        timeout: float = 60,
        user: str | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        if isinstance(args, str):
            raise TypeError("args must be a list of arguments, not a string")
        account = self._account(user) if user is not None else None
        env = {
            "PATH": _CONTAINER_PATH,
            "LANG": "C.UTF-8",
            "HOME": account.home if account else "/root",
            "USER": account.name if account else "root",
            "LOGNAME": account.name if account else "root",
            "SHELL": account.shell if account else "/bin/sh",
        }
        argv = ["nsenter", f"--target={self.init_pid}", "--all"]
        if account is not None:
            # setpriv rather than runuser: no PAM session, nothing but the ids.
            argv += [
                "setpriv",
                f"--reuid={account.uid}",
                f"--regid={account.gid}",
                "--init-groups",
                "--",
            ]
        argv += args
        # Own process group, so a timeout kills the command inside as well as
        # nsenter (nsenter forks to enter the PID namespace).
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(input, timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            try:
                out, err = proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                # Something that left our process group still holds the pipes.
                proc.kill()
                proc.wait()
                out, err = b"", b""
            raise subprocess.TimeoutExpired(list(args), timeout, out, err) from None
        return subprocess.CompletedProcess(list(args), proc.returncode, out, err)

    def _account(self, user: str) -> _Account:
        result = self._exec(["getent", "passwd", user], timeout=10)
        if result.returncode != 0:
            raise BoxError(f"{self.name}: no user {user!r} in the container")
        return _Account.parse(result.stdout.decode())

    def run(
        self,
        args: Sequence[str],
        *,
        check: bool = True,
        input: str | bytes | None = None,
        timeout: float = 60,
        user: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside the container, as root or as user.

        The command gets a clean environment (PATH, LANG, HOME, USER, LOGNAME,
        SHELL), and / as its working directory. It runs in the
        container's namespaces but not in a unit: use systemd-run for that.
        """
        raw = self._exec(
            args,
            input=input.encode() if isinstance(input, str) else input,
            timeout=timeout,
            user=user,
        )
        out = raw.stdout.decode(errors="replace")
        err = raw.stderr.decode(errors="replace")
        if check and raw.returncode != 0:
            raise BoxCommandError(raw.returncode, args, out, err, box=self.name, user=user)
        return subprocess.CompletedProcess(list(args), raw.returncode, out, err)

    def systemctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(["systemctl", *args], check=check)

    def show(self, unit: str, *props: str) -> dict[str, str]:
        """Unit properties from systemctl show (all of them if none named)."""
        args = ["show", *(f"--property={p}" for p in props), "--", unit]
        result = self.systemctl(*args)
        pairs = (line.partition("=") for line in result.stdout.splitlines() if "=" in line)
        return {key: value for key, _eq, value in pairs}

    def journal(
        self, unit: str, invocation: str | None = None, *, manager_messages: bool = True
    ) -> list[str]:
        """Journal messages of unit (as ``journalctl -u``), one per line.

        In the journal's order, which is arrival order: systemd's "Starting
        ..." may come after the first line the unit printed.
        manager_messages=False drops systemd's own lines about the unit
        ("Starting ...", "...: Deactivated successfully.") and keeps only what
        the unit's processes logged.

        With invocation (an InvocationID), only that run's messages -- those
        journald tagged with it, plus untagged lines of an output stream that
        has a tagged line. journald 252 reads the ID from the unit's cgroup
        when a line arrives; for a process that has already exited it stores
        the line without it (1 in 20 runs of a oneshot ``echo`` here). Such a
        line is in journal(unit) but, alone in its stream, in no run's
        journal: a test that needs it per run should keep the process alive a
        moment after it prints.
        """
        entries = self._unit_entries(unit)
        if invocation is not None:
            streams = {e.stream for e in entries if e.stream and e.invocation == invocation}
            entries = [
                e
                for e in entries
                if e.invocation == invocation or (not e.invocation and e.stream in streams)
            ]
        lines = []
        for entry in entries:
            if manager_messages or not entry.from_manager:
                lines += entry.message.splitlines()
        return lines

    def invocations(self, unit: str) -> list[str]:
        """InvocationIDs of unit's runs, oldest first, from the journal.

        systemd 252 clears a unit's InvocationID property once it is inactive
        (a finished oneshot shows ``InvocationID=`` empty), so the journal is
        where a test finds the run it wants to look at. systemd's own messages
        about each run always carry its ID, so no run is missed.
        """
        seen: dict[str, None] = {}  # an ordered set
        for entry in self._unit_entries(unit):
            if entry.invocation:
                seen.setdefault(entry.invocation)
        return list(seen)

    def _unit_entries(self, unit: str) -> list[_JournalEntry]:
        # journald writes asynchronously; without a sync the last lines of a
        # unit that has just finished may not be in the files yet.
        # Every namespace: our job services log to their own (LogNamespace=),
        # systemd's records of them stay in the system journal.
        self.sync_journal()
        result = self.run(
            ["journalctl", "--namespace=*", "--quiet", "--no-pager", "--all", "--output=json",
             f"--unit={unit}"]
        )
        entries = []
        for line in result.stdout.splitlines():
            fields = json.loads(line)
            from_manager = fields.get("_PID") == "1" and fields.get("UNIT") == unit
            tag = "INVOCATION_ID" if from_manager else "_SYSTEMD_INVOCATION_ID"
            entries.append(
                _JournalEntry(
                    message=_journal_text(fields.get("MESSAGE")),
                    invocation=str(fields.get(tag) or ""),
                    stream=str(fields.get("_STREAM_ID") or ""),
                    from_manager=from_manager,
                )
            )
        return entries

    def sync_journal(self) -> None:
        """journald writes asynchronously: have the system's and the job
        services' journald (if it runs yet) write out what they hold."""
        self.run(["journalctl", "--sync"])
        self.run(["journalctl", "--namespace=process-control", "--sync"], check=False)

    @staticmethod
    def wait_until(
        predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.1, what: str = ""
    ) -> T:
        """Poll predicate until it returns something truthy, and return that."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                name = what or getattr(predicate, "__name__", repr(predicate))
                raise TimeoutError(f"{name}: not true within {timeout} s (last value {value!r})")
            time.sleep(interval)

    # -- files ---------------------------------------------------------------

    def write_file(
        self,
        path: str,
        content: str | bytes,
        mode: int = 0o644,
    ) -> None:
        """Create or replace a file inside the container, atomically.

        Written from inside (through nsenter), so it lands wherever the
        container sees that path: its /tmp, /run, or a read-write bind too,
        and symlinks resolve as they do inside. Parent directories are
        created (0755, root).
        """
        if not path.startswith("/"):
            raise ValueError(f"container path must be absolute: {path!r}")
        # Write to a temporary name and rename, so systemd (or a job) never
        # reads a half-written file.
        script = (
            'set -e; mkdir -p -- "$(dirname -- "$1")"; t="$1.pc-test-tmp"; '
            'cat > "$t"; chmod "$2" "$t"; mv -f -- "$t" "$1"'
        )
        self.run(["sh", "-c", script, "sh", path, format(mode, "o")], input=content, timeout=30)

    def path(self, p: str) -> Path:
        """Host path of a container path, in the overlay's merged root.

        Writes there are visible inside at once. Only the container's root
        filesystem is there: a path under one of its own mounts (/tmp, /run,
        /dev, a bind mount) raises ValueError, since the host path would be a
        different, invisible file. Symlinks are resolved inside the root, so
        an absolute link never leads to the host's files.
        """
        inside = resolve_in_root(self.root, p)
        if self._init is not None:
            points = _mount_points(Path(f"/proc/{self._init.pid}/mountinfo"))
            under = [m for m in points if m != "/" and inside.is_relative_to(m)]
            if under:
                raise ValueError(
                    f"{p} is on the container's own mount {max(under, key=len)}, "
                    "not on its root overlay; use run() or write_file()"
                )
        return self.root.joinpath(*inside.parts[1:])

    def console_log(self) -> str:
        """What the container printed on its console, as plain text."""
        if self._final_console is not None:
            return self._final_console
        try:
            return self._read_console()
        except FileNotFoundError:
            return ""

    def _read_console(self) -> str:
        raw = (self.base / "console.log").read_bytes().decode(errors="replace")
        # The console is a terminal stream: colours, and "\r\r\n" line ends.
        return _ANSI_ESCAPE.sub("", raw).replace("\r", "")


# -- pytest glue ---------------------------------------------------------------


def require_systemd_box() -> None:
    """Skip the test if the host cannot boot a box -- but fail it under CI."""
    missing = [] if os.geteuid() == 0 else ["root"]
    missing += [
        tool
        for tool in ("systemd-nspawn", "nsenter", "setpriv", "mount", "umount")
        if shutil.which(tool) is None
    ]
    if not missing:
        return
    reason = "a real systemd container needs " + ", ".join(missing)
    if "CI" in os.environ:
        pytest.fail(f"{reason} (CI is set: these tests must run, not skip)", pytrace=False)
    pytest.skip(reason)


def interpreter_binds(lower: Path) -> list[Path]:
    """What a box on ``lower`` needs bound in for the test virtualenv's
    interpreter to run there: the checkout and the virtualenv, and on
    another release's root the Python the virtualenv was made from (unless
    it is the system's, under /usr)."""
    venv = Path(sys.prefix)
    binds = [CHECKOUT] if venv.is_relative_to(CHECKOUT) else [CHECKOUT, venv]
    base = Path(sys.base_prefix)
    if lower != Path("/") and not base.is_relative_to("/usr"):
        binds.append(base)
    return binds


def checkout_box(lower: Path | None = None) -> SystemdBox:
    """A box (not yet entered) in which the checkout, the virtualenv that
    runs the tests and the world-readable installation of the tree
    (:mod:`tests.user_install`) are visible at their own paths, read-only;
    the test fails under CI, or is skipped elsewhere, when the host cannot
    boot one. Code of ours that runs in the box as a user other than root
    runs from that installation, never from the checkout.

    On another release's root (``lower``, tests/debian_root.py) the
    installation is made anew inside the box, at the same path, with that
    release's python3 and libraries (the host's is a virtualenv of the
    host's Python); the test virtualenv's interpreter is bound in as well.
    Without ``lower``: the host's root, or the release named by
    ``PC_TEST_RELEASE`` (``PC_TEST_RELEASE=trixie pytest
    tests/test_x_systemd.py`` runs a module's boxes on Debian 13, where CI
    runs it on Debian 12 only)."""
    require_systemd_box()
    if lower is None:
        from tests.debian_root import root_of

        release = os.environ.get("PC_TEST_RELEASE", "")
        lower = root_of(release) if release else Path("/")
    binds = interpreter_binds(lower)
    if lower == Path("/"):
        return SystemdBox(binds_ro=[*binds, installation()])
    built = wheel()
    return SystemdBox(binds_ro=[*binds, built.parent], lower=lower,
                      prepare=[lambda box: install_in_box(box, built)])
