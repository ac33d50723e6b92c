"""The ``retry`` job key on a real systemd 252 (booted in a container):
``Restart=on-failure`` with ``RestartSec=`` the delay, and a start limit
(``StartLimitBurst=`` attempts + 1 in a window that outlasts them) that
ends the attempts. And on Debian 13's systemd 257, a backoff: growing
delays (``RestartSteps=``, ``RestartMaxDelaySec=``), measured.

Measured here: the delays between attempts (systemd's own timestamps of
an attempt's failure and of the next attempt's start), how many attempts
run, that ``run-job run`` follows them all and exits with the last one's
status, that a timeout is retried, that a run by hand and the timer's runs
get the same attempts and the next scheduled run is not refused by the
start limit, and that history (``--status``, ``--logs``), the failure mail
and the metrics count a run, not its attempts.

One container for the module; the scheduled job fires every minute from
the start, so its runs are there by the time the last test looks.
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Iterator

import pytest

from pc_systemd.model.retry import Retry, restart_steps, start_limit
from tests.debian_root import TRIXIE, root_of
from tests.monitoring_box import (
    FAILMAIL,
    JOBS,
    METRICS_DIR,
    PYTHON,
    RUN_JOB,
    USER,
    body,
    clear_mails,
    job_metrics,
    mail_done,
    mail_unit,
    mails,
    set_up,
    unit,
)
from tests.systemd_box import SystemdBox, checkout_box

pytestmark = pytest.mark.systemd

WORK = "/srv/retry"  # attempts count here: not under the sandbox's private /tmp
CONFIG = f"""\
user: {USER}
job_directory: {JOBS}
output_directory: /var/log/process-control
smtp_host: 127.0.0.1
smtp_port: 8025
metrics_file: {METRICS_DIR}/process-control.prom
"""
DELAY = 0.05  # minutes: 3 s between attempts

# Fails until its third attempt: prints the attempt number.
COUNTING = f"""/bin/sh -c 'f={WORK}/$0.n; n=$(cat $f 2>/dev/null || echo 0); n=$((n+1));
 echo $n > $f; echo attempt $n; [ $n -ge 3 ] || exit 3' """
JOB_FILES = {
    "flaky": textwrap.dedent(f"""\
        name: Flaky
        command: {COUNTING.replace(chr(10), "")}flaky
        timeout: 0.5
        retry: {{attempts: 3, delay: {DELAY}}}
        """) + FAILMAIL,
    "down": textwrap.dedent(f"""\
        name: Down
        command: /bin/sh -c "echo trying; exit 5"
        timeout: 0.5
        retry: {{attempts: 2, delay: {DELAY}}}
        """) + FAILMAIL,
    "hang": textwrap.dedent(f"""\
        name: Hang
        command: /bin/sh -c "echo hanging; exec sleep 30"
        timeout: 0.02
        retry: {{attempts: 1, delay: {DELAY}}}
        """),
    # every minute; its window, 2 * (3 + 3 + 10) s, is shorter than that
    "minutely": textwrap.dedent(f"""\
        name: Minutely
        command: /bin/sh -c "echo scheduled; exit 7"
        schedule: "* * * * *"
        timeout: 0.05
        retry: {{attempts: 1, delay: {DELAY}}}
        """),
    "patient": textwrap.dedent("""\
        name: Patient
        command: /bin/sh -c "echo waiting; exit 2"
        timeout: 0.1
        retry: {attempts: 1, delay: 0.25}
        """) + FAILMAIL,
    "backoff": textwrap.dedent("""\
        name: Backoff
        command: /bin/false
        timeout: 1
        retry: {attempts: 2, delay: 1, backoff: 2}
        """),
    "toooften": textwrap.dedent("""\
        name: Too often
        command: /bin/false
        schedule: "*/5 * * * *"
        timeout: 2
        retry: {attempts: 2, delay: 1}
        """),
}


@pytest.fixture(scope="module")
def box() -> Iterator[SystemdBox]:
    with checkout_box() as booted:
        set_up(booted, CONFIG, JOB_FILES,
               prepare=[lambda b: b.run(["install", "-d", "-m", "0777", WORK])])
        yield booted


def records(box: SystemdBox, slug: str) -> list[tuple[str, int, str]]:
    """systemd's own records of the unit's attempts: (what, when in
    microseconds by systemd's clock, invocation), oldest first."""
    box.run(["journalctl", "--sync"])
    kinds = {"7d4958e842da4a758f6c1cdc7b36dcc5": "start",
             "d9b373ed55a64feb8242e02dbe79a49c": "failed",
             "7ad2d189f7e94e70a38c781354912448": "success",
             "5eb03494b6584870a536b337290809b3": "restart"}
    out = box.run(["journalctl", "--output=json", "_PID=1", f"UNIT={unit(slug)}"]).stdout
    found = []
    for line in out.splitlines():
        entry = json.loads(line)
        kind = kinds.get(entry.get("MESSAGE_ID", ""))
        if kind is not None:
            found.append((kind, int(entry["_SOURCE_REALTIME_TIMESTAMP"]),
                          entry["INVOCATION_ID"]))
    return found


