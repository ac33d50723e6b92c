"""The ``credentials`` job key: names checked, a missing file warned about
by ``validate`` with its ``path:line``, and on a cron host the direct
runner's copies: the job reads them at ``$CREDENTIALS_DIRECTORY/<name>``,
no other user can, and they are gone after the run. The same on a real
systemd (``LoadCredential=``): tests/test_credentials_systemd.py."""

from __future__ import annotations

import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pc_systemd.cron import credentials
from pc_systemd.model.config import load_config
from pc_systemd.model.errors import PcError
from pc_systemd.model.job import load_job
from pc_systemd.model.validate import validate
from tests.conftest import Site
from tests.direct_runs import make_job, run

SECRET = "s3cret-value-4711"
NOBODY = 65534


@pytest.fixture
def place(site: Site) -> Iterator[Path]:
    """A cron host whose run directory others may pass through (0711), so
    that only the run's own directory keeps them out; the credentials
    directory with one credential, ``token``."""
    base = Path(tempfile.mkdtemp(prefix="pc-cred-"))
    base.chmod(0o711)
    run_directory = base / "run"
    run_directory.mkdir(mode=0o711)
    run_directory.chmod(0o711)
    secrets = base / "credentials"
    secrets.mkdir(mode=0o700)
    (secrets / "job").mkdir(mode=0o700)  # the job "job"'s own directory
    (secrets / "job" / "token").write_text(SECRET + "\n")
    (secrets / "job" / "token").chmod(0o600)
    site.configure_direct(f"credentials_directory: {secrets}\n")
    text = site.config_file.read_text().replace(f"run_directory: {site.root / 'run'}",
                                                f"run_directory: {run_directory}")
    site.config_file.write_text(text)
    yield base
    shutil.rmtree(base)


def test_a_bad_name_is_one_line_with_its_place(site: Site) -> None:
    site.configure()
    path = site.job("bad", "name: Bad\ncommand: /bin/true\ncredentials:\n  - ok\n  - ../x\n")
    with pytest.raises(PcError) as caught:
        load_job(str(path), site.config())
    assert str(caught.value) == (
        f"{path}:5: credentials: '../x' is not a credential name: use letters, digits, "
        "'_', '-' and '.', at most 128, not starting with '.' or '-'")


def test_validate_warns_about_a_missing_credential_with_its_line(site: Site,
                                                                  place: Path) -> None:
    path = site.job("job", "name: Job\ncommand: /bin/true\n\ncredentials: [token, gone]\n")
    report = validate(site.config())
    assert report.errors == ()
    assert [str(w) for w in report.warnings] == [
        f"{path}:4: credentials: warning: gone: {place}/credentials/job/gone does not exist: "
        "the job's runs fail until it does"]


def warnings_as(uid: int | None, config: Path) -> int:
    """How many warnings validate gives, run as ``uid`` (a forked child
    that drops to it: the kernel checks its access; None: as we are)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(read)
            if uid is not None:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
            found = validate(load_config(str(config), trusted_only=False)).warnings
            os.write(write, str(len(found)).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as answer:
        text = answer.read()
    assert os.waitpid(pid, 0)[1] == 0
    return int(text)


def test_validate_says_nothing_where_it_may_not_look(place: Path) -> None:
    """A developer's validate cannot look into root's directory: no warning
    (root's, of the same job, has one)."""
    jobs = place / "jobs"
    jobs.mkdir(mode=0o755)
    (jobs / "job.yaml").write_text("name: Job\ncommand: /bin/true\ncredentials: gone\n")
    config = place / "config.yaml"
    config.write_text(f"job_directory: {jobs}\ncredentials_directory: {place}/credentials\n")
    assert warnings_as(None, config) == 1
    assert warnings_as(NOBODY, config) == 0


def test_the_job_reads_its_copy_and_no_one_else_can(site: Site, place: Path) -> None:
    seen = place / "seen"
    # The job prints the secret, then records where it found it, then lets
    # another user try while it still runs.
    job = make_job(site, command=[
        '/bin/sh -c \'cat "$CREDENTIALS_DIRECTORY/token"\'',
        f'/bin/sh -c \'echo "$CREDENTIALS_DIRECTORY" > {seen}\'',
        f"{sys.executable} -c \"import os, subprocess; d = os.environ['CREDENTIALS_DIRECTORY']; "
        f"r = subprocess.run(['cat', d + '/token'], user={NOBODY}, capture_output=True); "
        "print('nobody:', r.returncode, r.stdout.decode().strip())\"",
    ], credentials="token")
    status, _ = run(site, job)
    assert status == 0
    directory = seen.read_text().strip()
    assert os.path.dirname(directory) == str(place / "run")
    assert os.path.basename(directory).startswith("credentials-job+")
    assert not os.path.exists(directory)  # removed after the run
    (log,) = (site.root / "log" / "job").iterdir()
    text = log.read_text()
    assert f"\tINFO\t{SECRET}\n" in text
    assert "\tINFO\tnobody: 1 \n" in text  # cat failed, printed nothing


def test_the_copies_are_the_service_users_alone(place: Path) -> None:
    directory = credentials.prepare(str(place / "credentials" / "job"), ["token"],
                                    str(place / "run"), "job")
    try:
        st = os.stat(directory)
        assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o700, os.geteuid())
        copy = os.stat(os.path.join(directory, "token"))
        assert (stat.S_IMODE(copy.st_mode), copy.st_uid) == (0o400, os.geteuid())
        assert Path(directory, "token").read_text() == SECRET + "\n"
    finally:
        credentials.remove(directory)


def test_a_missing_credential_fails_the_run_in_one_line(site: Site, place: Path) -> None:
    job = make_job(site, command="/bin/echo never", credentials=["token", "gone"])
    status, out = run(site, job)
    assert status == 1
    assert out == (f"Job failed: credential gone: {place}/credentials/job/gone: "
                   "No such file or directory\n")
    assert list((place / "run").glob("credentials-*")) == []


def test_a_killed_runners_leftover_goes_at_the_next_run(site: Site, place: Path) -> None:
    left = place / "run" / "credentials-job+abc123"
    other = place / "run" / "credentials-job.b+abc123"  # job job.b's, maybe running
    for directory in (left, other):
        directory.mkdir()
        (directory / "token").write_text(SECRET)
    job = make_job(site, command="/bin/true", credentials="token")
    assert run(site, job)[0] == 0
    assert not left.exists() and other.exists()


def test_a_job_without_credentials_gets_no_inherited_directory(
    site: Site, place: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(place / "credentials"))
    job = make_job(site, command="/bin/sh -c 'echo \"dir=${CREDENTIALS_DIRECTORY-unset}\"'")
    assert run(site, job)[0] == 0
    (log,) = (site.root / "log" / "job").iterdir()
    assert "\tINFO\tdir=unset\n" in log.read_text()


def test_a_job_cannot_name_another_jobs_secret(site: Site, place: Path) -> None:
    # "token" is the job "job"'s; "thief" has no directory of its own
    job = make_job(site, "thief", command="/bin/echo never", credentials="token")
    status, out = run(site, job)
    assert status == 1
    assert out == (f"Thief failed: credential token: {place}/credentials/thief/token: "
                   "No such file or directory\n")
