"""How much the direct runner adds to a job that prints a lot.

Runs a job printing 500,000 short lines through :func:`pc_systemd.direct.run_job`
(in this process, so interpreter start-up is not counted) and through
``run-job --job`` (``python -m pc_systemd.cli.run_job``, as cron would start it), and the same
command bare, its output to /dev/null. Each figure is the best of
``--repeat`` runs (time.perf_counter). The original process-control took about
4.9 s of overhead for 500,000 lines; the target is at most 0.5 s.

Run from the checkout::

    /tmp/v/bin/python bench/runner_output.py [--lines 500000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import yaml

from pc_systemd.cron.direct import run_job
from pc_systemd.model.config import load_config
from pc_systemd.model.jobset import find_job

# One line of Python each (job commands may not hold newlines).
WRITERS = {
    # Block-buffered, as most programs write into a pipe.
    "python, buffered": "import sys; sys.stdout.writelines(f'line {i}\\n' for i in range(N))",
    # One write(2) per line: the runner is woken for nearly every line.
    "python, flush per line": "import sys; w = sys.stdout.write; f = sys.stdout.flush; "
    "[(w(f'line {i}\\n'), f()) for i in range(N)]",
}


def best(repeat: int, call: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pc-bench-") as tmp:
        root = Path(tmp)
        (root / "jobs").mkdir()
        config_file = root / "process-control.yaml"
        config_file.write_text(
            f"user: {os.geteuid()}\nallow_root: true\njob_directory: {root / 'jobs'}\n"
            f"output_directory: {root / 'out'}\nrun_directory: {root / 'run'}\n"
            f"state_directory: {root / 'state'}\nbackend: direct\n"
        )
        config = load_config(str(config_file), {})
        print(f"{args.lines} lines, best of {args.repeat}")
        for label, template in WRITERS.items():
            argv = [sys.executable, "-c", template.replace("N", str(args.lines))]
            (root / "jobs" / "bench.yaml").write_text(
                yaml.safe_dump({"name": "Bench", "command": shlex.join(argv)})
            )
            job = find_job(config, "bench")
            cli = [sys.executable, "-m", "pc_systemd.cli.run_job", "--config", str(config_file),
                   "--job", "bench"]
            with open(os.devnull, "w") as sink:
                bare = best(args.repeat, partial(subprocess.run, argv, stdout=sink, check=True))
                cpu_before = resource.getrusage(resource.RUSAGE_SELF)
                in_process = best(args.repeat, partial(run_job, config, job, out=sink))
                cpu_after = resource.getrusage(resource.RUSAGE_SELF)
                whole = best(args.repeat, partial(subprocess.run, cli, stdout=sink, check=True))
            cpu = (cpu_after.ru_utime + cpu_after.ru_stime
                   - cpu_before.ru_utime - cpu_before.ru_stime) / args.repeat
            log = max((root / "out" / "bench").glob("bench-*.log"))
            lines = sum(1 for _ in log.open("rb"))
            assert lines >= args.lines, f"{log} has {lines} lines"
            print(f"\n{label}:")
            print(f"  bare command            {bare:7.3f} s")
            print(f"  run_job (in process)    {in_process:7.3f} s"
                  f"   overhead {in_process - bare:6.3f} s")
            print(f"  runner's own CPU time   {cpu:7.3f} s   (run_job, mean per run)")
            print(f"  run-job --job (process) {whole:7.3f} s"
                  f"   overhead {whole - bare:6.3f} s (with interpreter start-up)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