def waits(found: list[tuple[str, int, str]]) -> list[float]:
    """Seconds from each attempt's failure to the restart systemd scheduled
    after it ("Scheduled restart job", logged as the delay ends); and the
    next attempt's start is never sooner."""
    gaps = []
    failed_at: int | None = None
    for kind, when, _invocation in found:
        if kind == "failed" and failed_at is None:
            failed_at = when
        elif kind == "restart" and failed_at is not None:
            gaps.append((when - failed_at) / 1e6)
        elif kind == "start":
            assert failed_at is None or (when - failed_at) / 1e6 >= gaps[-1]
            failed_at = None
    return gaps


# The delay is 3 s; this host is shared (load average above 5 at times).
SLACK = 1.5


def delays_ok(found: list[tuple[str, int, str]]) -> bool:
    return all(3.0 <= gap < 3.0 + SLACK for gap in waits(found))


def journal_runs(box: SystemdBox, slug: str) -> list[dict[str, object]]:
    """The unit's runs as our journal reader groups them (run in the container)."""
    code = ("import json, dataclasses; from pc_systemd.systemd import journal; "
            f"print(json.dumps([dataclasses.asdict(r) for r in journal.runs({unit(slug)!r}, True)]))")
    out = box.run([PYTHON, "-c", code]).stdout
    runs = json.loads(out)
    assert isinstance(runs, list)
    return runs


def test_the_unit_restarts_on_failure_within_a_start_limit(box: SystemdBox) -> None:
    shown = box.show(unit("down"), "Restart", "RestartUSec", "StartLimitBurst",
                     "StartLimitIntervalUSec", "TimeoutStartUSec")
    limit = start_limit(Retry(2, DELAY), 0.5)
    assert shown["Restart"] == "on-failure"
    assert shown["RestartUSec"] == "3s"
    assert shown["StartLimitBurst"] == "3" == str(limit.burst)
    # 3 attempts of at most 30 s + 3 s + 10 s of slack
    assert limit.interval == 129
    assert shown["StartLimitIntervalUSec"] == "2min 9s"


