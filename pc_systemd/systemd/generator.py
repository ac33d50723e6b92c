"""The systemd generator: every job -> a .service (and a .timer when it has
a schedule), written only into the directory systemd hands over.

It runs at every boot and every daemon-reload, so it stays lean: no click,
no D-Bus, only the modules the job set needs.  One broken job file is
logged with its ``path:line`` and skipped; every other job is generated.

Each job file's outcome (its units, or its errors) is kept in a cache
(:mod:`pc_systemd.model.file_cache`, written by ``run-job --reload``, which runs before
every daemon-reload it asks for).  While a job file, the configuration,
the code and the templates are unchanged, the generator writes the cached
units of that file without importing the parser or the templates; it
reads and renders only the files that changed.  It never writes the
cache itself: a generator writes only into its output directories.
"""

from __future__ import annotations

import marshal
import os
import sys
import time

from pc_systemd.model import file_cache, holds
from pc_systemd.model.config_file import yaml_names
from pc_systemd.model.writers import can_write, identity, service_user_can_write

# Not typing.TYPE_CHECKING: importing typing (9 ms) or collections.abc
# (which imports collections: 2.5 ms) would cost the cached path a fifth of
# its ~60 ms (docs/benchmarks.md); these names are for mypy only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from pc_systemd.model.config import Config
    from pc_systemd.systemd.units import Renderer

    Log = Callable[[int, str], None]
Units = tuple[tuple[str, str, str | None], ...]  # (name, text, target that wants it)
# One job file's outcome, (written, messages, units, hold_keys): written is
# 1 if its units were written, else 0; messages are (level, line); units are
# Units, or () where not kept; hold_keys the names of the files in the hold
# directory that hold its timer (holds.keys). A plain tuple, unpacked by name
# where it is used: the cache and the workers carry it through marshal, and
# the cached path builds nothing per file.
Result = tuple[int, tuple[tuple[int, str], ...], Units, tuple[str, ...]]

ERR, WARNING, INFO = 3, 4, 6
KIND = "units"
# Seconds the generator may spend reading job files: systemd stops a
# generator after 90 s. A job file costs at most a few milliseconds (the
# limits in .nodes), 1,000 ordinary ones about 0.25 s in all.
BUDGET = 20.0
# Log lines per job file: a file of a thousand unknown keys must not send a
# thousand lines to the kernel log at every boot.
MAX_MESSAGES = 10


def make_log(environ: Mapping[str, str]) -> Log:
    """Where generator messages go.

    systemd runs generators with stdout and stderr on /dev/null, so when it
    runs us (it sets $SYSTEMD_SCOPE) messages go to /dev/kmsg, which the
    journal reads at boot; where there is none (a container) to the syslog
    socket /dev/log, which journald serves after boot; stderr otherwise.
    """
    sink: Callable[[int, str], None] | None = None
    if environ.get("SYSTEMD_SCOPE"):
        sink = _kmsg() or _syslog()

    def log(level: int, message: str) -> None:
        if sink is not None:
            sink(level, message)
        else:
            print(f"process-control-generator: {message}", file=sys.stderr)

    return log


