"""The developer group's rights, our side: the polkit rule's text, writing it
for another group, ``output_directory``, membership and the one-line refusal.
What polkit and systemd do with them: tests/test_access_systemd.py."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from pc_systemd.model.config import builtin
from pc_systemd.systemd import access
from tests import user_install
from tests.conftest import ROOT


def test_the_shipped_rule_is_the_rule_of_the_default_group() -> None:
    shipped = ROOT / "systemd" / "polkit" / access.RULE_NAME
    assert shipped.read_text() == access.rule(), (
        "run: python -c 'from pc_systemd.systemd import access; print(access.rule(), end=\"\")'"
        f" > {shipped.relative_to(ROOT)}")
    assert access.DEFAULT_GROUP == "process-control-dev"
    assert '"process-control-dev"' in shipped.read_text()


def test_values_reach_the_rule_as_json_literals() -> None:
    text = access.rule("ops_team", ["process-control-dev"])
    assert 'var group = "ops_team";' in text
    assert 'var formerGroups = ["process-control-dev"];' in text
    assert ('var verbs = {"service": ["start", "stop", "ref", "reset-failed"], '
            '"timer": ["start", "stop"]};') in text
    assert 'var monitor = "process-control-monitor";' in text
    assert 'var monitorVerbs = ["stop"];' in text
    assert 'var reserved = ["after-var", "metrics", "reload"];' in text
    assert "@" not in text  # every placeholder filled


def rule_paths(tmp_path: Path) -> tuple[str, str]:
    (tmp_path / "usr").mkdir()
    (tmp_path / "etc").mkdir()
    return str(tmp_path / "usr" / access.RULE_NAME), str(tmp_path / "etc" / access.RULE_NAME)


def test_another_group_gets_its_rule_in_etc_and_the_default_group_is_asked_again(
    tmp_path: Path,
) -> None:
    shipped, local = rule_paths(tmp_path)
    Path(shipped).write_text(access.rule())
    config = builtin(developer_group="ops")
    assert access.apply_rule(config, shipped, local) == f"wrote {local} for developer_group 'ops'"
    text = Path(local).read_text()
    assert access.MARK in text and 'var group = "ops";' in text
    assert 'var formerGroups = ["process-control-dev"];' in text
    assert stat.S_IMODE(os.stat(local).st_mode) == 0o644
    assert access.apply_rule(config, shipped, local) is None  # unchanged: not rewritten
    # back to the default group: the shipped rule is right, ours goes
    assert access.apply_rule(builtin(), shipped, local) == f"removed {local}"
    assert not os.path.exists(local)
    assert access.apply_rule(builtin(), shipped, local) is None


def test_without_a_shipped_rule_the_default_group_gets_one_in_etc(tmp_path: Path) -> None:
    shipped, local = rule_paths(tmp_path)  # a wheel's install: no package file
    assert access.apply_rule(builtin(), shipped, local) == (
        f"wrote {local} for developer_group 'process-control-dev'")
    assert 'var formerGroups = [];' in Path(local).read_text()


def test_an_operators_own_rule_of_that_name_is_left_alone(tmp_path: Path) -> None:
    shipped, local = rule_paths(tmp_path)
    Path(local).write_text("// mine\n")
    assert "is not ours: left alone" in str(access.apply_rule(builtin(developer_group="ops"),
                                                             shipped, local))
    assert access.apply_rule(builtin(), shipped, local) == (
        f"{local} exists and is not ours: left alone (developer_group 'process-control-dev')")
    assert Path(local).read_text() == "// mine\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root (CI runs as root)")
def test_output_directory_is_made_setgid_for_the_group(tmp_path: Path) -> None:
    group = grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name  # any group that exists
    out = tmp_path / "var" / "log" / "pc"
    config = builtin(output_directory=str(out), user="nobody", developer_group=group)
    assert access.ensure_output_directory(config) == (
        f"created {out} (owner nobody, group {group}, mode 2750)")
    st = out.stat()
    assert (st.st_uid, st.st_gid) == (pwd.getpwnam("nobody").pw_uid, grp.getgrnam(group).gr_gid)
    assert stat.S_IMODE(st.st_mode) == 0o2750
    assert access.ensure_output_directory(config) is None  # as it should be
    # a job directory from before (LogsDirectory=: the service user's group)
    # gets the group; a job's own file and a link are never touched
    nobody = pwd.getpwnam("nobody")
    old = out / "old_job"
    old.mkdir(mode=0o750)
    planted = out / "planted"
    planted.write_text("")
    (out / "link").symlink_to(tmp_path)
    for made in (old, planted):
        os.chown(made, nobody.pw_uid, nobody.pw_gid)
        os.chmod(made, 0o750)
    os.lchown(out / "link", nobody.pw_uid, nobody.pw_gid)
    assert access.ensure_output_directory(config) == (
        f"gave 1 job directories in {out} group {group!r}")
    assert (stat.S_IMODE(old.stat().st_mode), old.stat().st_gid) == (
        0o2750, grp.getgrnam(group).gr_gid)
    assert stat.S_IMODE(planted.stat().st_mode) == 0o750  # no setgid on a job's file
    assert stat.S_IMODE(tmp_path.stat().st_mode) & 0o2000 == 0
    assert access.ensure_output_directory(config) is None
    os.chmod(out, 0o750)
    assert "is not a setgid directory of group" in str(access.ensure_output_directory(config))


def test_membership_root_and_the_group_database() -> None:
    assert access.is_member("no-such-group-here") is (os.geteuid() == 0)
    assert access.refusal("no-such-group-here", "running a job") == (
        "running a job needs root or membership in group 'no-such-group-here' "
        "(no such group on this host)")


@pytest.mark.skipif(os.geteuid() != 0, reason="changing user needs root (CI runs as root)")
def test_a_non_member_gets_one_line_and_exit_2() -> None:
    # nobody runs an installation it can read, not the checkout.
    user_install.installation()
    # A place nobody can read (pytest's tmp_path is root's alone).
    top = Path(tempfile.mkdtemp(prefix="pc-access-"))
    try:
        os.chmod(top, 0o755)
        (top / "jobs").mkdir(mode=0o755)
        (top / "jobs" / "hello.yaml").write_text("name: Hello\ncommand: /bin/true\n")
        config = top / "pc.yaml"
        config.write_text(f"job_directory: {top / 'jobs'}\nbackend: systemd\n"
                          "developer_group: no-such-group-here\n")
        for argv in (["run", "hello"], ["kill", "hello"], ["logs", "hello"], ["-j", "hello"]):
            done = subprocess.run(
                ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                 user_install.RUN_JOB, "--config", str(config), *argv],
                capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                cwd="/",
            )
            what = {"run": "running a job", "-j": "running a job", "kill": "stopping a job",
                    "logs": "reading a job's output"}[argv[0]]
            assert (done.returncode, done.stdout) == (2, ""), done.stderr
            assert done.stderr == (f"run-job: {what} needs root or membership in group "
                                   "'no-such-group-here' (no such group on this host)\n")
    finally:
        shutil.rmtree(top)


def test_the_hold_directory_is_made_for_the_developer_group(tmp_path: Path) -> None:
    group = grp.getgrgid(os.getgid()).gr_name  # a group this host has
    path = tmp_path / "holds"
    config = builtin(developer_group=group, hold_directory=str(path))
    assert access.ensure_hold_directory(config) == (
        f"created {path} (owner root, group {group}, mode 2775)")
    st = os.stat(path)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, os.getgid(), 0o2775)
    assert access.ensure_hold_directory(config) is None
    os.chmod(path, 0o777)
    assert access.ensure_hold_directory(config) == (
        f"set {path} (owner root, group {group}, mode 2775)")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o2775
    os.chown(path, 65534, -1)
    assert "is not root's: left alone" in str(access.ensure_hold_directory(config))
    assert access.ensure_hold_directory(builtin(developer_group="no-such-group-here",
                                                hold_directory=str(path))) is None
