"""The generator under hostile load (issue 12, item 6): every job file is
bounded in size and in parsing work, the whole run in time and log lines,
our own units are written before any job's, and a job directory the
service user could write is refused."""

from __future__ import annotations

import grp
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pc_systemd.model import job, nodes
from pc_systemd.model.errors import PcError
from pc_systemd.model.nodes import MAX_BYTES, MAX_NODES
from pc_systemd.model.writers import directories, service_user_can_write
from pc_systemd.systemd import generator
from pc_systemd.systemd.units import Renderer
from tests.conftest import ROOT, Site

PYTHON = "/opt/pc/bin/python"
NOBODY = 65534
HEAD = "name: a\ncommand: /bin/true\n"
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")


def filled(unit: str, head: str = HEAD, tail: str = "") -> str:
    """``head``, then ``unit`` as often as fits under the size limit, then ``tail``."""
    return head + unit * ((MAX_BYTES - len(head) - len(tail)) // len(unit)) + tail


def run(site: Site, out: Path, **kwargs: Any) -> tuple[int, list[str]]:
    messages: list[str] = []
    code = generator.generate(str(out), lambda _level, msg: messages.append(msg),
                              str(site.config_file), PYTHON, **kwargs)
    return code, messages


def our_unit_names(site: Site) -> list[str]:
    return [name for name, _text, _wanted in
            generator.reload_units(Renderer(site.config(), PYTHON))]


def unit_files(out: Path) -> set[str]:
    return {p.name for p in out.iterdir() if p.is_file()}


# -- the size limit, before any parsing ----------------------------------------


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The length of every text handed to the YAML readers."""
    lengths: list[int] = []
    real = nodes.parse

    def recording(text: str, shown: str) -> nodes.Node | None:
        lengths.append(len(text))
        return real(text, shown)

    monkeypatch.setattr(nodes, "parse", recording)
    return lengths


def test_a_file_over_the_size_limit_is_refused_unparsed_by_every_reader(
    site: Site, tmp_path: Path, parsed: list[int]
) -> None:
    site.job("good", HEAD)
    big = site.job("big", filled("x: 1\n") + "y" * 100)
    assert big.stat().st_size > MAX_BYTES
    expected = f"{big}:1: (file): file is larger than {MAX_BYTES} bytes (job skipped)"
    code, messages = run(site, tmp_path / "out", cache=False)
    assert code == 0 and expected in messages
    errors = generator.refresh_cache(str(site.config_file), PYTHON)
    assert errors == [expected]
    with pytest.raises(PcError, match="file is larger than"):
        job.load_job(str(big), site.config())
    assert parsed and max(parsed) < 1000  # only the good file's text was parsed


def test_a_sparse_file_of_a_gigabyte_is_refused_without_reading_it(
    site: Site, tmp_path: Path
) -> None:
    path = site.jobs / "sparse.yaml"
    with path.open("wb") as handle:
        handle.truncate(2**30)
    started = time.process_time()
    with pytest.raises(PcError, match="file is larger than"):
        nodes.read_text(str(path), str(path))
    assert time.process_time() - started < 0.05


def test_text_over_the_size_limit_is_refused_by_parse_itself() -> None:
    with pytest.raises(PcError, match="file is larger than"):
        nodes.parse("x: 1\n" * (MAX_BYTES // 5 + 1), "f")


# -- the work per file ---------------------------------------------------------


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many events each document pulled from the YAML parser."""
    counts: list[int] = []

    class Counting(nodes.Loader):  # type: ignore[misc, name-defined]
        def __init__(self, text: str) -> None:
            super().__init__(text)
            counts.append(0)

        def get_event(self) -> Any:
            counts[-1] += 1
            return super().get_event()

    monkeypatch.setattr(nodes, "Loader", Counting)
    return counts


HOSTILE = {
    "duplicate keys": (filled("x: 1\n"), "x"),
    "duplicate keys in a flow mapping": (filled("a: 1, ", HEAD + "x: {", "a: 1}\n"), "x"),
    "duplicate environment variables": (filled("  A: b\n", HEAD + "environment:\n"),
                                        "environment"),
    "a long block list": (filled("  - /bin/true\n", "name: a\ncommand:\n"), "command"),
    "a long flow list": (filled("t, ", HEAD + "tag: [", "t]\n"), "tag"),
    "unknown keys": ("".join(f"k{n}: v\n" for n in range(20_000)), None),
    "an alias bomb": (HEAD + "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                      "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                      "d: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n", "d"),
}


@pytest.mark.parametrize("text, key", HOSTILE.values(), ids=HOSTILE.keys())
def test_parsing_stops_at_the_node_limit(text: str, key: str | None, events: list[int]) -> None:
    assert len(text) <= MAX_BYTES
    started = time.process_time()
    with pytest.raises(PcError) as raised:
        nodes.parse(text, "f")
    spent = time.process_time() - started
    (problem,) = raised.value.problems
    assert problem.message == f"value is too large (more than {MAX_NODES} nodes after aliases)"
    if key is not None:
        assert problem.key == key
    # parsing stopped at the node one too many: no more than two events a node
    assert len(events) == 1 and 0 < events[0] <= 2 * MAX_NODES + 4
    assert spent < 0.2, spent  # ~5 ms here; generous for a busy machine


def test_fifty_thousand_duplicate_keys_are_not_composed_whole(events: list[int]) -> None:
    text = filled("x: 1\n")
    assert text.count("x: 1") > 50_000
    with pytest.raises(PcError):
        nodes.parse(text, "f")
    assert 0 < events[0] < text.count("x: 1")  # not every key was even parsed


def test_the_node_limit_is_exact() -> None:
    # root mapping, name and command (2 nodes each), the tag key and its list
    at_limit = HEAD + "tag: [" + ", ".join(["t"] * (MAX_NODES - 7)) + "]\n"
    node = nodes.compose_nodes(at_limit, "f")
    assert isinstance(node, nodes.Map) and len(node.items) == 3
    with pytest.raises(PcError, match="too large"):
        nodes.compose_nodes(at_limit.replace("[", "[t, "), "f")


def test_a_thousand_variables_pass_the_node_limit() -> None:
    # 1,000 variables: 2,007 nodes on 1,004 lines
    text = HEAD + "environment:\n" + "".join(f"  V{n}: x\n" for n in range(1000))
    with pytest.raises(PcError, match="more than 2000 nodes"):
        nodes.parse(text, "f")


# -- our units first -----------------------------------------------------------


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    names: list[str] = []
    real = generator.write_unit

    def recording(directory: str, name: str, text: str) -> None:
        names.append(name)
        real(directory, name, text)

    monkeypatch.setattr(generator, "write_unit", recording)
    return names


def many_jobs(site: Site, count: int = 5) -> None:
    site.configure("user: svc\n")
    for n in range(count):
        site.job(f"job{n}", f"name: Job {n}\ncommand: /bin/true\nschedule: '{n} * * * *'\n")


@pytest.mark.parametrize("cached", [False, True], ids=["cold", "cached"])
def test_our_units_are_written_before_any_jobs(
    site: Site, tmp_path: Path, written: list[str], monkeypatch: pytest.MonkeyPatch,
    cached: bool,
) -> None:
    many_jobs(site)
    ours = our_unit_names(site)
    if cached:
        monkeypatch.setattr(generator.file_cache, "SETTLE_NS", 0)
        assert generator.refresh_cache(str(site.config_file), PYTHON) == []
    code, messages = run(site, tmp_path / "out")
    assert code == 0
    assert ("unchanged file(s) from the cache" in messages[-1]) == cached
    assert written[: len(ours)] == ours
    assert len(written) == len(ours) + 10  # a service and a timer per job


def test_a_run_stopped_while_reading_jobs_has_written_our_units(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    many_jobs(site)

    def killed(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt  # as systemd's SIGKILL at 90 s, as far as files go

    monkeypatch.setattr(job, "load_job", killed)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run(site, out)
    assert unit_files(out) == set(our_unit_names(site))
    assert os.listdir(out / "paths.target.wants") == ["process-control-reload.path"]


# -- the whole run -------------------------------------------------------------


def test_files_beyond_the_time_budget_are_skipped_one_line_each(
    site: Site, tmp_path: Path
) -> None:
    many_jobs(site, 3)
    out = tmp_path / "out"
    code, messages = run(site, out, budget=0)
    assert code == 0
    assert messages == [
        *(f"{site.jobs}/job{n}.yaml:1: (file): not read: the generator's 0 s for job files "
          "were used up (job skipped)" for n in range(3)),
        "generated units of 0 job(s), skipped 3",
    ]
    assert unit_files(out) == set(our_unit_names(site))
    assert run(site, tmp_path / "again")[1] == ["generated units of 3 job(s), skipped 0"]


def test_one_file_logs_at_most_ten_lines(site: Site, tmp_path: Path) -> None:
    site.job("noisy", HEAD + "".join(f"unknown{n}: v\n" for n in range(30)))
    code, messages = run(site, tmp_path / "out")
    assert code == 0
    assert len(messages) == generator.MAX_MESSAGES + 1
    assert messages[-2] == (f"{site.jobs}/noisy.yaml:1: (file): 21 more problem(s) not shown "
                            "here (run-job --validate lists them)")
    assert messages[-1] == "generated units of 1 job(s), skipped 0"
    assert (tmp_path / "out" / "process-control-noisy.service").exists()


def test_hostile_load_finishes_in_bounded_time_with_our_units(
    site: Site, tmp_path: Path
) -> None:
    """400 files of as many duplicate keys as fit, the load that kept the
    root generator past systemd's 90 s; as systemd runs it, cold."""
    text = filled("x: 1\n")
    for n in range(400):
        (site.jobs / f"hostile{n:03d}.yaml").write_text(text)
    site.job("good", HEAD + "schedule: '5 * * * *'\n")
    out = tmp_path / "out"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-I", "-S", str(ROOT / "generators" / "process-control-generator"),
         str(out), str(out), str(out)],
        env={**os.environ, "PROCESS_CONTROL_CONFIG": str(site.config_file)},
        capture_output=True, text=True, check=False, timeout=120,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert elapsed < 20, elapsed  # about 1.5 s here, on 2 cores
    lines = result.stderr.splitlines()
    assert len(lines) == 401
    assert lines[-1] == "process-control-generator: generated units of 1 job(s), skipped 400"
    assert {p.name for p in out.iterdir() if p.is_file()} == {
        *our_unit_names(site), "process-control-good.service", "process-control-good.timer"}


# -- a job directory the service user could write ------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Path]:
    """A root-owned directory the tests chown and chmod below."""
    base = tmp_path / "tree"
    base.mkdir(mode=0o755)
    yield base


def nogroup() -> int:
    return grp.getgrnam("nogroup").gr_gid


@as_root
def test_writable_job_directories(tree: Path) -> None:
    jobs = tree / "jobs"
    jobs.mkdir()
    assert service_user_can_write(str(jobs), "nobody") is None
    os.chown(jobs, NOBODY, -1)
    assert service_user_can_write(str(jobs), "nobody") == (
        f"the job directory {jobs} is owned by uid {NOBODY}, so the service user nobody "
        "could add jobs")
    assert service_user_can_write(str(jobs), str(NOBODY)) is not None  # a uid works too
    os.chown(jobs, 0, nogroup())
    jobs.chmod(0o775)
    assert "writable by its group" in (service_user_can_write(str(jobs), "nobody") or "")
    os.chown(jobs, 0, 0)  # a group nobody is not in
    assert service_user_can_write(str(jobs), "nobody") is None
    jobs.chmod(0o757)
    assert "writable by everyone" in (service_user_can_write(str(jobs), "nobody") or "")
    jobs.chmod(0o1777)  # sticky does not stop new files
    assert service_user_can_write(str(jobs), "nobody") is not None


@as_root
def test_a_directory_on_the_way_counts_and_a_sticky_one_does_not(tree: Path) -> None:
    parent = tree / "parent"
    jobs = parent / "jobs"
    jobs.mkdir(parents=True)
    os.chown(parent, NOBODY, -1)  # could rename jobs/ and put its own in its place
    assert service_user_can_write(str(jobs), "nobody") == (
        f"a directory on its path, {parent} is owned by uid {NOBODY}, so the service user "
        "nobody could add jobs")
    os.chown(parent, 0, -1)
    parent.chmod(0o1777)  # like /tmp: others' entries cannot be renamed
    assert service_user_can_write(str(jobs), "nobody") is None


@as_root
def test_symlinks_on_the_way_are_followed_and_their_directories_checked(tree: Path) -> None:
    theirs = tree / "theirs"
    (theirs / "jobs").mkdir(parents=True)
    os.chown(theirs, NOBODY, -1)
    (tree / "link").symlink_to("theirs/jobs")
    assert [p for p, _ in directories(str(tree / "link"))][-2:] == [str(theirs),
                                                                     str(theirs / "jobs")]
    assert str(theirs) in (service_user_can_write(str(tree / "link"), "nobody") or "")


def test_root_and_users_that_do_not_exist_are_not_refused(tmp_path: Path) -> None:
    assert service_user_can_write(str(tmp_path), "no-such-user-pc") is None
    assert service_user_can_write(str(tmp_path), "root") is None  # allow_root: all powers
    os.chmod(tmp_path, 0o777)
    assert service_user_can_write(str(tmp_path), "no-such-user-pc") is None


@as_root
def test_numeric_uid_without_an_account_still_owns_its_directory(tree: Path) -> None:
    os.chown(tree, 54321, -1)
    assert "owned by uid 54321" in (service_user_can_write(str(tree), "54321") or "")


@as_root
@pytest.mark.parametrize("cached", [False, True], ids=["cold", "cached"])
def test_the_generator_refuses_a_job_directory_the_service_user_can_write(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cached: bool
) -> None:
    site.configure("user: nobody\n")
    site.job("one", HEAD + "schedule: '1 * * * *'\n")
    if cached:  # the cache was written while the directory was fine
        monkeypatch.setattr(generator.file_cache, "SETTLE_NS", 0)
        assert generator.refresh_cache(str(site.config_file), PYTHON) == []
    os.chown(site.jobs, NOBODY, -1)
    out = tmp_path / "out"
    code, messages = run(site, out)
    refusal = (f"{site.config_file}:1: job_directory: the job directory {site.jobs} is owned "
               f"by uid {NOBODY}, so the service user nobody could add jobs")
    assert (code, messages) == (1, [refusal, "no job units generated: 1 job file(s) not read"])
    # our units still are: the deploy that fixes the directory applies itself
    assert unit_files(out) == set(our_unit_names(site))
    assert generator.refresh_cache(str(site.config_file), PYTHON) == [refusal]
