"""The exec wrapper of ``logging: file`` jobs, as a ``/bin/sh -c`` script
that generated units carry inline::

    ExecStart=/bin/sh -c SCRIPT process-control-filelog DIR SLUG COMMAND [ARG...]

It opens the run's own file ``DIR/SLUG-YYYYmmdd-HHMMSS.log`` (mode 0640,
its directory 0750: the job's output is not for other users) and replaces
itself with the command, whose argument list it never parses (``"$@"``):
the process tree, timeout and exit status are the job's own. It runs as
the service user, with the job's environment, like the command itself.

The commands of a command list share the run's file through the link
``DIR/.run-$INVOCATION_ID`` (systemd sets ``INVOCATION_ID`` per run); the
failure mail finds the file of a failed run through it. Links older than a
day are removed by the next run, so nothing of ours runs after a run.

Inline rather than a file of this package: nothing at run time depends on
where the package is installed (a job's ``PrivateTmp=`` would hide a
checkout under ``/tmp``), and the service user need not be able to
execute this package's Python.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from pc_systemd.model.job import LOG_STAMP

# A log directory whose file system has fewer free blocks (for unprivileged
# users) or inodes than this is full: a run's writes there fail.
FULL_BELOW = 4
NAME = "process-control-filelog"  # $0 of the script, shown in its messages
LINK_PREFIX = ".run-"

# The file names are model.job's log_name(): the stamp is LOG_STAMP, by date(1).
SCRIPT = """\
set -eu
dir=$1 slug=$2
shift 2
link=$dir/.run-${INVOCATION_ID:-none}
if [ -n "${INVOCATION_ID:-}" ] && [ -L "$link" ]; then
    name=$(readlink -- "$link")
else
    (umask 027; mkdir -p -- "$dir")
    find "$dir" -maxdepth 1 -name '.run-*' -type l -mmin +1440 -delete 2>/dev/null || :
    stamp=$(date +@LOG_STAMP@)
    name=$slug-$stamp.log
    n=0
    while ! err=$( (umask 027; set -C; : >"$dir/$name") 2>&1 ); do
        if [ ! -e "$dir/$name" ] && [ ! -L "$dir/$name" ]; then
            echo "process-control: cannot write $dir/$name: ${err##*: }" >&2
            exit 1
        fi
        n=$((n + 1))
        if [ "$n" -ge 1000 ]; then
            echo "process-control: no free log file name in $dir" >&2
            exit 1
        fi
        name=$slug-$stamp-$n.log
    done
    [ -z "${INVOCATION_ID:-}" ] || ln -sf -- "$name" "$link"
fi
exec "$@" >>"$dir/$name" 2>&1
""".replace("@LOG_STAMP@", LOG_STAMP)


def _one_line(script: str) -> str:
    """The script on one line (a unit's command line cannot hold a line break)."""
    out = ""
    for line in script.splitlines():
        line = line.strip()
        if out:
            out += " " if out.endswith((" then", " else", " do")) else "; "
        out += line
    return out


LINE = _one_line(SCRIPT)


def wrapped(directory: str, slug: str, argv: Sequence[str]) -> list[str]:
    """``argv`` run through the wrapper, its output going to the run's file."""
    return ["/bin/sh", "-c", LINE, NAME, directory, slug, *argv]


def full(directory: str) -> str | None:
    """Why a run's file in ``directory`` may be cut short: its file system
    is full now (no space left for the service user, or no inodes). None
    when it is not, or cannot be looked at. The run's own writes failed
    with ENOSPC, which only the job saw: this is the trace it leaves."""
    try:
        fs = os.statvfs(directory)
    except OSError:
        return None
    if fs.f_bavail < FULL_BELOW or (fs.f_files > 0 and fs.f_favail < FULL_BELOW):
        return (f"{directory}: no space left on device (its file system is full: "
                "a run's output file may be cut short)")
    return None
