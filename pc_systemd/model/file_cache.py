"""Work done per job file, kept between runs while the file is unchanged.

Reading and checking a job file costs ~0.2 ms of pure Python; the
generator (at every boot and daemon-reload), cron-generate and
``run-job --status`` would spend most of their time redoing it for files
that have not changed.  A cache file holds, for one kind of work:

- its *context*: everything a result depends on besides the job file (the
  configuration file's identity and trust, this package's code and
  templates, the Python that units name).  A different context discards
  the whole cache;
- *data* derived from the context alone (the job directory, ...);
- per job file name, the file's *identity* and the *result*.  A result is
  reused only while the file's identity is the same: device, inode, size,
  modification and change time of the file, and for a symlink also of its
  target and where it resolves to.

A file changed less than :data:`SETTLE_NS` before the cache is written is
not kept: timestamps have a granularity, and a file rewritten twice within
one tick, at the same size, would otherwise look unchanged.

The cache is marshal data, which is fast to read but not safe against a
crafted file, so a cache is used only if it, and its directory, belong to
the caller and nobody else can write them; a checksum keeps a damaged
file from reaching marshal (whose counts could ask for gigabytes).  A cache that cannot be read
is ignored, one that cannot be written is not written: it only saves time.

Where: ``$PROCESS_CONTROL_CACHE`` if set; else ``/var/cache/pc-systemd``
for root (the generator, which systemd runs as root, reads it there);
else ``$XDG_CACHE_HOME/process-control`` (``~/.cache/process-control``).
This module is on the generator's cached path, which imports neither
``typing`` (9 ms of a ~60 ms run) nor ``collections`` (3 ms), and builds no
object per job file beyond what marshal hands it: its records are plain
tuples, whose fields are named where they are unpacked (layouts below).
"""

from __future__ import annotations

import marshal
import os
import sys
import time
import zlib

from pc_systemd.model.config_file import config_path, untrusted

# Not typing's: importing typing (9 ms) or collections.abc (which imports
# collections: 2.5 ms) would cost the generator's cached path a fifth of its
# ~60 ms (docs/benchmarks.md); these names are for mypy only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

# A file's identity, what changes when it changes: (dev, ino, size,
# mtime_ns, ctime_ns, resolved, target_dev, target_ino, target_size,
# target_mtime_ns, target_ctime_ns); for a symlink ``resolved`` is where it
# leads and the target_* fields its target's, else they are None.
Identity = tuple["Any", ...]
IDENTITY_FIELDS = 11
_NOT_A_LINK = (None,) * 6
# One file's (or, for the status memo, one unit's) kept work:
# (evidence, result); evidence is an identity or what systemd gave.
Entry = tuple["Any", "Any"]
Entries = dict[str, Entry]
# What load() gives: (data, entries); the file holds (context, data, entries).
Loaded = tuple["Any", Entries]

FORMAT = 2
MAGIC = b"pc-cache\n"
SETTLE_NS = 2_000_000_000
ENV_VAR = "PROCESS_CONTROL_CACHE"
# (not state_directory's default /var/cache/process-control: the service user owns that)
SYSTEM_DIR = "/var/cache/pc-systemd"
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_TEMPLATES = os.path.join(_PACKAGE, "templates")  # in a checkout, a link to ../templates
# The package's own directories: its modules live one level down.
_SUBPACKAGES = ("core", "model", "systemd", "cron", "monitoring", "views", "cli")
_LINK = 0o120000
_TYPE = 0o170000


def identity(path: str) -> Identity | None:
    """What changes when the file (or, for a symlink, its target) changes;
    None when it cannot be read."""
    try:
        link = os.lstat(path)
        if link.st_mode & _TYPE != _LINK:
            return (link.st_dev, link.st_ino, link.st_size, link.st_mtime_ns,
                    link.st_ctime_ns, *_NOT_A_LINK)
        target = os.stat(path)
        return (link.st_dev, link.st_ino, link.st_size, link.st_mtime_ns, link.st_ctime_ns,
                os.path.realpath(path), target.st_dev, target.st_ino, target.st_size,
                target.st_mtime_ns, target.st_ctime_ns)
    except (OSError, ValueError):
        return None


def _settled(evidence: object, now_ns: int) -> bool:
    """Whether every timestamp of a file's identity is older than SETTLE_NS
    (other evidence, such as a value systemd gave, needs no settling)."""
    if not isinstance(evidence, tuple) or len(evidence) != IDENTITY_FIELDS:
        return True
    (_dev, _ino, _size, mtime_ns, ctime_ns,
     resolved, _tdev, _tino, _tsize, target_mtime_ns, target_ctime_ns) = evidence
    stamps: list[int] = [mtime_ns, ctime_ns]
    if resolved is not None:
        stamps += [target_mtime_ns, target_ctime_ns]
    return max(stamps) < now_ns - SETTLE_NS


