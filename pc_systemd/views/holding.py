"""Why a job is not scheduled although its file says so (:mod:`pc_systemd.model.holds`):
its group is disabled, or it was stopped after repeated failures.

On systemd hosts both are files of the hold directory (the failure-mail
unit writes a stop). On cron hosts the direct runner runs as the service
user, which may not write the hold directory: a stop there is the run
history's count of failures in a row reaching ``stop_after_failures``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from pc_systemd.model import holds
from pc_systemd.model.config import Config
from pc_systemd.model.jobinfo import JobInfo, Summary
from pc_systemd.model.writers import identity


@dataclass(frozen=True)
class Holds:
    """The hold directory as read once, for every job of a listing."""

    directory: str
    names: frozenset[str]
    problem: str | None = None

    @classmethod
    def read(cls, config: Config) -> Holds:
        names, why = holds.list_names(config.hold_directory, config.user,
                                       identity(config.user))
        return cls(config.hold_directory, names, why)

    def groups_of(self, tags: Iterable[str]) -> list[str]:
        """The disabled groups among ``tags``."""
        return [tag for tag in tags if holds.GROUP + holds.encode_tag(tag) in self.names]

    def stopped(self, slug: str) -> int | None:
        """The failures a stop record names (0: unreadable), None: no stop."""
        if holds.stopped_file(slug) not in self.names:
            return None
        return holds.stop_count(self.directory, slug) or 0

    def stop_count(self, summary: Summary, failures: int | None = None) -> int | None:
        """Failures that stopped the job (0: unknown), None: not stopped;
        ``failures``: the direct runner's count of failures in a row."""
        count = self.stopped(summary.slug)
        if count is None and holds.stops(summary.stop_after_failures, failures):
            count = failures
        return count

    def reason(self, summary: Summary, failures: int | None = None) -> str | None:
        """Why the job is held, if it is."""
        return self.reason_of(summary, self.stop_count(summary, failures))

    def reason_of(self, summary: Summary, count: int | None) -> str | None:
        """:meth:`reason`, with :meth:`stop_count` already read."""
        reasons = []
        if count is not None:
            reasons.append(f"stopped after {count or 'repeated'} consecutive failures "
                           f"(run-job reset {summary.slug})")
        reasons += [f"disabled by group {tag}" for tag in self.groups_of(summary.tags)]
        return "; ".join(reasons) or None


def with_holds(infos: Iterable[JobInfo], found: Holds,
               failures: dict[str, int] | None = None) -> tuple[JobInfo, ...]:
    out = []
    for info in infos:
        if not info.summary.valid:
            out.append(info)
            continue
        count = found.stop_count(info.summary, (failures or {}).get(info.slug))
        reason = found.reason_of(info.summary, count)
        stopped = count is not None
        out.append(dataclasses.replace(info, hold=reason, stopped=stopped) if reason else info)
    return tuple(out)
