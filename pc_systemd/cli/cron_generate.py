"""``cron-generate [--config PATH]``: write the cron file for cron hosts."""

from __future__ import annotations

import argparse
import sys

from pc_systemd.core.atomic import write_atomically
from pc_systemd.cron.crontab import KIND, cached, render
from pc_systemd.model import file_cache


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cron-generate",
        description="Write output_crontab (default /etc/cron.d/process-control) "
        "from every scheduled job.",
    )
    parser.add_argument("--config", metavar="PATH", help="global configuration file")
    parser.add_argument("--no-cache", action="store_true",
                        help="read every job file, ignoring and not updating the cache")
    args = parser.parse_args(argv)
    store = None if args.no_cache else file_cache.Cache(KIND, args.config)
    loaded = store.load() if store is not None else None
    hit = cached(loaded) if loaded is not None else None
    if hit is not None:
        text, problems, warnings, output = hit
    else:
        # here: the cached path never loads the configuration's parser (~30 ms of imports)
        from pc_systemd.model.config import load_config
        from pc_systemd.model.errors import PcError

        try:
            config = load_config(args.config)
        except PcError as err:
            for problem in err.problems:
                print(problem, file=sys.stderr)
            return 2
        try:
            text, problems, warnings = render(config, store, loaded)
        except OSError as err:
            where = f"{config.job_directory}: {err.strerror or err}"
            print(config.problem("job_directory", where), file=sys.stderr)
            return 2
        output = config.output_crontab
    for line in (*problems, *warnings):
        print(line, file=sys.stderr)
    if output == "console":
        print(text)  # print's extra newline is the original's too
    else:
        try:
            write_atomically(output, text)
        except OSError as err:
            print(f"cron-generate: {output}: {err.strerror}", file=sys.stderr)
            return 2
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
