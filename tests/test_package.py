"""The Debian package, built and installed as an operator would.

Built once for this module from a clean clone of the repository (its
committed HEAD: uncommitted changes are not in a package either) with
``dpkg-buildpackage -us -uc -b``, checked by lintian, then installed with
``dpkg -i`` on a booted systemd (a :class:`SystemdBox`) that had the
original process-control: its ``/etc/process-control.yaml``, its job files
in ``/var/lib/process-control`` and the ``/etc/cron.d/process-control`` its
``cron-generate`` wrote. The checkout and the test virtualenv are hidden
inside the box, so everything that runs there comes from the package.

The tests after the build run in this file's order on one box: install,
what it set up, the jobs, then ``dpkg -r`` and ``dpkg -P``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import BUILD_ENV, ROOT, hide_checkout
from tests.debian_root import Release, root_of
from tests.systemd_box import BASE_ROOT, SystemdBox, require_systemd_box

pytestmark = pytest.mark.systemd

ORIGINAL = ROOT / "tests" / "data" / "original"
JOBS = "/var/lib/process-control"
USER = "process-control"
DEB_IN_BOX = "/root/process-control_all.deb"


def deb_files(deb: Path) -> list[str]:
    listing = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True,
                             check=True).stdout
    names = subprocess.run(["tar", "-t"], input=listing, capture_output=True, check=True)
    return [n.decode().removeprefix(".") for n in names.stdout.splitlines()]


def test_lintian_finds_no_errors(built: Path) -> None:
    changes = next(built.parent.glob("process-control_*.changes"))
    result = subprocess.run(["lintian", "--fail-on", "error", str(changes)], env=BUILD_ENV,
                            capture_output=True, text=True, timeout=300)
    errors = [line for line in result.stdout.splitlines() if line.startswith("E:")]
    assert (result.returncode, errors) == (0, []), result.stdout + result.stderr


def test_the_package_holds_what_operators_need(built: Path) -> None:
    files = set(deb_files(built))
    for path in [
        "/usr/bin/run-job", "/usr/bin/cron-generate", "/usr/bin/check-jobs-icinga",
        "/usr/lib/systemd/system-generators/process-control-generator",
        "/usr/lib/sysusers.d/process-control.conf", "/usr/lib/tmpfiles.d/process-control.conf",
        "/lib/systemd/system/process-control-after-var.service",
        "/lib/systemd/system/process-control-broker.socket",
        "/lib/systemd/system/process-control-broker@.service",
        "/usr/share/polkit-1/rules.d/50-process-control.rules",
        "/usr/lib/systemd/journald@process-control.conf.d/10-process-control.conf",
        "/usr/lib/systemd/system/systemd-journald@process-control.service.d/restart.conf",
        "/usr/share/doc/process-control/process-control.example.yaml",
        "/usr/share/doc/process-control/job.example.yaml",
        "/usr/share/process-control/job.schema.json",
        "/usr/share/doc/process-control/examples/sudoers.d/process-control",
        "/usr/share/man/man1/run-job.1.gz", "/usr/share/man/man1/cron-generate.1.gz",
        "/usr/share/man/man1/check-jobs-icinga.1.gz",
        "/usr/lib/python3/dist-packages/pc_systemd/templates/job.service.j2",
        "/usr/lib/python3/dist-packages/pc_systemd/templates/job.timer.j2",
    ]:
        assert path in files
    # the generator lives where systemd looks, not in PATH
    assert "/usr/bin/process-control-generator" not in files


def test_the_package_depends_on_debians_python_libraries(built: Path) -> None:
    depends = subprocess.run(["dpkg-deb", "-f", str(built), "Depends"], capture_output=True,
                             text=True, check=True).stdout
    names = {alt.split()[0] for dep in depends.split(",") for alt in dep.split("|")}
    assert {"python3-yaml", "python3-jinja2", "python3-click", "python3-pystemd",
            "python3:any"} <= names


# -- installed on a systemd host that ran the original ---------------------------

HELLO = "name: Hello\ncommand: /usr/bin/id -un\nschedule: '*/5 * * * *'\n"
FILE_LOGGED = ("name: File logged\ncommand: /bin/echo written to its own file\n"
               "schedule: '2-59/5 * * * *'\nlogging: file\n")
SLOW = "name: Slow\ncommand: /bin/sleep 300\n"
FAILS = ("name: Fails\ncommand: /bin/sh -c 'echo about to fail; exit 3'\n"
         "failmail: {from_address: jobs@example.org, to_address: oncall@example.org}\n")


@pytest.fixture(scope="module")
def box(built: Path, release: Release) -> Iterator[SystemdBox]:
    """A booted systemd with the original's files, then the package installed:
    on Debian 12 and on Debian 13, the same .deb."""
    require_systemd_box()
    with SystemdBox(lower=root_of(release)) as booted:
        hide_checkout(booted)
        config = (ORIGINAL / "process-control.example.yaml").read_text()
        booted.write_file("/etc/process-control.yaml", config.replace("user: jenkins",
                                                                     f"user: {USER}"))
        booted.write_file("/etc/cron.d/process-control",
                          (ORIGINAL / "cron.d" / "process-control").read_text())
        booted.write_file(f"{JOBS}/hello.yaml", HELLO)
        booted.write_file(f"{JOBS}/report.yaml", FILE_LOGGED)
        booted.write_file(f"{JOBS}/slow.yaml", SLOW)
        booted.write_file(f"{JOBS}/fails.yaml", FAILS)
        booted.write_file(DEB_IN_BOX, built.read_bytes())
        yield booted


@dataclass(frozen=True)
class Installed:
    box: SystemdBox
    dpkg_output: str  # what dpkg -i printed


@pytest.fixture(scope="module")
def installed_box(box: SystemdBox) -> Installed:
    result = box.run(["dpkg", "-i", DEB_IN_BOX], timeout=180)
    return Installed(box, result.stdout + result.stderr)


@pytest.fixture
def installed(installed_box: Installed) -> SystemdBox:
    return installed_box.box


def test_the_service_users_exist(installed: SystemdBox) -> None:
    entry = installed.run(["getent", "passwd", USER]).stdout.split(":")
    assert entry[0] == USER and int(entry[2]) < 1000  # a system user
    monitor = installed.run(["id", "-nG", "process-control-monitor"]).stdout.split()
    assert "systemd-journal" in monitor


def test_the_directories_belong_to_whom_the_security_model_says(installed: SystemdBox) -> None:
    def owner_mode(path: str) -> str:
        return installed.run(["stat", "-c", "%U %a", path]).stdout.strip()

    # the job directory: the service user may read it, never change it
    assert owner_mode(JOBS) == "root 755"
    # what the jobs write is not for other users
    # setgid: each job's log directory and file inherits the developer group
    assert owner_mode("/var/log/process-control") == f"{USER} 2750"
    assert owner_mode("/var/cache/process-control") == f"{USER} 750"
    assert owner_mode("/run/process-control") == f"{USER} 700"


def test_the_originals_cron_file_no_longer_schedules_anything(
    installed_box: Installed,
) -> None:
    box = installed_box.box
    assert box.run(["test", "-e", "/etc/cron.d/process-control"], check=False).returncode == 1
    moved = box.run(["cat", "/etc/cron.d/process-control.disabled"]).stdout
    assert moved == (ORIGINAL / "cron.d" / "process-control").read_text()
    # cron reads the /etc/cron.d files that run-parts would run: not this one
    listed = box.run(["run-parts", "--list", "/etc/cron.d"], check=False).stdout.split()
    assert not [name for name in listed if "process-control" in name]
    note = "moved /etc/cron.d/process-control to /etc/cron.d/process-control.disabled"
    assert note in installed_box.dpkg_output
    box.run(["journalctl", "--sync"])
    logged = box.run(["journalctl", "-q", "-t", "process-control", "--no-pager"]).stdout
    assert note in logged


def test_the_jobs_timers_run_right_after_install(installed: SystemdBox) -> None:
    for job in ("hello", "report"):
        props = installed.show(f"process-control-{job}.timer", "ActiveState", "UnitFileState")
        assert props["ActiveState"] == "active", props


def test_generated_units_name_only_installed_files(installed: SystemdBox) -> None:
    text = installed.run(["sh", "-c", "cat /run/systemd/generator/process-control-*"]).stdout
    assert "process-control-hello.service" in installed.run(
        ["ls", "/run/systemd/generator"]).stdout
    for forbidden in {str(ROOT), str(Path(sys.prefix).resolve()), sys.prefix, "/root/"}:
        assert forbidden not in text
    assert "/usr/bin/python3" in text  # the reload service runs Debian's python3


def test_a_job_runs_as_the_service_user(installed: SystemdBox) -> None:
    installed.systemctl("start", "process-control-hello.service")
    props = installed.show("process-control-hello.service", "Result", "User")
    assert props == {"Result": "success", "User": USER}
    assert USER in installed.journal("process-control-hello.service", manager_messages=False)


def test_the_package_knows_the_systemd_that_runs(installed: SystemdBox, release: Release) -> None:
    """Without D-Bus: root reads the library PID 1 has mapped, anyone else
    finds the installed one; both are the manager's version, with the
    release's own Python."""
    shown = installed.run(["systemctl", "--version"]).stdout.split()
    assert int(shown[1]) == {12: 252, 13: 257}[release.number], shown[:3]
    code = "from pc_systemd.model import systemd_version as v; print(v.manager())"
    assert installed.run(["python3", "-c", code]).stdout.strip() == shown[1]
    assert installed.run(["python3", "-c", code], user=USER).stdout.strip() == shown[1]
    maps = ("from pc_systemd.model import systemd_version as v; "
            "print(v.version_in(open('/proc/1/maps').read()))")
    assert installed.run(["python3", "-c", maps]).stdout.strip() == shown[1]
    python = installed.run(["python3", "-c", "import sys; print(sys.version_info[:2])"])
    assert python.stdout.strip() == {12: "(3, 11)", 13: "(3, 13)"}[release.number]


