# Exec wrapper of `logging: file` jobs, run by generated units as
#   /bin/sh filelog.sh DIR SLUG -- COMMAND [ARG...]
# (and `/bin/sh filelog.sh --done DIR` after the run).
#
# Appends the command's stdout and stderr to the run's own file,
# DIR/SLUG-YYYYmmdd-HHMMSS.log, then replaces itself with the command: the
# process tree, timeout and exit status are the job's own. The command is
# never parsed by this shell: "$@" passes the argument list unchanged.
# Every command of a command list shares the run's file through the
# symlink DIR/.run-$INVOCATION_ID (systemd sets INVOCATION_ID per run).
# Plain sh, not Python: the service user may not be allowed to execute the
# Python this package is installed with, and it starts in a millisecond.
set -eu
if [ "$1" = --done ]; then
    [ -n "${INVOCATION_ID:-}" ] && rm -f -- "$2/.run-$INVOCATION_ID"
    exit 0
fi
dir=$1 slug=$2
shift 3
link=$dir/.run-${INVOCATION_ID:-none}
mkdir -p -- "$dir"
if [ -n "${INVOCATION_ID:-}" ] && [ -L "$link" ]; then
    name=$(readlink -- "$link")
else
    stamp=$(date +%Y%m%d-%H%M%S)
    name=$slug-$stamp.log
    n=0
    # noclobber: creating the file fails if it exists, so two runs in the
    # same second never share a file.
    while ! (set -C; : >"$dir/$name") 2>/dev/null; do
        n=$((n + 1))
        [ "$n" -lt 1000 ] || { echo "process-control: no free log file name in $dir" >&2; exit 1; }
        name=$slug-$stamp-$n.log
    done
    [ -z "${INVOCATION_ID:-}" ] || ln -sf -- "$name" "$link"
fi
exec "$@" >>"$dir/$name" 2>&1
