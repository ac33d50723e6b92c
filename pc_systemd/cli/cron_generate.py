"""``cron-generate [--config PATH]``: write the cron file for cron hosts.

On a host where systemd runs and the generator is installed, timers run
the jobs: a cron file would run each one a second time. There it applies
the job directory to systemd instead (as ``run-job reload``), so the
original's deployment recipes, which run ``cron-generate`` after each
change of the job files, keep working unchanged. With ``output_crontab:
console`` it prints the cron lines as everywhere: printed, they schedule
nothing.
"""

from __future__ import annotations

import argparse
import sys

from pc_systemd.core.atomic import write_atomically
from pc_systemd.cron.crontab import KIND, cached, render
from pc_systemd.model import file_cache
from pc_systemd.systemd import presence


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
    if presence.timers_run_jobs():
        applied = _apply_to_systemd(args.config)
        if applied is not None:
            return applied
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


def _apply_to_systemd(config_path: str | None) -> int | None:
    """The exit code of applying the job directory to systemd, or None for
    ``output_crontab: console``."""
    # here: cron hosts never load click, D-Bus or the generator
    from pc_systemd.cli import actions
    from pc_systemd.model.config import load_config
    from pc_systemd.model.errors import PcError

    try:
        config = load_config(config_path)
    except PcError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        return 2
    if config.output_crontab == "console":
        return None
    code = actions.apply_job_directory(config)
    print("cron-generate: systemd runs these jobs here: the job directory was applied as "
          "`run-job reload` would; no cron file written" + ("" if code != 2 else
          ", and systemd was not reached (see above)"), file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