def test_backoff_is_refused_only_where_systemd_cannot_do_it(
    installed: SystemdBox, release: Release,
) -> None:
    path = f"{JOBS}/backoff.yaml"  # checked, never loaded: removed before any reload
    installed.write_file(path, "name: Backoff\ncommand: /bin/false\ntimeout: 1\n"
                               "retry: {attempts: 3, delay: 0.01, backoff: 2}\n")
    try:
        done = installed.run(["run-job", "validate", path], check=False)
    finally:
        installed.run(["rm", path])
    if release.number == 12:
        assert done.returncode == 1
        assert (f"{path}:4: retry: backoff is not possible on systemd 252: a service has one "
                "RestartSec= (growing delays, RestartSteps=, came in systemd 254); use "
                "backoff: 1") in done.stdout + done.stderr
    else:
        assert done.returncode == 0, done.stdout + done.stderr


def test_file_logging_writes_the_runs_own_file(installed: SystemdBox) -> None:
    installed.systemctl("start", "process-control-report.service")
    out = installed.run(["sh", "-c", "cat /var/log/process-control/report/report-*.log"]).stdout
    assert "written to its own file" in out


def test_run_job_status_works(installed: SystemdBox) -> None:
    result = installed.run(["run-job", "--status"])
    assert "hello - Hello" in result.stdout
    assert "report - File logged" in result.stdout
    listed = installed.run(["run-job", "--list-jobs"], user=USER).stdout.split()
    assert listed == ["fails", "hello", "report", "slow"]


