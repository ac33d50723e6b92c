#!/usr/bin/env bash
# The benchmarks whose figures are in the README (run: ./dev.sh bench).
#
# Generator and cron-generate over 10 and 1,000 realistic job files
# (bench/make_jobs.py), timed with hyperfine, process start included.
# Output goes to a tmpfs (/dev/shm), as systemd's generator directory
# /run/systemd/generator is one.
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

for n in 10 1000; do
    out=$work/$n/out
    echo "== generator, $n jobs"
    PROCESS_CONTROL_CONFIG=$work/$n/config.yaml hyperfine -N --warmup 3 --runs "$runs" \
        --prepare "rm -rf $out" \
        "$py -I -S generators/process-control-generator $out $out $out"
done

echo "== cron-generate, 1000 jobs"
hyperfine -N --warmup 3 --runs "$runs" \
    "$PWD/.venv/bin/cron-generate --config $work/1000/config.yaml"

echo "== direct runner, a job printing 500,000 lines"
"$py" bench/runner_output.py
