"""The compiled templates are current and render exactly what Jinja2 renders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pc_systemd.model.jobset import load_jobs
from pc_systemd.systemd import units
from pc_systemd.systemd.template_compiler import OUTPUT, compile_all
from tests.conftest import ROOT, Site
from tests.job_files import JOB_FILES


def test_compiled_module_is_current() -> None:
    assert OUTPUT.read_text() == compile_all(), "run: python -m pc_systemd.systemd.template_compiler"


def test_compiled_and_jinja2_render_the_same_units(site: Site) -> None:
    for job in (ROOT / "examples" / "jobs").glob("*.yaml"):
        shutil.copy(job, site.jobs / job.name)
    for slug, text in JOB_FILES.items():
        site.job(slug, text)
    site.configure("user: svc\n")
    config = site.config()
    jobs = load_jobs(config).jobs
    assert len(jobs) > 10
    fast = units.Renderer(config, "/usr/bin/python3", compiled=True)
    slow = units.Renderer(config, "/usr/bin/python3", compiled=False)
    for job in jobs:
        assert fast.job_units(job) == slow.job_units(job), job.slug
    assert fast.reload_units() == slow.reload_units()


def test_an_edited_template_is_rendered_by_jinja2(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "templates"
    shutil.copytree(units.TEMPLATES, copy)
    timer = copy / "job.timer.j2"
    timer.write_text(timer.read_text().replace("AccuracySec=100ms", "AccuracySec=1s"))
    monkeypatch.setattr(units, "TEMPLATES", str(copy))
    site.job("a", "name: A\ncommand: /bin/true\nschedule: '0 * * * *'\n")
    job = load_jobs(site.config()).jobs[0]
    text = dict((u.name, u.text) for u in units.Renderer(site.config()).job_units(job))
    assert "AccuracySec=1s\n" in text["process-control-a.timer"]