SYNC = "systemd-journald-sync@process-control.service"


def start_back_to_back(box: SystemdBox, times: int) -> list[str]:
    """Start the hello and report jobs one after the other, ``times`` each;
    how each start ended. Each job's own start limit is cleared first: this
    is about the starts of all jobs together."""
    results: list[str] = []
    for _ in range(times):
        for job in ("hello", "report"):
            box.systemctl("reset-failed", f"process-control-{job}.service", check=False)
            done = box.systemctl("start", f"process-control-{job}.service", check=False)
            results.append(box.show(f"process-control-{job}.service", "Result")["Result"]
                           if done.returncode == 0 else done.stderr.strip())
    return results


def sync_cycles(box: SystemdBox, times: int) -> list[int]:
    """Start and stop the journal sync unit, as job runs do; each start's
    exit status."""
    codes = []
    for _ in range(times):
        codes.append(box.systemctl("start", SYNC, check=False).returncode)
        box.systemctl("stop", SYNC, check=False)
    return codes


def test_jobs_started_back_to_back_all_run(installed: SystemdBox, release: Release) -> None:
    """systemd 257 makes each job unit require
    systemd-journald-sync@process-control.service (its LogNamespace=), started
    with a run and stopped after it, under systemd's default start limit (5
    in 10 s): a refused start fails the job ("dependency"). The generator's
    drop-in lifts that limit."""
    # (once in three runs here a start on Debian 13 failed with "unavailable
    # resources" under heavy load, not understood yet; what is tested here is
    # that none is refused for the sync unit's start limit)
    assert not [r for r in start_back_to_back(installed, 15) if "dependency" in r]
    if release.number == 12:
        assert installed.show(SYNC, "LoadState")["LoadState"] == "not-found"
        return
    requires = installed.show("process-control-hello.service", "Requires")["Requires"].split()
    assert SYNC in requires
    assert installed.show(SYNC, "StartLimitIntervalUSec")["StartLimitIntervalUSec"] == "0"
    assert sync_cycles(installed, 8) == [0] * 8
    # without the drop-in (an empty one of the same name in /etc, which takes
    # precedence): the sixth start within 10 s is refused, and so is a job
    override = f"/etc/systemd/system/{SYNC}.d/process-control.conf"
    installed.write_file(override, "")
    installed.systemctl("daemon-reload")
    try:
        assert installed.show(SYNC, "StartLimitIntervalUSec")["StartLimitIntervalUSec"] == "10s"
        codes = sync_cycles(installed, 8)
        assert codes[:5] == [0] * 5 and codes[5] != 0, codes
        refused = installed.systemctl("start", "process-control-hello.service", check=False)
        assert refused.returncode != 0 and "dependency job" in refused.stderr, refused.stderr
    finally:
        installed.run(["rm", override])
        installed.systemctl("daemon-reload")
        installed.systemctl("reset-failed", SYNC, "process-control-hello.service", check=False)
    assert not [r for r in start_back_to_back(installed, 15) if "dependency" in r]


