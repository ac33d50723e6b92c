"""The generator's units handed to a real systemd (booted in a container).

One container for the module: the generator is installed with the
documented command (``run-job --install-generator``), jobs are written, and
everything is checked through systemd itself.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cronsim import CronSim

from tests.job_files import JOB_FILES
from tests.systemd_box import SystemdBox, checkout_box

pytestmark = pytest.mark.systemd

VENV = Path(sys.prefix)
RUN_JOB = str(VENV / "bin" / "run-job")
JOBS = "/var/lib/process-control"
USER = "pcuser"

CONFIG = f"""\
user: {USER}
job_directory: {JOBS}
output_directory: /var/log/process-control
"""


@pytest.fixture(scope="module")
def box() -> Iterator[SystemdBox]:
    with checkout_box() as booted:
        booted.run(["useradd", "--create-home", USER])
        booted.write_file("/etc/process-control.yaml", CONFIG)
        for slug, text in JOB_FILES.items():
            booted.write_file(f"{JOBS}/{slug}.yaml", text)
        booted.run([RUN_JOB, "--install-generator"])
        yield booted


def active(box: SystemdBox, unit: str) -> str:
    return box.show(unit, "ActiveState")["ActiveState"]


def our_timers(box: SystemdBox) -> set[str]:
    out = box.systemctl("list-units", "--all", "--plain", "--no-legend", "--state=active",
                        "process-control-*.timer").stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def cron_next(expr: str, box: SystemdBox) -> dt.datetime:
    now = dt.datetime.fromtimestamp(float(box.run(["date", "+%s.%N"]).stdout))
    return next(CronSim(expr, now.replace(microsecond=0)))


def next_elapse(box: SystemdBox, timer: str) -> dt.datetime:
    props = box.show(timer, "NextElapseUSecRealtime")
    stamp = props["NextElapseUSecRealtime"]  # e.g. "Mon 2026-11-30 02:30:00 UTC"
    return dt.datetime.strptime(" ".join(stamp.split()[1:3]), "%Y-%m-%d %H:%M:%S")


def test_install_command_put_the_generator_where_systemd_looks(box: SystemdBox) -> None:
    text = box.run(["cat", "/etc/systemd/system-generators/process-control-generator"]).stdout
    assert "installed by run-job --install-generator" in text
    assert box.show("process-control-every5.service", "LoadState")["LoadState"] == "loaded"


def test_scheduled_timers_are_active_and_elapse_at_the_cron_time(box: SystemdBox) -> None:
    assert our_timers(box) == {
        "process-control-every5.timer",
        "process-control-weekday.timer",
        "process-control-orrule.timer",
    }
    for slug, expr in (("every5", "*/5 * * * *"), ("weekday", "30 2 * * mon-fri"),
                       ("orrule", "0 12 13 * fri")):
        assert next_elapse(box, f"process-control-{slug}.timer") == cron_next(expr, box), slug


def test_disabled_job_has_a_service_but_no_active_timer(box: SystemdBox) -> None:
    assert box.show("process-control-disabled.service", "LoadState")["LoadState"] == "loaded"
    assert active(box, "process-control-disabled.timer") == "inactive"


def test_broken_job_is_skipped_and_logged_the_others_work(box: SystemdBox) -> None:
    assert box.show("process-control-broken.service", "LoadState")["LoadState"] == "not-found"
    # The generator logs to /dev/kmsg; a container has none, and then to
    # /dev/log: either way the journal has it under the generator's name.
    logged = box.run(["journalctl", "-t", "process-control-generator", "--no-pager",
                      "-o", "cat"]).stdout
    assert f"{JOBS}/broken.yaml:3: schedule: minute: 61 is out of range" in logged
    box.systemctl("start", "process-control-manual.service")  # a good job still runs


def test_job_runs_as_the_service_user_in_its_home(box: SystemdBox) -> None:
    box.systemctl("start", "process-control-manual.service")
    owner = box.run(["stat", "-c", "%U", f"/home/{USER}/made-by-job"]).stdout.strip()
    assert owner == USER


def test_timeout_kills_the_whole_tree(box: SystemdBox) -> None:
    started = time.monotonic()
    result = box.systemctl("start", "process-control-sleeper.service", check=False)
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert 2.5 < elapsed < 15, elapsed
    props = box.show("process-control-sleeper.service", "Result", "ActiveState")
    assert props == {"Result": "timeout", "ActiveState": "failed"}
    left = box.run(["pgrep", "-u", USER, "-a", "sleep"], check=False)
    assert (left.returncode, left.stdout) == (1, "")


def test_a_failing_command_stops_the_list_and_fails_the_unit(box: SystemdBox) -> None:
    assert box.systemctl("start", "process-control-stops.service", check=False).returncode != 0
    assert box.show("process-control-stops.service", "Result")["Result"] == "exit-code"
    run = box.invocations("process-control-stops.service")[-1]
    lines = box.journal("process-control-stops.service", run, manager_messages=False)
    assert lines == ["first-step"]


def test_two_hundred_thousand_lines_all_reach_the_journal(box: SystemdBox) -> None:
    box.systemctl("start", "process-control-chatty.service")
    run = box.invocations("process-control-chatty.service")[-1]
    box.sync_journal()
    out = box.run(["journalctl", "--namespace=process-control", f"_SYSTEMD_INVOCATION_ID={run}",
                   "-o", "cat", "--no-pager"],
                  timeout=120).stdout.splitlines()
    assert out == [str(n) for n in range(1, 200001)]


def test_file_logging_writes_one_file_per_run_with_all_output(box: SystemdBox) -> None:
    box.systemctl("start", "process-control-tofile.service")
    listing = box.run(["ls", "/var/log/process-control/tofile"]).stdout.split()
    assert len(listing) == 1, listing  # one file for the run
    name = listing[0]
    # The run's link (for the failure mail) names it; the next day's run removes it.
    run = box.invocations("process-control-tofile.service")[-1]
    link = box.run(["readlink", f"/var/log/process-control/tofile/.run-{run}"]).stdout.strip()
    assert link == name
    assert name.startswith("tofile-") and name.endswith(".log")
    stamp = name[len("tofile-"):-len(".log")]
    dt.datetime.strptime(stamp, "%Y%m%d-%H%M%S")
    path = f"/var/log/process-control/tofile/{name}"
    text = box.run(["cat", path]).stdout
    assert text == "".join(f"{n}\n" for n in range(1, 50001)) + "to-stderr\n"
    assert box.run(["stat", "-c", "%U %a", path]).stdout.split() == [USER, "640"]
    time.sleep(1.1)  # a second run, a second file
    box.systemctl("start", "process-control-tofile.service")
    assert len(box.run(["ls", "/var/log/process-control/tofile"]).stdout.split()) == 2


def test_arguments_and_environment_reach_the_job_exactly(box: SystemdBox) -> None:
    box.systemctl("start", "process-control-exact.service")
    run = box.invocations("process-control-exact.service")[-1]
    lines = box.journal("process-control-exact.service", run, manager_messages=False)
    assert lines == ['$HOME %n %% a "quoted" \\ word ${PATH} ;']
    box.systemctl("start", "process-control-exact.slow-start.service")
    run = box.invocations("process-control-exact.slow-start.service")[-1]
    env = box.journal("process-control-exact.slow-start.service", run, manager_messages=False)
    assert "PCT=50% $USER ${HOME} \\n" in env
    assert 'QUOTE=say "hi"' in env
    assert "FLAG=True" in env
    desc = box.show("process-control-exact.service", "Description")["Description"]
    assert desc == "process-control job exact: Exact 100% $HOME"


def test_reload_applies_added_changed_disabled_and_removed_jobs(box: SystemdBox) -> None:
    box.systemctl("stop", "process-control-reload.path")  # this test drives --reload itself
    try:
        box.write_file(f"{JOBS}/added.yaml", "name: New\ncommand: /bin/true\nschedule: '7 7 * * *'\n")
        box.write_file(f"{JOBS}/every5.yaml",
                       "name: Every five\ncommand: /bin/true\nschedule: '3 4 * * *'\n")
        box.write_file(f"{JOBS}/weekday.yaml",
                       "name: Weekday\ncommand: /bin/true\nschedule: '30 2 * * mon-fri'\n"
                       "disabled: true\n")
        box.run(["rm", f"{JOBS}/orrule.yaml"])
        result = box.run([RUN_JOB, "--reload"], check=False)
        assert result.returncode == 1  # the broken job is still there, and reported
        assert f"{JOBS}/broken.yaml:3: schedule:" in result.stderr
        assert our_timers(box) == {"process-control-every5.timer", "process-control-added.timer"}
        assert next_elapse(box, "process-control-every5.timer") == cron_next("3 4 * * *", box)
        assert next_elapse(box, "process-control-added.timer") == cron_next("7 7 * * *", box)
    finally:
        box.systemctl("start", "process-control-reload.path")


def test_the_path_unit_applies_changes_by_itself(box: SystemdBox) -> None:
    assert active(box, "process-control-reload.path") == "active"
    box.write_file(f"{JOBS}/auto.yaml", "name: Auto\ncommand: /bin/true\nschedule: '9 9 * * *'\n")
    box.run(["rm", "-f", f"{JOBS}/added.yaml"])
    box.wait_until(
        lambda: our_timers(box) == {"process-control-every5.timer", "process-control-auto.timer"},
        timeout=20, what="timers to follow the job directory",
    )
    assert next_elapse(box, "process-control-auto.timer") == cron_next("9 9 * * *", box)


def test_a_hostile_job_set_neither_slows_daemon_reload_nor_stops_deploys(box: SystemdBox) -> None:
    """400 files of as many duplicate keys as fit in the size limit, each
    composed whole, would keep the generator past systemd's 90 s: daemon-reload
    would take 90 s and the reload units would never be written. Read cold,
    as after an upgrade."""
    stage = box.path("/var/lib/pc-hostile-stage")
    stage.mkdir()
    text = "name: a\ncommand: /bin/true\n" + "x: 1\n" * 52000
    for n in range(400):
        (stage / f"hostile{n:03d}.yaml").write_text(text)
    box.systemctl("stop", "process-control-reload.path")  # this test times the reload itself
    try:
        box.run(["sh", "-c", f"mv /var/lib/pc-hostile-stage/*.yaml {JOBS}/"])
        box.run(["rm", "-rf", "/var/cache/pc-systemd"])  # every file read, none from the cache
        started = time.monotonic()
        box.systemctl("daemon-reload")
        elapsed = time.monotonic() - started
        assert elapsed < 20, elapsed  # about 3.5 s here, on 2 cores
        props = box.show("process-control-reload.path", "LoadState", "UnitFileState")
        assert props["LoadState"] == "loaded"

        def summary() -> str | None:
            logged = box.run(["journalctl", "-t", "process-control-generator", "--no-pager",
                              "-o", "cat"]).stdout.splitlines()
            last = [line for line in logged if line.startswith("generated units of")]
            return last[-1] if last and "skipped 40" in last[-1] else None

        line = box.wait_until(summary, timeout=20, what="the generator's summary")
        assert "from the cache" not in line  # read cold
        assert int(line.split("skipped ")[1].split()[0]) == 400 + 1  # and the broken job
        box.systemctl("start", "process-control-reload.path")
        # a deploy after the hostile one still applies itself
        box.write_file(f"{JOBS}/later.yaml",
                       "name: Later\ncommand: /bin/true\nschedule: '11 11 * * *'\n")
        box.wait_until(lambda: "process-control-later.timer" in our_timers(box),
                       timeout=60, what="the later deploy to apply itself")
    finally:
        box.run(["sh", "-c", f"rm -rf /var/lib/pc-hostile-stage {JOBS}/hostile*.yaml "
                 f"{JOBS}/later.yaml"])
        box.systemctl("start", "process-control-reload.path")
        box.run([RUN_JOB, "--reload"], check=False)
