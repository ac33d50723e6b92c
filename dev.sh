#!/usr/bin/env bash
# Set-up and entry point for a fresh machine.
#   ./dev.sh demo   install everything into .venv/ and run the demo
#   ./dev.sh test   install everything (a Debian 13 root too) and run the whole test suite
#   ./dev.sh bench  install everything and run the benchmarks in bench/
set -euo pipefail
cd "$(dirname "$0")"
here=$PWD

# Debian packages: systemd-nspawn boots the real systemd the tests use,
# libsystemd-dev + pkg-config + gcc build pystemd, cron is the real cron
# daemon of the cron-host tests, hyperfine times the benchmarks, sudo is
# what developers use on cron hosts (the sudoers example's tests), polkitd
# answers systemd for them on systemd hosts (the developer group's tests).
# The package tests build the Debian package (debhelper, dh-python,
# pybuild's pyproject plugin, help2man for the man pages; python3-build
# builds the wheel and sdist with Debian's Python, python3-venv makes the
# virtualenvs when python3 is Debian's), check it with
# lintian and install it in a container, where its dependencies must
# already be on this machine (the containers have no network). golang-go and
# golang-github-robfig-cron-dev build tests/robfig_next, offline: the real
# robfig/cron v3 that Kubernetes reads CronJob schedules with. piuparts
# (Debian's install/remove/purge tester) checks the package on a Debian 12
# base it makes from the Debian mirror (tests/test_piuparts.py). debootstrap
# builds the Debian 13 root that the package tests boot besides this Debian 12.
debs=(systemd systemd-container dbus libsystemd-dev pkg-config gcc cron hyperfine sudo polkitd
      debootstrap
      git build-essential debhelper dh-python pybuild-plugin-pyproject python3-all
      python3-setuptools python3-build python3-venv help2man lintian
      python3-yaml python3-jinja2 python3-click python3-pystemd
      golang-go golang-github-robfig-cron-dev piuparts)

missing_debs() {
    local pkg
    for pkg in "${debs[@]}"; do
        dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || echo "$pkg"
    done
}

install_debs() {
    command -v dpkg-query >/dev/null || { echo "dev.sh: not a Debian system; skipping packages" >&2; return; }
    local missing
    missing=$(missing_debs)
    [ -z "$missing" ] && return
    if [ "$(id -u)" -ne 0 ]; then
        echo "dev.sh: missing Debian packages (install them as root):" $missing >&2
        return
    fi
    echo "dev.sh: installing Debian packages:" $missing >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
    # A new cron package starts its daemon on hosts with init scripts; the
    # tests start their own, in a container.
}

install_venv() {
    local python=${PYTHON:-python3}
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || { echo "dev.sh: Python >= 3.11 is required" >&2; exit 1; }
    [ -x .venv/bin/python ] || "$python" -m venv .venv
    local extras=test
    # pystemd builds against libsystemd; hosts without it (cron hosts) run
    # everything else.
    if pkg-config --exists libsystemd 2>/dev/null; then extras=test,systemd; fi
    local stamp=.venv/.installed-compat-$extras-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
    if [ ! -e "$stamp" ]; then
        # Every package at the version constraints.txt pins, build tools
        # included: the build runs without isolation, with the pinned
        # setuptools and Cython, so no new upstream release reaches a fresh
        # machine. (This machine's pip configuration warns about missing
        # local mirrors on every package; those lines are noise.)
        # editable_mode=compat: a plain .pth path entry. The default mode's
        # import finder costs every interpreter start ~25 ms (measured:
        # `.venv/bin/python -c pass` 43 ms -> 17 ms), and run-job,
        # cron-generate and the record hooks all start interpreters.
        .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt \
            setuptools wheel Cython \
            2> >(grep -v "^WARNING: Location 'file://" >&2)
        .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt \
            --no-build-isolation -e ".[$extras]" --config-settings editable_mode=compat \
            2> >(grep -v "^WARNING: Location 'file://" >&2)
        rm -f .venv/.installed-*
        touch "$stamp"
    fi
    # Byte-compile the package, as pip does for a regular install: with
    # PYTHONDONTWRITEBYTECODE set, or from a read-only checkout (the test
    # containers bind it so), every start would otherwise compile the
    # modules it imports (~20 ms for run-job --status).
    .venv/bin/python -m compileall -q pc_systemd >/dev/null
}

demo() {
    local dir=$here/.demo
    mkdir -p "$dir"
    # Built-in defaults for every key except where the example jobs live
    # and where the cron file goes (the console, not /etc).
    cat >"$dir/config.yaml" <<YAML
job_directory: $here/examples/jobs
output_crontab: console
YAML
    export PROCESS_CONTROL_CONFIG=$dir/config.yaml
    export PROCESS_CONTROL_CACHE=$dir/cache  # not /var/cache/pc-systemd: the demo keeps to .demo/
    echo "== run-job --validate (examples/jobs)"
    .venv/bin/run-job --validate || true
    echo "== run-job --list-jobs"
    .venv/bin/run-job --list-jobs
    echo "== generator -> .demo/units/"
    rm -rf "$dir/units"
    .venv/bin/python -I -S generators/process-control-generator "$dir/units" "$dir/units" "$dir/units"
    ls "$dir/units" "$dir/units/timers.target.wants"
    echo "== .demo/units/process-control-month_start.service"
    cat "$dir/units/process-control-month_start.service"
    echo "== .demo/units/process-control-month_start.timer"
    cat "$dir/units/process-control-month_start.timer"
    echo "== cron-generate (output_crontab: console)"
    .venv/bin/cron-generate
}

build_roots() {
    # The Debian 13 root the package tests boot (tests/debian_root.py): built
    # once from Debian's packages (about 3 minutes here), then reused from
    # /var/cache/pc-systemd-test/ until its recipe changes. Root only, as
    # the boxes themselves.
    [ "$(id -u)" -eq 0 ] && command -v debootstrap >/dev/null || return 0
    .venv/bin/python -m tests.debian_root trixie
}

run_tests() {
    .venv/bin/ruff check pc_systemd tests bench generators/process-control-generator
    .venv/bin/mypy
    .venv/bin/python -m pytest -ra "$@"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    demo) install_debs; install_venv; demo ;;
    test) install_debs; install_venv; build_roots; run_tests "$@" ;;
    bench) install_debs; install_venv; exec bench/run.sh "$@" ;;
    *) echo "usage: ./dev.sh demo|test|bench" >&2; exit 2 ;;
esac