def test_a_failure_starts_the_mail_unit_as_the_monitor_user(installed: SystemdBox) -> None:
    # No mail server in the box: the installed mail unit gets as far as SMTP,
    # as process-control-monitor, with the failed run from systemd.
    mail = "process-control-mail@fails.service"
    assert installed.systemctl("start", "process-control-fails.service",
                               check=False).returncode != 0
    installed.wait_until(lambda: any("not sent" in line for line in installed.journal(mail)),
                         timeout=30, what="the failure mail unit ran")
    lines = installed.journal(mail, manager_messages=False)
    assert any(line.startswith("process-control mail: failure mail to oncall@example.org "
                               "not sent: ") for line in lines), lines
    uid = installed.run(["id", "-u", "process-control-monitor"]).stdout.strip()
    out = installed.run(["journalctl", "-o", "json", "--output-fields=_UID",
                         f"_SYSTEMD_UNIT={mail}"]).stdout
    assert {json.loads(line)["_UID"] for line in out.splitlines()} == {uid}


def test_the_metrics_unit_writes_a_failed_runs_figures(installed: SystemdBox) -> None:
    """metrics_file: the package's metrics unit, as process-control-monitor,
    writes each job's figures from systemd's records (on both releases)."""
    metrics = "/var/lib/node-exporter/process-control.prom"
    config = installed.run(["cat", "/etc/process-control.yaml"]).stdout
    installed.run(["install", "-d", "-o", "process-control-monitor", "-m", "0755",
                   "/var/lib/node-exporter"])
    installed.write_file("/etc/process-control.yaml", f"{config.rstrip()}\nmetrics_file: {metrics}\n")
    try:
        installed.run(["run-job", "reload"], timeout=120)
        installed.systemctl("start", "process-control-fails.service", check=False)
        installed.sync_journal()
        installed.systemctl("start", "process-control-metrics.service")
        text = installed.run(["cat", metrics]).stdout
        assert 'process_control_last_run_exit_status{job="fails"} 3' in text.splitlines(), text
        owner = installed.run(["stat", "-c", "%U", metrics]).stdout.strip()
        assert owner == "process-control-monitor"
    finally:
        installed.write_file("/etc/process-control.yaml", config)
        installed.run(["run-job", "reload"], timeout=120)


