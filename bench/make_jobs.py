"""Write N realistic job files and a global configuration for benchmarks.

    python bench/make_jobs.py DIR N

DIR/jobs/job0000.yaml ... and DIR/config.yaml (output_crontab DIR/crontab).
"""

from __future__ import annotations

import sys
from pathlib import Path


def schedule(n: int) -> str:
    """Realistic and varied: most of the 1,000 schedules are distinct."""
    minute, hour = n % 60, (n // 60) % 24
    forms = [
        f"{minute} {hour} * * *",
        f"*/{5 + n % 10} * * * *",
        f"{minute} {hour} * * mon-fri",
        f"{minute} */{1 + n % 6} * * *",
        f"{minute} {hour} {1 + n % 28} * *",
        f"{minute} 9-17 * * 1-5",
        f"{minute},{(minute + 30) % 60} * * * *",
        f"{minute} {hour} 1,15 * sun",
    ]
    return forms[n % len(forms)]


def main(argv: list[str]) -> int:
    root, count = Path(argv[0]), int(argv[1])
    jobs = root / "jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    for old in jobs.glob("*.yaml"):
        old.unlink()
    for n in range(count):
        (jobs / f"job{n:04d}.yaml").write_text(
            f"name: Benchmark job {n}\n"
            f"description: Job number {n} of {count}.\n"
            f"command:\n  - /usr/bin/env\n  - /bin/echo 'job {n}' --flag\n"
            f"schedule: '{schedule(n)}'\n"
            f"timeout: {1 + n % 30}\n"
            f"environment:\n  JOB: '{n}'\n  MODE: batch\n"
            f"tag: [bench, group{n % 7}]\n"
            + ("logging: file\n" if n % 4 == 0 else "")
            + ("disabled: true\n" if n % 10 == 9 else "")
        )
    (root / "config.yaml").write_text(
        f"job_directory: {jobs}\nuser: nobody\noutput_crontab: {root / 'crontab'}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
