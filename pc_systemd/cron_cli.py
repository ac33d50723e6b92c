"""``cron-generate [--config PATH]``: write the cron file for cron hosts."""

from __future__ import annotations

import argparse
import sys

from .atomic import write_atomically
from .config import load_config
from .crontab import render
from .errors import PcError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cron-generate",
        description="Write output_crontab (default /etc/cron.d/process-control) "
        "from every scheduled job.",
    )
    parser.add_argument("--config", metavar="PATH", help="global configuration file")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        text, problems = render(config)
    except PcError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        return 2
    except OSError as err:
        where = f"{config.job_directory}: {err.strerror or err}"
        print(config.problem("job_directory", where), file=sys.stderr)
        return 2
    for line in problems:
        print(line, file=sys.stderr)
    if config.output_crontab == "console":
        print(text)  # print's extra newline is the original's too
    else:
        try:
            write_atomically(config.output_crontab, text)
        except OSError as err:
            print(f"cron-generate: {config.output_crontab}: {err.strerror}", file=sys.stderr)
            return 2
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