def test_the_shipped_schema_is_what_run_job_prints(installed: SystemdBox) -> None:
    shipped = installed.run(["cat", "/usr/share/process-control/job.schema.json"]).stdout
    printed = installed.run(["run-job", "schema"], user=USER).stdout
    assert shipped == printed and json.loads(printed)["required"] == ["name", "command"]


def test_man_pages_are_installed(installed: SystemdBox) -> None:
    for command in ("run-job", "cron-generate", "check-jobs-icinga"):
        text = installed.run(["sh", "-c", f"zcat /usr/share/man/man1/{command}.1.gz"]).stdout
        assert ".TH" in text and command.upper() in text.upper()


def test_install_generator_leaves_the_packages_generator_alone(installed: SystemdBox) -> None:
    out = installed.run(["run-job", "--install-generator"]).stdout
    assert "installed /usr/lib/systemd/system-generators/process-control-generator" in out
    assert installed.run(["ls", "-A", "/etc/systemd/system-generators"],
                         check=False).stdout.strip() == ""


def test_next_runs_without_cron_descriptor(installed: SystemdBox) -> None:
    # not installed (Debian 12 has no python3-cron-descriptor; on Debian 13 it
    # is not a dependency): the times, without words
    assert installed.run(["python3", "-c", "import cron_descriptor"],
                         check=False).returncode == 1
    out = installed.run(["run-job", "--next", "hello", "--count", "2"]).stdout
    assert "hello: */5 * * * * (no description: cron-descriptor is not installed)" in out


def test_after_var_applies_the_jobs_only_where_var_is_a_mount(installed: SystemdBox) -> None:
    box = installed
    unit = "process-control-after-var.service"
    assert box.run(["systemctl", "is-enabled", unit]).stdout.strip() == "enabled"
    box.systemctl("start", unit)  # / holds /var here: the condition skips it
    assert box.show(unit, "ConditionResult")["ConditionResult"] == "no"
    box.run(["mount", "--bind", "/var", "/var"])  # now /var is a mount point
    try:
        box.systemctl("stop", "process-control-hello.timer")
        box.systemctl("start", unit)
        props = box.show(unit, "ConditionResult", "Result")
        assert props == {"ConditionResult": "yes", "Result": "success"}
        # run-job --reload started the job's timer again
        assert box.show("process-control-hello.timer", "ActiveState")["ActiveState"] == "active"
    finally:
        box.run(["umount", "/var"])


def test_an_upgrade_keeps_the_jobs_scheduled(installed: SystemdBox) -> None:
    box = installed
    out = box.run(["dpkg", "-i", DEB_IN_BOX], timeout=180)  # the same version again
    assert "moved" not in out.stdout + out.stderr  # nothing left to move aside
    for job in ("hello", "report"):
        state = box.show(f"process-control-{job}.timer", "ActiveState")["ActiveState"]
        assert state == "active", job
    assert box.run(["test", "-e", "/etc/cron.d/process-control"], check=False).returncode == 1


def test_remove_leaves_no_unit_running(installed: SystemdBox) -> None:
    box = installed
    box.systemctl("start", "--no-block", "process-control-slow.service")
    box.wait_until(lambda: box.show("process-control-slow.service",
                                    "ActiveState")["ActiveState"] == "activating",
                   what="the slow job to start")
    box.run(["dpkg", "-r", "process-control"], timeout=120)
    units = box.run(["systemctl", "list-units", "--all", "--plain", "--no-legend",
                     "process-control-*"]).stdout
    assert not [line for line in units.splitlines()
                if line.split()[2:3] in (["active"], ["activating"])], units
    assert box.run(["test", "-e", "/usr/lib/systemd/system-generators/"
                    "process-control-generator"], check=False).returncode == 1
    assert box.run(["ls", "/run/systemd/generator"]).stdout.count("process-control") == 0


