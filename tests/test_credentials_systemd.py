"""The ``credentials`` job key on a real systemd (in a container): the job
reads its secret from ``$CREDENTIALS_DIRECTORY``; ``systemctl show`` and
the unit files do not hold it, unlike an ``environment`` value; another
user cannot read it, neither at its source nor in the run's copy; the
generated unit passes ``systemd-analyze verify``; a missing credential
fails the run with one line. The cron host's side: tests/test_credentials.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.systemd_box import SystemdBox, checkout_box
from tests.user_install import RUN_JOB

pytestmark = pytest.mark.systemd

JOBS = "/var/lib/process-control"
USER = "pcuser"
OTHER = "alice"
SECRETS = "/etc/process-control/credentials"
SECRET = "s3cret-value-4711"
VISIBLE = "visible-value-0815"
UNIT = "process-control-sec.service"
CONFIG = f"user: {USER}\njob_directory: {JOBS}\noutput_directory: /var/log/process-control\n"

JOB_FILES = {
    "sec": (
        "name: Secret reader\n"
        "command: /bin/sh -c 'echo \"dir=$CREDENTIALS_DIRECTORY\"; "
        "echo \"read=$(cat \"$CREDENTIALS_DIRECTORY/token\")\"; sleep 0.2'\n"
        "credentials: token\n"
        f"environment:\n  SHOWN: {VISIBLE}\n"
    ),
    # runs long enough for another user to try
    "held": ("name: Holds its secret\ncommand: /bin/sh -c 'echo started; sleep 60'\n"
             "credentials: [token]\n"),
    "missing": "name: Missing\ncommand: /bin/echo never\ncredentials: [token, gone]\n",
    # names the token that sec and held have: another job's secret
    "thief": "name: Thief\ncommand: /bin/sh -c 'cat \"$CREDENTIALS_DIRECTORY/token\"'\n"
             "credentials: token\n",
}


@pytest.fixture(scope="module")
def box() -> Iterator[SystemdBox]:
    with checkout_box() as booted:
        for user in (USER, OTHER):
            booted.run(["useradd", "--create-home", user])
        booted.write_file("/etc/process-control.yaml", CONFIG)
        booted.run(["install", "-d", "-m", "0700", SECRETS])
        for slug in ("sec", "held", "missing"):  # each job's own directory
            booted.run(["install", "-d", "-m", "0700", f"{SECRETS}/{slug}"])
            booted.write_file(f"{SECRETS}/{slug}/token", SECRET + "\n")
            booted.run(["chmod", "0600", f"{SECRETS}/{slug}/token"])
        for slug, text in JOB_FILES.items():
            booted.write_file(f"{JOBS}/{slug}.yaml", text)
        booted.run([RUN_JOB, "install-generator"])
        yield booted


def test_the_job_reads_its_secret(box: SystemdBox) -> None:
    result = box.run([RUN_JOB, "run", "sec"], check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"dir=/run/credentials/{UNIT}\nread={SECRET}\n"


def test_systemctl_show_and_the_unit_files_do_not_hold_it(box: SystemdBox) -> None:
    shown = box.systemctl("show", UNIT).stdout
    assert VISIBLE in shown  # what environment: shows to everyone
    assert SECRET not in shown
    assert f"LoadCredential=token:{SECRETS}/sec/token" in box.systemctl("cat", UNIT).stdout
    found = box.run(["grep", "-rl", SECRET, "/run/systemd", "/etc/systemd", "/usr/lib/systemd",
                     "/var/lib/process-control"], check=False)
    assert (found.returncode, found.stdout) == (1, "")
    # as another user, as well
    assert SECRET not in box.run(["systemctl", "show", UNIT], user=OTHER).stdout


def test_another_user_cannot_read_it(box: SystemdBox) -> None:
    box.systemctl("start", "--no-block", "process-control-held.service")
    box.wait_until(lambda: box.show("process-control-held.service", "ActiveState")
                   ["ActiveState"] == "activating", what="held to run")
    try:
        copy = "/run/credentials/process-control-held.service/token"
        assert box.run(["cat", copy]).stdout == SECRET + "\n"  # root's view: the copy is there
        for path in (copy, f"{SECRETS}/held/token"):
            tried = box.run(["cat", path], user=OTHER, check=False)
            assert tried.returncode == 1 and "Permission denied" in tried.stderr, tried
    finally:
        box.systemctl("stop", "process-control-held.service")


def test_the_unit_verifies(box: SystemdBox) -> None:
    path = box.run(["systemctl", "show", "-P", "FragmentPath", UNIT]).stdout.strip()
    result = box.run(["systemd-analyze", "verify", "--man=no", "--recursive-errors=no", path],
                     check=False)
    assert (result.returncode, result.stderr) == (0, "")


def test_a_missing_credential_fails_the_run(box: SystemdBox) -> None:
    result = box.run([RUN_JOB, "run", "missing"], check=False)
    assert result.returncode == 243
    assert "never" not in result.stdout.splitlines()  # the command never ran
    assert result.stderr == ("Missing failed with code 243: systemd could not load its "
                             "credentials (is each file in credentials_directory?)\n")


def test_a_job_cannot_name_another_jobs_secret(box: SystemdBox) -> None:
    """Each job's credentials come from its own directory: a job file that
    names another job's credential gets nothing, and its command never runs."""
    result = box.run([RUN_JOB, "run", "thief"], check=False)
    assert result.returncode == 243
    assert SECRET not in result.stdout + result.stderr
    assert "LoadCredential=token:" + SECRETS + "/thief/token" in box.systemctl(
        "cat", "process-control-thief.service").stdout
