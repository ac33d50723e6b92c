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
day are removed by the next run.

What the job alone would see is recorded in the jobs' journal namespace,
on lines that begin with ``process-control:``, for ``run-job status``,
``logs`` and the failure mail (:mod:`pc_systemd.systemd.filelog_notes`):
the wrapper says why it could not make the file (permission denied, no
space left), under the run's invocation; and :data:`CHECK`, the unit a
failed run starts (``OnFailure=``), says when the file's file system was
full as the run ended (the job's writes failed with ENOSPC, which only it
saw). Nothing of ours runs after a run that succeeded.

Inline rather than a file of this package: nothing at run time depends on
where the package is installed (a job's ``PrivateTmp=`` would hide a
checkout under ``/tmp``), and the service user need not be able to
execute this package's Python.
"""

from __future__ import annotations

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
    if ! err=$( (umask 027; mkdir -p -- "$dir") 2>&1 ); then
        echo "process-control: cannot make $dir: ${err##*: }" >&2
        exit 1
    fi
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

# The check of process-control-filecheck@<slug>.service, which a failed
# run of a file-logged job starts (OnFailure=), with the run's invocation
# in MONITOR_INVOCATION_ID: whether the file system of the job's log
# directory is full (stat -f: blocks free for unprivileged users, total and
# free inodes; a file system without an inode count says 0 of them).
CHECK = """\
[ -n "${MONITOR_INVOCATION_ID:-}" ] || exit 0
case $2 in ""|.|..) exit 0 ;; esac
dir=$1/$2
fs=$(stat -f -c '%a %c %d' -- "$dir" 2>/dev/null) || exit 0
set -- $fs
if [ "$1" -lt @FULL@ ] || { [ "$2" -gt 0 ] && [ "$3" -lt @FULL@ ]; }; then
    file=$dir
    if name=$(readlink -- "$dir/.run-$MONITOR_INVOCATION_ID" 2>/dev/null); then
        file=$dir/$name
    fi
    why="its file system was full when the run ended: the file may be cut short"
    echo "process-control: cannot write $file: No space left on device ($why)" >&2
fi
exit 0
"""


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
CHECK_LINE = _one_line(CHECK.replace("@FULL@", str(FULL_BELOW)))


def wrapped(directory: str, slug: str, argv: Sequence[str]) -> list[str]:
    """``argv`` run through the wrapper, its output going to the run's file."""
    return ["/bin/sh", "-c", LINE, NAME, directory, slug, *argv]


def check(output_directory: str) -> list[str]:
    """The command of the check unit, but its last argument: the slug
    (``%i``), the job's log directory's name in ``output_directory``."""
    return ["/bin/sh", "-c", CHECK_LINE, NAME, output_directory]