def test_purge_removes_the_state_and_keeps_the_job_files(installed: SystemdBox) -> None:
    box = installed
    box.run(["dpkg", "-P", "process-control"], timeout=120)
    for path in ("/var/log/process-control", "/var/cache/process-control",
                 "/var/cache/pc-systemd", "/run/process-control"):
        assert box.run(["test", "-e", path], check=False).returncode == 1, path
    assert box.run(["ls", JOBS]).stdout.split() == [
        "fails.yaml", "hello.yaml", "report.yaml", "slow.yaml"]
    assert box.run(["systemctl", "is-enabled", "process-control-after-var.service"],
                   check=False).stdout.strip() in ("", "not-found")


# -- installed on a host without systemd ------------------------------------------


@contextlib.contextmanager
def overlay_root() -> Iterator[Path]:
    """A copy-on-write root over the host's / (as SystemdBox makes), with
    /proc and /dev, to chroot into: a host whose init is not systemd (no
    /run/systemd/system), where cron runs the jobs. Torn down after."""
    base = BASE_ROOT / f"pc-chroot-{os.getpid()}-{secrets.token_hex(4)}"
    base.mkdir(parents=True, mode=0o700)
    mounted: list[Path] = []
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0700", "tmpfs", str(base)],
                       check=True)
        mounted.append(base)
        for sub in ("upper", "work", "root"):
            (base / sub).mkdir()
        (base / "upper").chmod(0o755)
        lower = f"lowerdir=/,upperdir={base}/upper,workdir={base}/work"
        subprocess.run(["mount", "-t", "overlay", "-o", lower, "overlay", str(base / "root")],
                       check=True)
        mounted.append(base / "root")
        subprocess.run(["mount", "-t", "proc", "proc", str(base / "root" / "proc")], check=True)
        mounted.append(base / "root" / "proc")
        subprocess.run(["mount", "--bind", "/dev", str(base / "root" / "dev")], check=True)
        mounted.append(base / "root" / "dev")
        # what the host's own mounts hide on / (its /run, /tmp) starts empty here
        for empty in ("run", "tmp"):
            subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=1777", "tmpfs",
                            str(base / "root" / empty)], check=True)
            mounted.append(base / "root" / empty)
        yield base / "root"
    finally:
        for path in reversed(mounted):
            subprocess.run(["umount", "--lazy", str(path)], check=False)
        base.rmdir()


def in_root(root: Path, command: str, user: str | None = None) -> str:
    args = ["chroot", *([f"--userspec={user}:{user}"] if user else []), str(root),
            "/bin/sh", "-c", command]
    result = subprocess.run(args, env={**BUILD_ENV, "HOME": "/"}, capture_output=True,
                            text=True, timeout=180)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def test_on_a_cron_host_install_writes_the_cron_file_and_jobs_run(built: Path) -> None:
    require_systemd_box()  # root and mount: the same needs as a box
    with overlay_root() as root:
        assert not (root / "run" / "systemd" / "system").exists()
        (root / "etc" / "cron.d").mkdir(exist_ok=True)
        config = (ORIGINAL / "process-control.example.yaml").read_text()
        (root / "etc" / "process-control.yaml").write_text(
            config.replace("user: jenkins", f"user: {USER}"))
        jobs = root / JOBS.lstrip("/")
        jobs.mkdir(parents=True, exist_ok=True)
        (jobs / "hello.yaml").write_text(HELLO)
        shutil.copy(built, root / "root" / "process-control_all.deb")
        in_root(root, "dpkg -i /root/process-control_all.deb")
        cron = (root / "etc" / "cron.d" / "process-control").read_text()
        assert cron == (f"# Generated from {JOBS}/hello.yaml\n"
                        f"*/5 * * * * {USER} /usr/bin/run-job --job hello\n")
        # the runner, as cron runs it: as the service user, with Debian's python3
        in_root(root, "/usr/bin/run-job --job hello", user=USER)
        logs = in_root(root, "cat /var/log/process-control/hello/hello-*.log")
        assert f"\t{USER}\n" in logs.replace("INFO\t", "\t")
        history = in_root(root, "cat /var/cache/process-control/hello.yaml")
        assert "last_completion_status: success" in history
        # removed: the cron file would call a run-job that is gone
        in_root(root, "dpkg -r process-control")
        assert not (root / "etc" / "cron.d" / "process-control").exists()
        assert (root / "etc" / "cron.d" / "process-control.disabled").read_text() == cron
