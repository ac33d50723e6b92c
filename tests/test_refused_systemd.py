"""A job the generator refuses says why, everywhere it appears, on the real
systemd 252 (booted in a container).

``retry`` with ``backoff`` is valid (cron hosts run it) but systemd 252
cannot carry it out, so the generator writes no unit for it. ``status``
(text and JSON), ``run``, ``logs`` and ``check-jobs-icinga`` give the
same ``path:line: key: problem`` line ``validate`` prints, never "not
generated: run run-job --reload" or "install the generator".
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.systemd_box import SystemdBox, checkout_box
from tests.user_install import PREFIX, RUN_JOB

pytestmark = pytest.mark.systemd

JOBS = "/var/lib/process-control"
USER = "pcuser"
REFUSED = ("name: Refused\ncommand: /bin/true\nschedule: '7 3 * * *'\ntimeout: 1\n"
           "retry: {attempts: 2, delay: 1, backoff: 2}\n")
PLAIN = "name: Plain\ncommand: /bin/true\nschedule: '7 4 * * *'\n"


@dataclass(frozen=True)
class Box:
    box: SystemdBox
    why: list[str]  # what run-job validate says of the refused job


@pytest.fixture(scope="module")
def refused() -> Iterator[Box]:
    with checkout_box() as box:
        box.run(["useradd", "--create-home", USER])
        box.write_file("/etc/process-control.yaml", f"user: {USER}\njob_directory: {JOBS}\n")
        box.write_file(f"{JOBS}/refused.yaml", REFUSED)
        box.write_file(f"{JOBS}/plain.yaml", PLAIN)
        box.run([RUN_JOB, "--install-generator"], timeout=120)
        done = box.run([RUN_JOB, "validate"], check=False)
        why = [line for line in done.stdout.splitlines() if "refused.yaml" in line]
        yield Box(box, why)


def run(box: SystemdBox, *args: str) -> tuple[int, str, str]:
    done = box.run(list(args), check=False, timeout=120)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout, done.stderr


def test_validate_names_the_refusal_and_the_generator_wrote_no_unit(refused: Box) -> None:
    assert refused.why == [f"{JOBS}/refused.yaml:5: retry: backoff is not possible on "
                           "systemd 252: a service has one RestartSec= (growing delays, "
                           "RestartSteps=, came in systemd 254); use backoff: 1"]
    load = refused.box.show("process-control-refused.service", "LoadState")
    assert load == {"LoadState": "not-found"}


def test_status_text_says_why(refused: Box) -> None:
    code, out, _err = run(refused.box, RUN_JOB, "status")
    assert code == 0
    block = out.split("refused - Refused\n", 1)[1].split("plain - Plain", 1)[0]
    assert "\tstate: refused by the generator: systemd cannot carry it out\n" in block
    assert [line.removeprefix("\terror: ") for line in block.splitlines()
            if line.startswith("\terror: ")] == refused.why
    assert "not generated" not in out and "--reload" not in block


def test_status_json_says_why(refused: Box) -> None:
    code, out, _err = run(refused.box, RUN_JOB, "status", "--json")
    assert code == 0
    jobs = {job["slug"]: job for job in json.loads(out)["jobs"]}
    assert jobs["refused"]["state"] == "refused"
    assert jobs["refused"]["problems"] == refused.why
    assert jobs["plain"]["state"] == "idle" and jobs["plain"]["problems"] == []


def test_run_says_why_not_install_the_generator(refused: Box) -> None:
    code, out, err = run(refused.box, RUN_JOB, "run", "refused")
    assert code == 2 and out == ""
    assert err.splitlines()[:-1] == refused.why
    assert "the generator refused this job" in err.splitlines()[-1]
    assert "install the generator" not in err


def test_logs_say_why(refused: Box) -> None:
    _code, _out, err = run(refused.box, RUN_JOB, "logs", "refused")
    assert err.splitlines()[:len(refused.why)] == refused.why
    assert "install the generator" not in err


def test_icinga_warns_with_the_reason(refused: Box) -> None:
    code, out, _err = run(refused.box, str(PREFIX / "bin" / "check-jobs-icinga"))
    assert code == 1
    assert out.startswith("WARNING: invalid: refused; refused by the generator: "
                          + refused.why[0] + " | "), out