def code_stamp() -> tuple[int, int, int]:
    """Changes when this package's code or its templates change (newest
    modification time, file count, total size)."""
    newest = count = size = 0
    places = [(_PACKAGE, ".py"), (_TEMPLATES, ".j2")]
    places += [(os.path.join(_PACKAGE, sub), ".py") for sub in _SUBPACKAGES]
    for directory, suffix in places:
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            if name.endswith(suffix) or name.endswith(".sh"):
                st = os.stat(os.path.join(directory, name))
                newest = max(newest, st.st_mtime_ns)
                count += 1
                size += st.st_size
    return newest, count, size


def cache_dir(environ: Mapping[str, str]) -> str:
    if environ.get(ENV_VAR):
        return environ[ENV_VAR]
    if os.geteuid() == 0:
        return SYSTEM_DIR
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "process-control")


def reuse(entries: Entries, directory: str, names: list[str]) -> tuple[Entries, list[str]]:
    """Split the job files ``names`` of ``directory``: the entries still
    valid (the file's identity is unchanged), and the paths to read again."""
    valid: Entries = {}
    todo: list[str] = []
    for name in names:
        path = os.path.join(directory, name)
        entry = entries.get(name)
        if entry is not None:
            evidence, _result = entry
            # (an identity stored is never None, so a file that cannot be looked at is read)
            if evidence == identity(path):
                valid[name] = entry
                continue
        todo.append(path)
    return valid, todo


def _crc(data: bytes) -> bytes:
    return zlib.crc32(data).to_bytes(4, "big")


def _owned(st: os.stat_result) -> bool:
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


class Cache:
    """The cache of one kind of work (``kind``) under one configuration.

    ``explicit``: a ``--config`` path; else the configuration is chosen as
    :func:`.config_file.config_path` does.  ``extra``: more context.
    """

    def __init__(self, kind: str, explicit: str | None = None, extra: Any = None,
                 environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        self.config = config_path(explicit, environ)
        scope = zlib.crc32(f"{self.config}".encode("utf-8", "surrogateescape"))
        self.path = os.path.join(cache_dir(environ), f"{kind}-{scope:08x}.marshal")
        self.context = self._context(kind, extra)

    def _context(self, kind: str, extra: Any) -> tuple[Any, ...]:
        trust: str | None = None
        config_id: Identity | None = None
        if self.config is not None:
            config_id = identity(self.config)
            try:
                trust = untrusted(self.config)
            except OSError as err:
                trust = str(err)
        return (FORMAT, kind, sys.executable, self.config, config_id, trust, code_stamp(),
                extra)

    def load(self) -> Loaded | None:
        """(data, entries) if the cache exists, is trusted and is for this
        context; else None."""
        try:
            with open(self.path, "rb") as handle:
                if not (_owned(os.fstat(handle.fileno()))
                        and _owned(os.stat(os.path.dirname(self.path)))):
                    return None
                blob = handle.read()
            head = len(MAGIC) + 4
            if blob[:len(MAGIC)] != MAGIC or blob[len(MAGIC):head] != _crc(blob[head:]):
                return None
            context, data, entries = marshal.loads(blob[head:])
            if context != self.context:
                return None
            return data, entries
        except (OSError, ValueError, EOFError, TypeError, IndexError):
            return None

    def update(self, data: Any, valid: Entries,
               fresh: Iterable[tuple[str, Identity | None, object]]) -> None:
        """Save the ``valid`` entries (of :func:`reuse`) and the results read
        afresh, as (path, identity taken before reading, result)."""
        entries = dict(valid)
        entries.update((os.path.basename(path), (ident, result))
                       for path, ident, result in fresh if ident is not None)
        self.save(data, entries)

    def save(self, data: Any, entries: Entries) -> None:
        """Write the cache, leaving out entries of files changed too recently."""
        now = time.time_ns()
        kept = {name: (evidence, result) for name, (evidence, result) in entries.items()
                if _settled(evidence, now)}
        try:
            body = marshal.dumps((self.context, data, kept))
        except ValueError:
            return  # a result marshal cannot hold: only a cache
        directory = os.path.dirname(self.path)
        try:
            os.makedirs(directory, mode=0o755, exist_ok=True)
            if not _owned(os.stat(directory)):
                return
            # only writers of the cache import it (and contextlib): never the generator
            from pc_systemd.core.atomic import write_atomically

            write_atomically(self.path, MAGIC + _crc(body) + body, mode=0o644)
        except OSError:
            pass
