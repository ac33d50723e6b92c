"""The metrics file, written after direct runs and read back by Prometheus'
own text parser (prometheus_client); the systemd side is in
test_record_systemd.py."""

from __future__ import annotations

import datetime as dt
import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from pc_systemd.cron import direct, lock, metrics
from pc_systemd.cron import history as hist
from pc_systemd.model.job import Job
from pc_systemd.model.jobset import find_job
from tests.conftest import Site

Values = dict[str, dict[str, float]]  # metric -> job -> value


def parse(text: str) -> Values:
    """Every sample, through Prometheus' parser (which raises on bad input);
    every metric must be a documented gauge."""
    values: Values = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge", family.name
        assert family.documentation, family.name
        for sample in family.samples:
            assert sample.name == family.name
            assert set(sample.labels) == {"job"}
            values.setdefault(sample.name, {})[sample.labels["job"]] = sample.value
    return values


@pytest.fixture
def metrics_site(site: Site) -> Site:
    (site.root / "textfile").mkdir()
    site.configure_direct(
        f"""\
        metrics_file: {site.root / "textfile" / "process-control.prom"}
        """
    )
    return site


def prom(site: Site) -> Path:
    return site.root / "textfile" / "process-control.prom"


def make_job(site: Site, slug: str, **keys: Any) -> Job:
    site.job(slug, yaml.safe_dump({"name": slug.capitalize(), **keys}))
    return find_job(site.config(), slug)


def run(site: Site, job: Job) -> tuple[int, str]:
    out = io.StringIO()
    return direct.run_job(site.config(), job, out=out), out.getvalue()


def last(site: Site, slug: str) -> hist.Entry:
    entry = hist.load(str(site.root / "state" / f"{slug}.yaml")).last_finished()
    assert entry is not None and entry.start is not None and entry.end is not None
    return entry


def test_each_run_rewrites_the_file_with_every_jobs_last_run(metrics_site: Site) -> None:
    fine = make_job(metrics_site, "fine", command="/bin/true")
    broken = make_job(metrics_site, "broken", command="/bin/sh -c 'exit 3'")
    slow = make_job(metrics_site, "slow", command="/bin/sleep 30", timeout=0.01)
    assert run(metrics_site, fine)[0] == 0
    assert parse(prom(metrics_site).read_text())["process_control_last_run_success"] == \
        {"fine": 1}
    for job in (broken, broken, slow):
        assert run(metrics_site, job)[0] == 1
    values = parse(prom(metrics_site).read_text())
    p = "process_control_"
    assert values[p + "last_run_success"] == {"fine": 1, "broken": 0, "slow": 0}
    assert values[p + "last_run_exit_status"] == {"fine": 0, "broken": 3, "slow": -15}
    assert values[p + "consecutive_failures"] == {"fine": 0, "broken": 2, "slow": 1}
    for slug in ("fine", "broken", "slow"):
        entry = last(metrics_site, slug)
        assert entry.start is not None and entry.end is not None
        assert values[p + "last_run_start_timestamp_seconds"][slug] == entry.start.timestamp()
        assert values[p + "last_run_end_timestamp_seconds"][slug] == entry.end.timestamp()
        assert values[p + "last_run_duration_seconds"][slug] == pytest.approx(entry.duration)
    assert 0.5 < values[p + "last_run_duration_seconds"]["slow"] < 5  # 0.6 s timeout
    assert values[p + "last_success_timestamp_seconds"] == {
        "fine": last(metrics_site, "fine").end.timestamp()  # type: ignore[union-attr]
    }
    # The format itself: HELP and TYPE before each metric's samples.
    text = prom(metrics_site).read_text()
    assert text.startswith(
        "# HELP process_control_last_run_start_timestamp_seconds When the job's last finished "
        "run started (unix time).\n"
        "# TYPE process_control_last_run_start_timestamp_seconds gauge\n"
        'process_control_last_run_start_timestamp_seconds{job="broken"} '
    )
    assert oct(prom(metrics_site).stat().st_mode & 0o777) == "0o644"
    assert sorted(os.listdir(metrics_site.root / "textfile")) == [
        "process-control.prom", "process-control.prom.lock"]  # no temporary file left


