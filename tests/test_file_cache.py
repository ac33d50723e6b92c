"""The per-file cache (pc_systemd.model.file_cache) and its users: the generator
and cron-generate give the same bytes and messages from the cache as
without it, re-read exactly the files that changed, and never trust a cache
someone else could have written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pc_systemd.cli.cron_generate import main as cron_generate
from pc_systemd.cron import crontab
from pc_systemd.model import file_cache
from pc_systemd.systemd import generator
from tests.conftest import ROOT, Site, record_reads

PYTHON = "/opt/pc/bin/python"
NOBODY = 65534


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written by the test count as settled (see test_a_file_changed_...)."""
    monkeypatch.setattr(file_cache, "SETTLE_NS", 0)


def example_site(site: Site) -> None:
    for job in (ROOT / "examples" / "jobs").glob("*.yaml"):
        shutil.copy(job, site.jobs / job.name)
    site.job("zz_bad", "name: Bad\ncommand: /bin/true\ntimeout: -1\n")
    site.job("zz_warn", "name: Warn\ncommand: /bin/true\nshedule: '1 * * * *'\n")
    (site.jobs / "link.yaml").symlink_to(site.jobs / "zz_warn.yaml")
    site.configure("user: svc\n")


def tree(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): os.readlink(p).replace(str(out), "OUT")
            if p.is_symlink() else p.read_text()
            for p in sorted(out.rglob("*")) if not p.is_dir()}


def generate(site: Site, out: Path, cache: bool = True) -> tuple[int, list[str], dict[str, str]]:
    messages: list[str] = []
    code = generator.generate(str(out), lambda level, msg: messages.append(f"{level} {msg}"),
                              str(site.config_file), PYTHON, cache=cache)
    return code, messages, tree(out)


