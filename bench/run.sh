#!/usr/bin/env bash
# The benchmarks whose figures are in docs/benchmarks.md (run: ./dev.sh bench).
#
# Generator and cron-generate over 10 and 1,000 realistic job files
# (bench/make_jobs.py), timed with hyperfine, process start included.
# Output goes to a tmpfs (/dev/shm), as systemd's generator directory
# /run/systemd/generator is one.
#
# Each is timed twice: "cached", as at boot and at the daemon-reload of
# `run-job --reload` (the job files are unchanged since the last
# `run-job --reload`, which keeps each file's outcome in the cache), and
# "cold", with an empty cache (every file read, checked and rendered, as
# after an upgrade of process-control or a change of the global
# configuration).
set -euo pipefail
cd "$(dirname "$0")/.."
py=$PWD/.venv/bin/python
runs=${RUNS:-30}
work=$(mktemp -d /dev/shm/pc-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

for n in 10 1000; do
    "$py" bench/make_jobs.py "$work/$n" "$n"
    sed -i "s#^output_crontab:.*#output_crontab: $work/$n/crontab#" "$work/$n/config.yaml"
done
# The cache keeps no file changed in the last 2 s (file_cache.SETTLE_NS).
sleep 2.5
export PROCESS_CONTROL_CACHE=$work/cache
mkdir -p "$work/empty"

for n in 10 1000; do
    out=$work/$n/out
    export PROCESS_CONTROL_CONFIG=$work/$n/config.yaml
    "$py" -I -S generators/process-control-generator --refresh-cache  # as run-job --reload does
    echo "== generator, $n jobs, cached"
    hyperfine -N --warmup 3 --runs "$runs" --prepare "rm -rf $out" \
        "$py -I -S generators/process-control-generator $out $out $out"
    echo "== generator, $n jobs, cold"
    PROCESS_CONTROL_CACHE=$work/empty hyperfine -N --warmup 3 --runs "$runs" \
        --prepare "rm -rf $out" \
        "$py -I -S generators/process-control-generator $out $out $out"
    unset PROCESS_CONTROL_CONFIG
done

echo "== cron-generate, 1000 jobs, cached (the warm-up runs fill the cache)"
hyperfine -N --warmup 3 --runs "$runs" \
    "$PWD/.venv/bin/cron-generate --config $work/1000/config.yaml"
echo "== cron-generate, 1000 jobs, cold"
hyperfine -N --warmup 3 --runs "$runs" \
    "$PWD/.venv/bin/cron-generate --no-cache --config $work/1000/config.yaml"

echo "== direct runner, a job printing 500,000 lines"
"$py" bench/runner_output.py
