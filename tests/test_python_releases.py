"""The library under each supported Debian release's own Python: this
suite runs under Debian 12's 3.11 (or the virtualenv's); here a part of it
(the library's own logic: job files, schedules, retry, the generator, the
templates, the direct runner, cron-generate) runs again under Debian 13's
Python 3.13, with Debian 13's packages of the libraries (python3-yaml,
-jinja2, -click, -pystemd, pytest), in a booted Debian 13 box that sees the
checkout read-only. The package tests (tests/test_package.py) run the
installed package with each release's python3."""

from __future__ import annotations

import pytest

from tests.debian_root import TRIXIE, root_of
from tests.systemd_box import CHECKOUT, checkout_box

pytestmark = pytest.mark.systemd

SUBSET = (
    "tests/test_job.py", "tests/test_job_schema.py", "tests/test_config.py",
    "tests/test_schedule.py", "tests/test_retry.py", "tests/test_systemd_version.py",
    "tests/test_nodes.py", "tests/test_unit_escape.py", "tests/test_templates.py",
    "tests/test_generator.py", "tests/test_direct_runner.py", "tests/test_retry_direct.py",
    "tests/test_cron_generate.py",
)

# What only a virtualenv has: the generator run as `python -I -S` finds the
# virtualenv's site-packages (Debian's python3 keeps its packages in
# dist-packages, which only the site module adds; the Debian package's own
# generator wrapper, tested on both releases in tests/test_package.py, does not
# depend on it).
VENV_ONLY = ("tests/test_generator.py::test_generator_without_site_finds_this_virtualenvs_packages",)


def test_the_librarys_tests_pass_under_debian_13s_python() -> None:
    with checkout_box(root_of(TRIXIE)) as box:
        shown = box.run(["python3", "-c", "import sys; print(sys.version_info[:2])"])
        assert shown.stdout.strip() == "(3, 13)"
        # The checkout is read-only there: no bytecode, no pytest cache. No
        # virtualenv either: the checkout on the path (PYTHONPATH, for the
        # tests that start the generator script as a program), and
        # Debian's packages of the libraries.
        done = box.run(["sh", "-c", 'cd "$1" && shift && exec env PYTHONDONTWRITEBYTECODE=1 '
                        'PYTHONPATH="$PWD" python3 -m pytest -q -p no:cacheprovider "$@"', "sh",
                        str(CHECKOUT), *SUBSET, *(f"--deselect={test}" for test in VENV_ONLY)],
                        check=False, timeout=900)
        summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
        assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
        assert " passed" in summary and "failed" not in summary and "error" not in summary