def test_a_run_that_did_not_start_has_no_exit_status(metrics_site: Site) -> None:
    busy = make_job(metrics_site, "busy", command="/bin/true")
    (metrics_site.root / "run").mkdir()
    with lock.acquire(lock.lock_path(str(metrics_site.root / "run"), "busy")):
        assert run(metrics_site, busy)[0] == 1
    values = parse(prom(metrics_site).read_text())
    assert values["process_control_last_run_success"] == {"busy": 0}
    assert "busy" not in values.get("process_control_last_run_exit_status", {})


def write_history(site: Site, slug: str, status: str, when: dt.datetime) -> None:
    path = str(site.root / "state" / f"{slug}.yaml")
    entry = hist.Entry(status, when, start=when, end=when + dt.timedelta(seconds=2), code=0)
    hist.update(path, lambda h: h.finished(entry), print)


def test_a_missing_file_is_rebuilt_from_every_history_and_removed_jobs_drop_out(
    metrics_site: Site,
) -> None:
    (metrics_site.root / "state").mkdir()
    when = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    for slug in ("a", "b", "c"):
        make_job(metrics_site, slug, command="/bin/true")
        write_history(metrics_site, slug, "completed", when)
    make_job(metrics_site, "never", command="/bin/true")  # no history: no samples
    config = metrics_site.config()
    metrics.update(config, "a", print)
    starts = parse(prom(metrics_site).read_text())["process_control_last_run_start_timestamp_seconds"]
    assert starts == {"a": when.timestamp(), "b": when.timestamp(), "c": when.timestamp()}
    (metrics_site.jobs / "b.yaml").unlink()
    metrics.update(config, "a", print)
    assert set(parse(prom(metrics_site).read_text())["process_control_last_run_success"]) == \
        {"a", "c"}


WRITER = textwrap.dedent(
    """
    import datetime as dt, sys
    from pc_systemd.cron import history as hist
    from pc_systemd.cron import metrics
    from pc_systemd.model.config import load_config
    config = load_config(sys.argv[1], {})
    slug, count = sys.argv[2], int(sys.argv[3])
    for n in range(count):
        now = dt.datetime.now(dt.UTC)
        entry = hist.Entry("failed", now, start=now, end=now, code=n)
        hist.update(hist.history_path(config.state_directory, slug),
                    lambda h: h.finished(entry), print)
        metrics.update(config, slug, print)
    """
)


def test_concurrent_writers_of_different_jobs_converge(metrics_site: Site) -> None:
    (metrics_site.root / "state").mkdir()
    slugs = [f"job{n}" for n in range(6)]
    for slug in slugs:
        make_job(metrics_site, slug, command="/bin/true")
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(metrics_site.config_file), slug, "15"])
        for slug in slugs
    ]
    assert [w.wait(120) for w in writers] == [0] * len(slugs)
    values = parse(prom(metrics_site).read_text())
    # Every job's samples are those of its final history: no writer lost
    # another's update.
    assert values["process_control_consecutive_failures"] == {slug: 15 for slug in slugs}
    assert values["process_control_last_run_exit_status"] == {slug: 14 for slug in slugs}
    for slug in slugs:
        assert values["process_control_last_run_end_timestamp_seconds"][slug] == \
            last(metrics_site, slug).end.timestamp()  # type: ignore[union-attr]


def test_a_metrics_file_that_cannot_be_written_costs_one_line(metrics_site: Site) -> None:
    (metrics_site.root / "textfile").rmdir()
    job = make_job(metrics_site, "fine", command="/bin/true")
    status, out = run(metrics_site, job)
    assert status == 0
    assert out == (f"run-job: metrics file {prom(metrics_site)} not written: "
                   "No such file or directory\n")
    assert last(metrics_site, "fine").status == "completed"  # the history has the run


def test_no_metrics_file_configured_writes_nothing(site: Site) -> None:
    site.configure_direct()
    job = make_job(site, "fine", command="/bin/true")
    assert run(site, job) == (0, "")
    assert sorted(os.listdir(site.root / "state")) == ["fine.yaml", "fine.yaml.lock"]