def _kmsg() -> Callable[[int, str], None] | None:
    try:
        # no O_CREAT: where there is no kmsg (a container), never make a file
        fd = os.open("/dev/kmsg", os.O_WRONLY | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError:
        return None

    def write(level: int, message: str) -> None:
        line = f"<{level}>process-control-generator[{os.getpid()}]: {message}\n"
        os.write(fd, line.encode())

    return write


def _syslog() -> Callable[[int, str], None] | None:
    # only where /dev/kmsg is missing (a generator run by hand)
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.connect("/dev/log")
    except OSError:
        sock.close()
        return None

    def write(level: int, message: str) -> None:
        # facility daemon (3 << 3) plus the level
        data = f"<{24 + level}>process-control-generator[{os.getpid()}]: {message}"
        try:
            sock.send(data.encode())
        except OSError:
            print(f"process-control-generator: {message}", file=sys.stderr)

    return write


def write_unit(directory: str, name: str, text: str) -> None:
    # os-level calls: thousands of files per run, and a file object each
    # costs more than the write
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
    fd = os.open(os.path.join(directory, name), flags, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def want(directory: str, target: str, name: str) -> None:
    """Enable a unit: a symlink in <target>.wants/ (made by generate())."""
    link = os.path.join(directory, f"{target}.wants", name)
    try:  # noqa: SIM105 - importing contextlib costs the cached path ~5 ms
        os.symlink(os.path.join(directory, name), link)
    except FileExistsError:
        pass


def generate(
    normal: str,
    log: Log,
    config_path: str | None = None,
    python: str = sys.executable,
    workers: int | None = None,
    cache: bool = True,
    budget: float = BUDGET,
) -> int:
    """Write every job's units into ``normal``; returns the exit status.

    Our own units (:func:`reload_units`) are written first, so that however
    long the job files take, the next deploy still applies itself. Job
    files not read within ``budget`` seconds of the start are skipped,
    one line each, so the run ends well inside systemd's 90 s."""
    deadline = time.monotonic() + budget
    store = file_cache.Cache(KIND, config_path, _context(python)) if cache else None
    loaded = store.load() if store is not None else None
    config: Config | None = None
    renderer: Renderer | None = None
    status = 0
    names: list[str] | None = None
    if loaded is not None:
        (job_directory, user, hold_directory, units), entries = loaded
        _prepare(normal)
        _emit(normal, units)
        names = _listed(job_directory)
    if names is None:  # no usable cache: read everything
        config = _config(config_path, log)
        if config is None:
            return 1
        job_directory, user, entries = config.job_directory, config.user, {}
        hold_directory = config.hold_directory
        if loaded is None:
            _prepare(normal)
            renderer = _renderer(config, python)
            status = _emit_reload_units(normal, renderer, log)
        try:
            names = yaml_names(job_directory)
        except OSError as err:
            log(ERR, str(config.problem("job_directory", f"{job_directory}: {err.strerror}")))
            names = []
    who = identity(user)  # one look-up (NSS) for both directories
    refusal = can_write(job_directory, user, who)
    if refusal is not None:
        config = config or _config(config_path, log)
        if config is None:
            return 1
        log(ERR, str(config.problem("job_directory", refusal)))
        log(ERR, f"no job units generated: {len(names)} job file(s) not read")
        return 1
    held, why = holds.list_names(hold_directory, user, who)
    if why:
        log(WARNING, f"hold_directory {why}")
    valid, todo = file_cache.reuse(entries, job_directory, names)
    results: dict[str, Result] = {}
    for name, (_evidence, result) in valid.items():
        _written, _messages, kept_units, hold_keys = result
        _emit(normal, kept_units, holds.held(held, hold_keys))
        results[name] = result
    if todo:
        config = config or _config(config_path, log)
        if config is None:
            return 1
        renderer = renderer or _renderer(config, python)
        for path, _read_ident, result in build(config, todo, renderer, normal, workers,
                                               deadline=deadline, budget=budget, held=held):
            results[os.path.basename(path)] = result
    return _report([results[name] for name in names], log, status, len(valid))


def _emit_reload_units(normal: str, renderer: Renderer, log: Log) -> int:
    # the renderer's error type: never loaded on the cached path (tests/test_file_cache.py)
    from pc_systemd.systemd.unit_escape import UnitValueError

    try:
        _emit(normal, reload_units(renderer))
    except UnitValueError as err:
        log(ERR, f"no reload units: {err}")
        return 1
    return 0


def _listed(directory: str) -> list[str] | None:
    try:
        return yaml_names(directory)
    except OSError:
        return None  # read everything: that path reports why


# The jobs log to the journal namespace "process-control" (LogNamespace= in
# templates/job.service.j2). systemd 257 (Debian 13) makes each such unit
# require systemd-journald-sync@NAMESPACE.service, started with every run and
# stopped after it, under systemd's default start limit (5 starts in 10 s):
# the sixth job to start within ten seconds failed with "dependency"
# (measured: 58 of 60 back-to-back starts; with this drop-in 0 of 60,
# tests/test_package.py). systemd 252 has no such unit: the drop-in is inert.
SYNC_DROPIN = ("systemd-journald-sync@process-control.service.d", "process-control.conf")
SYNC_DROPIN_TEXT = (
    "# Generated by process-control-generator; do not edit.\n"
    "# Every job run of the namespace starts this unit: no start limit for it.\n"
    "[Unit]\nStartLimitIntervalSec=0\n"
)


def _prepare(normal: str) -> None:
    os.makedirs(normal, exist_ok=True)
    for target in ("timers.target", "paths.target"):
        os.makedirs(os.path.join(normal, f"{target}.wants"), exist_ok=True)
    directory = os.path.join(normal, SYNC_DROPIN[0])
    os.makedirs(directory, exist_ok=True)
    fd = os.open(os.path.join(directory, SYNC_DROPIN[1]),
                 os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, SYNC_DROPIN_TEXT.encode())
    finally:
        os.close(fd)


def _emit(normal: str, units: Units, held: bool = False) -> None:
    """Write the units; a held job's timer is written but not wanted: it
    stays stopped across daemon-reload and boot (a member may still start
    it by hand, as enable-group and reset do)."""
    for name, text, wanted_by in units:
        write_unit(normal, name, text)
        if wanted_by and not (held and name.endswith(".timer")):
            want(normal, wanted_by, name)


def _config(config_path: str | None, log: Log) -> Config | None:
    # the configuration's parser: only when no cache answers (tests/test_file_cache.py)
    from pc_systemd.model.config import load_config
    from pc_systemd.model.errors import PcError

    try:
        config = load_config(config_path)
    except PcError as err:
        for problem in err.problems:
            log(ERR, str(problem))
        log(ERR, "no units generated: the global configuration is invalid")
        return None
    for warning in config.warnings:  # an unknown key in default_job_config
        log(WARNING, str(warning))
    return config


def _renderer(config: Config, python: str) -> Renderer:
    # the renderer and Jinja2: only when a file must be rendered (tests/test_file_cache.py)
    from pc_systemd.systemd.units import (
        Renderer,  # after the configuration: a config error never pays for it
    )

    return Renderer(config, python)


def _report(results: list[Result], log: Log, status: int, cached: int) -> int:
    written = 0
    for done, messages, _units, _keys in results:
        written += done
        for level, message in messages:
            log(level, message)
    skipped = len(results) - written
    reused = f" ({cached} unchanged file(s) from the cache)" if cached else ""
    log(INFO, f"generated units of {written} job(s), skipped {skipped}{reused}")
    return status


def reload_units(renderer: Renderer) -> Units:
    return tuple((u.name, u.text, u.wanted_by) for u in renderer.reload_units())


def build(
    config: Config,
    paths: list[str],
    renderer: Renderer,
    normal: str | None,
    workers: int | None = None,
    keep: bool = False,
    deadline: float | None = None,
    budget: float = BUDGET,
    held: frozenset[str] = frozenset(),
) -> list[tuple[str, file_cache.Identity | None, Result]]:
    """Each job file's outcome, as (path, identity, result), in the given
    order; with ``normal``, the units are written there as they are made,
    and the results carry them only if ``keep`` (for the cache): their text
    is most of what workers would send back.  Large job sets are shared
    among forked workers (:mod:`pc_systemd.core.fanout`). Files not begun by ``deadline``
    (``time.monotonic()``; ``budget`` seconds after the start, for the
    message) are skipped, with no identity: never cached."""
    # workers: only when files must be read
    from pc_systemd.core import fanout

    parts = fanout.shares(paths, workers or fanout.workers_for(len(paths)))
    out: list[tuple[str, file_cache.Identity | None, Result]] = []
    keep = keep or normal is None

    def part_of(part: list[str]) -> bytes:
        return _build_part(part, config, renderer, normal, keep, deadline, budget, held)

    for blob in fanout.run(parts, part_of):
        if blob is None:
            raise OSError("a worker process of the generator failed")
        out.extend((path, ident, result) for path, ident, result in marshal.loads(blob))
    return out


def _build_part(
    paths: list[str], config: Config, renderer: Renderer, normal: str | None, keep: bool,
    deadline: float | None = None, budget: float = BUDGET, held: frozenset[str] = frozenset(),
) -> bytes:
    # the job parser: only for files read afresh (tests/test_file_cache.py)
    from pc_systemd.model import systemd_version as version
    from pc_systemd.model.errors import PcError, Problem, printable
    from pc_systemd.model.job import load_job, systemd_problems
    from pc_systemd.model.nodes import FILE_KEY
    from pc_systemd.systemd.unit_escape import UnitValueError

    out: list[tuple[str, file_cache.Identity | None, Result]] = []
    for path in paths:
        if deadline is not None and time.monotonic() >= deadline:
            late = Problem(path, 1, FILE_KEY,
                           f"not read: the generator's {budget:g} s for job files were used up")
            out.append((path, None, (0, ((ERR, f"{late} (job skipped)"),), (), ())))
            continue
        # identity first: a file changed while it is read is not cached as unchanged
        ident = file_cache.identity(path)
        messages: list[tuple[int, str]] = []
        units: tuple[tuple[str, str, str | None], ...] = ()
        try:
            job = load_job(path, config, True)
        except PcError as err:
            # str(Problem) escapes what does not print: each message is one line
            messages += [(ERR, f"{problem} (job skipped)") for problem in err.problems]
            out.append((path, ident, (0, _capped(messages, path), units, ())))
            continue
        messages += [(WARNING, str(warning)) for warning in job.warnings]
        refused = systemd_problems(job, version.manager())
        if refused:
            messages += [(ERR, f"{problem} (job skipped)") for problem in refused]
            out.append((path, ident, (0, _capped(messages, path), (), ())))
            continue
        try:
            units = tuple((u.name, u.text, u.wanted_by) for u in renderer.job_units(job))
        except UnitValueError as err:
            messages.append((ERR, f"{printable(f'{job.path}:1: (unit): {err}')} (job skipped)"))
            out.append((path, ident, (0, _capped(messages, path), (), ())))
            continue
        hold_keys = holds.keys(job.slug, job.tag)
        if normal is not None:
            _emit(normal, units, holds.held(held, hold_keys))
        out.append((path, ident, (1, _capped(messages, path), units if keep else (), hold_keys)))
    # marshal holds plain tuples only: build() names the fields again
    return marshal.dumps([(path, None if ident is None else tuple(ident), tuple(result))
                          for path, ident, result in out])


def _capped(messages: list[tuple[int, str]], path: str) -> tuple[tuple[int, str], ...]:
    """At most MAX_MESSAGES lines for one file; the last says how many more."""
    if len(messages) <= MAX_MESSAGES:
        return tuple(messages)
    # only when a file is skipped for time
    from pc_systemd.model.errors import Problem
    from pc_systemd.model.nodes import FILE_KEY

    kept = messages[: MAX_MESSAGES - 1]
    rest = messages[MAX_MESSAGES - 1:]
    more = Problem(path, 1, FILE_KEY, f"{len(rest)} more problem(s) not shown here "
                   "(run-job --validate lists them)")
    return (*kept, (min(level for level, _ in rest), str(more)))  # the most severe level


def _context(python: str) -> tuple[object, ...]:
    """The cache context beyond the configuration and code: the Python that
    units name, what timers' DST instants depend on (units.dst_context:
    the year, and the host's zone through ``TZ`` and ``/etc/localtime``,
    whose identity covers where it links), so no cached timer goes stale,
    and systemd's version (what it can do decides which jobs get units)."""
    from pc_systemd.model import systemd_version as version

    tz = os.environ.get("TZ", "")
    return (python, tz, file_cache.identity(tz[1:] if tz.startswith(":/") else "/etc/localtime"),
            time.gmtime().tm_year, version.manager())


def refresh_cache(config_path: str | None = None, python: str = sys.executable) -> list[str]:
    """Work out every job file's units and keep them for the generator
    (``run-job --reload`` calls this before its daemon-reload). Returns the
    errors of the jobs that get no units, one line each; writes nothing if
    the configuration or the job directory cannot be read (the generator
    then reports why, and the line returned says it too)."""
    store = file_cache.Cache(KIND, config_path, _context(python))
    # --refresh-cache reads every file: the parser and renderer, as in a cold run
    from pc_systemd.model.config import load_config
    from pc_systemd.model.errors import PcError
    from pc_systemd.systemd.unit_escape import UnitValueError

    try:
        config = load_config(config_path)
    except PcError as err:
        return [str(problem) for problem in err.problems]
    refusal = service_user_can_write(config.job_directory, config.user)
    if refusal is not None:
        return [str(config.problem("job_directory", refusal))]
    renderer = _renderer(config, python)
    try:
        names = yaml_names(config.job_directory)
        units = reload_units(renderer)
    except OSError as err:
        return [f"{config.problem('job_directory', f'{config.job_directory}: {err.strerror}')}"]
    except UnitValueError as err:
        return [f"no reload units: {err}"]
    paths = [os.path.join(config.job_directory, n) for n in names]
    built = build(config, paths, renderer, None)
    store.update((config.job_directory, config.user, config.hold_directory, units), {},
                 [(path, ident, result) for path, ident, result in built])
    return [message for _path, _ident, (_written, messages, _units, _keys) in built
            for level, message in messages if level == ERR]


def main(argv: list[str]) -> int:
    if argv == ["--refresh-cache"]:
        for line in refresh_cache():
            print(line, file=sys.stderr)
        return 0
    if len(argv) not in (1, 3):
        print("usage: process-control-generator NORMAL [EARLY LATE] | --refresh-cache",
              file=sys.stderr)
        return 2
    # systemd runs generators while it reloads: a user or group lookup that
    # nss-systemd hands to PID 1 would wait for that reload (measured: the
    # daemon-reload took 45 s). Only /etc's users and groups are ours to ask.
    os.environ["SYSTEMD_NSS_DYNAMIC_BYPASS"] = "1"
    return generate(argv[0], make_log(os.environ))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