def built(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Record which job files the generator reads and renders."""
    return record_reads(monkeypatch, generator, "build")


def refresh(site: Site) -> list[str]:
    return generator.refresh_cache(str(site.config_file), PYTHON)


# -- identity and the cache file ---------------------------------------------------


def test_identity_changes_with_the_file_and_with_a_symlinks_target(tmp_path: Path) -> None:
    a, b, link = tmp_path / "a", tmp_path / "b", tmp_path / "link"
    a.write_text("one")
    b.write_text("one")
    link.symlink_to(a)
    first, via_link = file_cache.identity(str(a)), file_cache.identity(str(link))
    assert first is not None and via_link is not None
    assert file_cache.identity(str(a)) == first
    a.write_text("two")  # same size, rewritten in place
    os.utime(a, ns=(first[3], first[3]))  # even with the old modification time
    assert file_cache.identity(str(a)) != first  # the change time moved
    link.unlink()
    link.symlink_to(b)  # the same link text length, another target
    assert file_cache.identity(str(link)) != via_link
    assert file_cache.identity(str(tmp_path / "missing")) is None


def test_a_file_changed_within_the_settle_time_is_not_kept(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.yaml"
    fresh.write_text("x")
    old = tmp_path / "old.yaml"
    old.write_text("y")
    ident = file_cache.identity(str(old))
    assert ident is not None
    dev, ino, size, mtime_ns, ctime_ns, *link = ident
    aged = (dev, ino, size, mtime_ns - 3_000_000_000, ctime_ns - 3_000_000_000, *link)
    store = file_cache.Cache("t", None)
    now = file_cache.identity(str(fresh))
    assert now is not None
    store.save("data", {"fresh.yaml": (now, 1), "old.yaml": (aged, 2)})
    loaded = store.load()
    assert loaded == ("data", {"old.yaml": (aged, 2)})


def test_a_cache_is_only_for_its_context(site: Site, settled: None) -> None:
    store = file_cache.Cache("t", str(site.config_file))
    store.save("data", {})
    assert store.load() == ("data", {})
    assert file_cache.Cache("other", str(site.config_file)).load() is None
    time.sleep(0.01)
    site.configure("user: svc\n")  # the configuration changed
    assert file_cache.Cache("t", str(site.config_file)).load() is None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand files to another user")
def test_a_cache_anyone_else_could_have_written_is_ignored(site: Site, settled: None) -> None:
    store = file_cache.Cache("t", str(site.config_file))
    directory = os.path.dirname(store.path)
    for spoil, undo in (
        (lambda: os.chown(store.path, NOBODY, -1), lambda: os.chown(store.path, 0, -1)),
        (lambda: os.chmod(store.path, 0o664), lambda: os.chmod(store.path, 0o644)),
        (lambda: os.chmod(directory, 0o777), lambda: os.chmod(directory, 0o755)),
        (lambda: os.chown(directory, NOBODY, -1), lambda: os.chown(directory, 0, -1)),
    ):
        store.save("data", {})
        assert store.load() == ("data", {})
        spoil()
        assert store.load() is None
        undo()


def test_a_damaged_cache_is_ignored(site: Site, settled: None) -> None:
    store = file_cache.Cache("t", str(site.config_file))
    store.save("data", {})
    good = Path(store.path).read_bytes()
    # (the last: marshal would build a list of 1.5 billion items)
    for junk in (b"", b"\x00garbage", good[:-1], good[:-2] + b"[[", good[:13] + b"[" * 100):
        Path(store.path).write_bytes(junk)
        start = time.perf_counter()
        assert store.load() is None
        assert time.perf_counter() - start < 1


# -- the generator -------------------------------------------------------------------


def test_the_generator_writes_the_same_from_the_cache(
    site: Site, tmp_path: Path, settled: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    example_site(site)
    cold = generate(site, tmp_path / "cold", cache=False)
    assert any("zz_bad" in m for m in cold[1]) and any("shedule" in m for m in cold[1])
    problems = refresh(site)
    assert problems and all("zz_bad" in p for p in problems)
    calls = built(monkeypatch)
    warm = generate(site, tmp_path / "warm")
    assert calls == []  # nothing read or rendered
    files = len(list(site.jobs.glob("*.yaml")))
    assert warm[1][-1] == cold[1][-1] + f" ({files} unchanged file(s) from the cache)"
    assert (warm[0], warm[1][:-1], warm[2]) == (cold[0], cold[1][:-1], cold[2])


def test_the_generator_reads_only_the_files_that_changed(
    site: Site, tmp_path: Path, settled: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    example_site(site)
    refresh(site)
    site.job("zz_bad", "name: Fixed\ncommand: /bin/true\nschedule: '5 * * * *'\n")
    site.job("new", "name: New\ncommand: /bin/true\n")
    (site.jobs / "month_start.yaml").unlink()
    calls = built(monkeypatch)
    warm = generate(site, tmp_path / "warm")
    assert calls == [["new.yaml", "zz_bad.yaml"]]
    monkeypatch.undo()
    cold = generate(site, tmp_path / "cold", cache=False)
    assert (warm[0], warm[1][:-1], warm[2]) == (cold[0], cold[1][:-1], cold[2])
    assert "process-control-zz_bad.timer" in warm[2]
    assert "process-control-month_start.service" not in warm[2]


def test_a_changed_configuration_or_python_regenerates_everything(
    site: Site, tmp_path: Path, settled: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    example_site(site)
    refresh(site)
    site.configure("user: other\n")
    calls = built(monkeypatch)
    changed = generate(site, tmp_path / "a")
    assert len(calls) == 1 and len(calls[0]) == len(list(site.jobs.glob("*.yaml")))
    assert "User=other" in changed[2]["process-control-zz_warn.service"]
    refresh(site)
    calls.clear()
    generator.generate(str(tmp_path / "b"), lambda _l, _m: None, str(site.config_file),
                       "/another/python")
    assert len(calls) == 1 and len(calls[0]) > 1


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand files to another user")
def test_a_planted_cache_never_reaches_the_units(
    site: Site, tmp_path: Path, settled: None
) -> None:
    """A cache written by someone else cannot make a unit run as root."""
    site.job("a", "name: A\ncommand: /bin/true\n")
    refresh(site)
    store = file_cache.Cache(generator.KIND, str(site.config_file), generator._context(PYTHON))
    loaded = store.load()
    assert loaded is not None
    data, entries = loaded
    (ident, (done, messages, units, hold_keys)) = entries["a.yaml"]
    evil = tuple((n, t.replace("User=process-control", "User=root"), w) for n, t, w in units)
    store.save(data, {"a.yaml": (ident, (done, messages, evil, hold_keys))})
    assert "User=root" in generate(site, tmp_path / "trusted")[2]["process-control-a.service"]
    os.chown(store.path, NOBODY, -1)
    planted = generate(site, tmp_path / "planted")[2]["process-control-a.service"]
    assert "User=root" not in planted and "User=process-control" in planted


def test_a_broken_job_directory_is_reported_even_with_a_cache(
    site: Site, tmp_path: Path, settled: None
) -> None:
    site.job("a", "name: A\ncommand: /bin/true\n")
    refresh(site)
    shutil.rmtree(site.jobs)
    warm = generate(site, tmp_path / "warm")
    assert any("job_directory" in m for m in warm[1])
    assert warm == generate(site, tmp_path / "cold", cache=False)


# -- cron-generate -------------------------------------------------------------------


def test_cron_generate_gives_the_same_file_from_the_cache(
    site: Site, settled: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    example_site(site)
    out = site.root / "crontab"
    site.configure(f"user: svc\noutput_crontab: {out}\n")
    args = ["--config", str(site.config_file)]
    assert cron_generate([*args, "--no-cache"]) == 1  # zz_bad
    cold = out.read_bytes()
    out.unlink()
    assert cron_generate(args) == 1  # fills the cache
    assert out.read_bytes() == cold
    reads = record_reads(monkeypatch, crontab, "render_part")
    out.unlink()
    assert cron_generate(args) == 1
    assert out.read_bytes() == cold and reads == []
    site.job("zz_bad", "name: Fixed\ncommand: /bin/true\nschedule: '5 * * * *'\n")
    assert cron_generate(args) == 0
    assert reads == [["zz_bad.yaml"]]
    assert b" --job zz_bad" in out.read_bytes()
    monkeypatch.undo()
    fixed = out.read_bytes()
    assert cron_generate([*args, "--no-cache"]) == 0 and out.read_bytes() == fixed


def test_the_cached_generator_imports_no_parser_and_no_typing(
    site: Site, tmp_path: Path, settled: None
) -> None:
    """The boot-time path: interpreter, the cache, os calls; nothing else."""
    example_site(site)
    generator.refresh_cache(str(site.config_file), sys.executable)
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-X", "importtime",
         str(ROOT / "generators" / "process-control-generator"), str(tmp_path / "out")],
        env={**os.environ, "PROCESS_CONTROL_CONFIG": str(site.config_file)},
        capture_output=True, text=True, check=True,
    )
    lines = result.stderr.splitlines()
    files = len(list(site.jobs.glob("*.yaml")))
    assert lines[-1].endswith(f"({files} unchanged file(s) from the cache)")
    imported = {line.split("|")[-1].strip() for line in lines if line.startswith("import time:")}
    assert "pc_systemd.model.file_cache" in imported
    heavy = {"pc_systemd.model.config", "pc_systemd.model.job", "pc_systemd.systemd.units", "pc_systemd.model.nodes",
             "yaml", "jinja2", "click", "dataclasses", "typing", "re", "contextlib", "collections"}
    assert imported & heavy == set()