def test_run_job_run_follows_every_attempt_to_the_one_that_succeeds(box: SystemdBox) -> None:
    done = box.run([RUN_JOB, "run", "flaky"], check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["attempt", "1", "attempt", "2", "attempt", "3"]
    assert "Flaky: attempt 2 of 4" in done.stderr and "Flaky: attempt 3 of 4" in done.stderr
    found = records(box, "flaky")
    assert [k for k, _w, _i in found] == ["start", "failed", "restart"] * 2 + ["start", "success"]
    assert len({i for _k, _w, i in found}) == 3  # each attempt is an invocation of its own
    assert len(waits(found)) == 2 and delays_ok(found), waits(found)
    (run,) = journal_runs(box, "flaky")
    assert run["result"] == "success" and run["attempts"] == 3
    # attempts that failed and were retried are not a failed run
    (job,) = [j for j in json.loads(box.run([RUN_JOB, "status", "--json"]).stdout)["jobs"]
              if j["slug"] == "flaky"]
    assert job["last_run"]["status"] == "success", job
    assert mails(box) == []  # failmail is set: nothing was mailed
    assert job_metrics(box, "flaky")["consecutive_failures"] == 0
    assert job_metrics(box, "flaky")["last_run_success"] == 1
    # Started as the timer starts it, right after: the window of the start
    # limit holds 3 of the 4 starts already, yet this run gets the three
    # attempts it needs too: systemd 252 clears the start limit when a run
    # ends in success (measured; nothing of ours does it).
    box.write_file(f"{WORK}/flaky.n", "0\n", mode=0o666)
    assert box.systemctl("start", unit("flaky"), check=False).returncode != 0  # attempt 1
    box.wait_until(lambda: box.show(unit("flaky"), "ActiveState")["ActiveState"] == "inactive",
                   timeout=30, what="the second run ended")
    assert box.run(["cat", f"{WORK}/flaky.n"]).stdout == "3\n"
    assert [r["attempts"] for r in journal_runs(box, "flaky")] == [3, 3]
    logs = box.run([RUN_JOB, "logs", "flaky", "--run", "1"])
    assert logs.stderr.strip().endswith(": success (3 attempts)"), logs.stderr
    assert logs.stdout.splitlines() == ["attempt 1", "attempt 2", "attempt 3"]


def test_a_run_whose_attempts_all_fail_is_one_failed_run(box: SystemdBox) -> None:
    clear_mails(box)
    before = len(box.invocations(mail_unit("down")))
    done = box.run([RUN_JOB, "run", "down"], check=False)
    assert done.returncode == 5
    assert done.stdout.split() == ["trying"] * 3
    assert done.stderr.splitlines()[-1] == "Down failed with code 5"
    found = records(box, "down")
    # 3 attempts; the restart after the last is refused by the start limit,
    # and only then does the run fail (a second failure record)
    assert [k for k, _w, _i in found] == (["start", "failed", "restart"] * 3 + ["failed"])
    assert len(waits(found)) == 3 and delays_ok(found), waits(found)
    box.wait_until(lambda: mail_done(box, "down", before), timeout=30, what="mail sent")
    (mail,) = mails(box)
    assert "Failed:  1 run(s) in a row" in body(mail)
    # at once again: run-job clears the start limit, so this run gets its
    # three attempts as well; the streak counts runs, not attempts
    done = box.run([RUN_JOB, "run", "down"], check=False)
    assert done.returncode == 5 and done.stdout.split() == ["trying"] * 3
    box.wait_until(lambda: mail_done(box, "down", before + 1), timeout=30, what="2nd mail")
    assert "Failed:  2 run(s) in a row" in body(mails(box)[-1])
    runs = journal_runs(box, "down")
    assert [(r["result"], r["attempts"]) for r in runs] == [("exit-code", 3)] * 2
    assert job_metrics(box, "down")["consecutive_failures"] == 2
    assert job_metrics(box, "down")["last_run_exit_status"] == 5


def test_a_timeout_is_a_failure_and_is_retried(box: SystemdBox) -> None:
    done = box.run([RUN_JOB, "run", "hang"], check=False)
    assert done.returncode == 1
    assert done.stdout.split() == ["hanging"] * 2
    assert done.stderr.splitlines()[-1] == "Hang timed out after 0.02 minutes"
    assert box.show(unit("hang"), "Result")["Result"] == "timeout"
    found = records(box, "hang")
    assert [k for k, _w, _i in found] == ["start", "failed", "restart"] * 2 + ["failed"]
    starts = [w for k, w, _i in found if k == "start"]
    # 1.2 s of timeout, then the 3 s delay
    assert 4.2 <= (starts[1] - starts[0]) / 1e6 < 4.2 + SLACK
    assert len(waits(found)) == 2 and delays_ok(found), waits(found)


def test_a_failed_attempt_waiting_for_its_retry_is_no_failure_yet(box: SystemdBox) -> None:
    """systemd logs the restart only once the delay is over: meanwhile the
    unit is activating (auto-restart), and the metrics and the status must
    not show the attempt's failure as the run's."""
    clear_mails(box)
    box.systemctl("start", "--no-block", unit("patient"))
    box.wait_until(lambda: box.show(unit("patient"), "SubState")["SubState"] == "auto-restart",
                   timeout=20, what="the first attempt failed")
    assert job_metrics(box, "patient").get("consecutive_failures", 0) == 0
    (job,) = [j for j in json.loads(box.run([RUN_JOB, "status", "--json"]).stdout)["jobs"]
              if j["slug"] == "patient"]
    assert job["state"] == "running", job
    assert box.show(unit("patient"), "SubState")["SubState"] == "auto-restart"  # still waiting
    box.wait_until(lambda: box.show(unit("patient"), "ActiveState")["ActiveState"] == "failed",
                   timeout=40, what="the run failed")
    assert job_metrics(box, "patient")["consecutive_failures"] == 1
    box.wait_until(lambda: len(mails(box)) == 1, timeout=30, what="one mail")
    assert [(r["result"], r["attempts"]) for r in journal_runs(box, "patient")] == [
        ("exit-code", 2)]
    gaps = waits(records(box, "patient"))
    assert len(gaps) == 2 and all(15.0 <= gap < 15.0 + SLACK for gap in gaps), gaps


def test_what_systemd_252_cannot_do_is_refused_with_one_line(box: SystemdBox) -> None:
    done = box.run([RUN_JOB, "validate"], check=False)
    assert done.returncode == 1
    lines = [line for line in done.stdout.splitlines() + done.stderr.splitlines()
             if ": retry: " in line]
    assert lines == [
        f"{JOBS}/backoff.yaml:4: retry: backoff is not possible on systemd 252: a service has "
        "one RestartSec= (growing delays, RestartSteps=, came in systemd 254); use backoff: 1",
        f"{JOBS}/toooften.yaml:5: retry: the attempts of one run may take 9.5 min, and the "
        "schedule starts runs 5 min apart: systemd's start limit would refuse the next run "
        "(shorten timeout, delay or attempts)",
    ], done.stdout + done.stderr
    for slug in ("backoff", "toooften"):
        assert box.show(unit(slug), "LoadState")["LoadState"] == "not-found"


def test_the_timer_runs_get_the_same_attempts_and_the_next_is_not_refused(
    box: SystemdBox,
) -> None:
    """The job fires every minute and always fails: each run ends on the
    start limit, which must not refuse the next minute's run."""
    box.wait_until(lambda: len([r for r in journal_runs(box, "minutely") if r["result"]]) >= 2,
                   timeout=150, interval=2, what="two scheduled runs")
    runs = [r for r in journal_runs(box, "minutely") if r["result"]]
    assert [(r["result"], r["attempts"]) for r in runs[:2]] == [("exit-code", 2)] * 2
    found = records(box, "minutely")
    assert delays_ok(found), waits(found)
    starts = [int(r["start"]) for r in runs[:2]]  # type: ignore[call-overload]
    assert math.isclose((starts[1] - starts[0]) / 1e6, 60, abs_tol=1.0)
    # a run by hand right after a scheduled one gets its attempts too
    box.wait_until(lambda: box.show(unit("minutely"), "ActiveState")["ActiveState"]
                   in ("inactive", "failed"), timeout=30, what="the scheduled run ended")
    done = box.run([RUN_JOB, "run", "minutely"], check=False)
    assert done.returncode == 7 and done.stdout.split() == ["scheduled"] * 2


# -- growing delays on Debian 13 (systemd 257) -------------------------------------

GROWING = Retry(3, 0.025, 2)  # 1.5 s, 3 s, 6 s
GROWING_JOBS = {
    "growing": textwrap.dedent(f"""\
        name: Growing
        command: /bin/sh -c "echo failing; exit 4"
        timeout: 0.5
        retry: {{attempts: {GROWING.attempts}, delay: {GROWING.delay}, backoff: {GROWING.backoff:g}}}
        """) + FAILMAIL,
}


@pytest.fixture(scope="module")
def trixie_box() -> Iterator[SystemdBox]:
    """Debian 13's systemd 257, running the tree installed with its Python 3.13."""
    with checkout_box(root_of(TRIXIE)) as booted:
        set_up(booted, CONFIG, GROWING_JOBS)
        yield booted


def test_backoff_waits_growing_delays_on_systemd_257(trixie_box: SystemdBox) -> None:
    box = trixie_box
    assert box.run(["systemctl", "--version"]).stdout.split()[1] == "257"
    # our code runs there with Debian 13's own Python (checkout_box installs it)
    shown = box.run([PYTHON, "-c", "import sys; print(sys.version_info[:2])"]).stdout
    assert shown.strip() == "(3, 13)"
    steps = restart_steps(GROWING)
    assert steps is not None
    shown = box.show(unit("growing"), "RestartUSec", "RestartSteps", "RestartMaxDelayUSec",
                     "RestartMode")
    assert shown == {"RestartUSec": "1.500000s", "RestartSteps": "2",
                     "RestartMaxDelayUSec": "6s", "RestartMode": "direct"}, shown
    done = box.run([RUN_JOB, "run", "growing"], check=False, timeout=120)
    assert done.returncode == 4, done.stderr
    assert done.stdout.split() == ["failing"] * 4
    found = records(box, "growing")
    # 4 attempts; the restart after the last is refused by the start limit
    assert [k for k, _w, _i in found] == ["start", "failed", "restart"] * 4 + ["failed"]
    assert len({i for _k, _w, i in found}) == 4
    gaps = waits(found)
    # what the direct runner waits before each retry (cron.direct calls
    # Retry.wait), then the last delay again before the refused start
    expected = [GROWING.wait(i) for i in (1, 2, 3, 3)]
    assert expected == [1.5, 3.0, 6.0, 6.0]
    assert len(gaps) == 4 and all(e <= g < e + SLACK for e, g in zip(expected, gaps, strict=True)), gaps
    (run,) = journal_runs(box, "growing")
    assert run["result"] == "exit-code" and run["attempts"] == 4
    # one failed run on Debian 13 too: one mail, sent through the real SMTP
    # server (without RestartMode=direct systemd 257 started OnFailure= after
    # each attempt and at the end: 5 OnFailure= starts for 4 attempts), and
    # the metrics count it once
    box.wait_until(lambda: mail_done(box, "growing", 0), timeout=30, what="mail sent")
    (mail,) = mails(box)
    assert "Failed:  1 run(s) in a row" in body(mail)
    assert job_metrics(box, "growing")["consecutive_failures"] == 1
    assert job_metrics(box, "growing")["last_run_exit_status"] == 4
