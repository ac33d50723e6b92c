"""What a finished run of a job's unit means: run-job's exit status and the
one-line reason, from what systemd reports (the unit's ``Result`` and
``ExecMainCode``/``ExecMainStatus`` over D-Bus, or the same values from the
journal's ``UNIT_RESULT``, ``EXIT_CODE`` and ``EXIT_STATUS``).

The reasons use the original's words where it had them
(``<Name> failed with code N``, ``<Name> timed out after M minutes``).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

# waitid(2) codes, as systemd's ExecMainCode reports them.
CLD_EXITED = 1
CLD_KILLED = 2
CLD_DUMPED = 3
CLD_NAMES = {"exited": CLD_EXITED, "killed": CLD_KILLED, "dumped": CLD_DUMPED}

# ActiveStates of a unit whose run is going (starting, running or stopping).
RUNNING = frozenset({"activating", "active", "deactivating", "reloading", "refreshing"})

EXIT_FAILED = 1  # a failure without an exit code of its own (timeout, resources...)
SIGNAL_BASE = 128  # as a shell reports a process killed by a signal


@dataclass(frozen=True)
class UnitOutcome:
    """A finished run of a unit, as systemd reports it, in run-job's terms:
    ``status`` success | failure (the original's words)."""

    status: str
    exit_status: int  # for run-job: 0, the job's own code, 128 + signal, or 1
    reason: str | None  # one line; None on success
    unit_result: str  # systemd's Result (success, exit-code, timeout, signal, ...)
    code: int | None = None  # the exit code, when the job exited by itself
    signal: str | None = None  # e.g. SIGTERM, when a signal ended it


def minutes(value: float) -> str:
    """As the original printed the YAML value: ``10``, ``0.005``."""
    return str(int(value)) if value.is_integer() else repr(value)


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def signal_number(text: str) -> int | None:
    """A killed process's ``EXIT_STATUS`` as systemd writes it: a name without
    ``SIG`` (``TERM``), ``RTMIN+N``, or a number for signals it has no name for."""
    if text.isdigit():
        return int(text)
    try:
        return int(signal.Signals["SIG" + text])
    except KeyError:
        pass
    if text.startswith("RTMIN+") and text[6:].isdigit():
        return int(signal.SIGRTMIN) + int(text[6:])
    return None


def from_exit(name: str, result: str, exit_code: str, exit_status: str,
              timeout_minutes: float) -> UnitOutcome:
    """:func:`outcome` from the journal's or ``MONITOR_*``'s text fields
    (``EXIT_CODE`` exited|killed|dumped, ``EXIT_STATUS`` a number or a
    signal name)."""
    main_code = CLD_NAMES.get(exit_code, 0)
    number: int | None = None
    if main_code == CLD_EXITED and exit_status.isdigit():
        number = int(exit_status)
    elif main_code in (CLD_KILLED, CLD_DUMPED):
        number = signal_number(exit_status)
    if number is None:
        main_code = 0  # nothing understood: the reason names systemd's result
    return outcome(name, result, main_code, number or 0, timeout_minutes)


# systemd's exit status of a service whose LoadCredential= failed (EXIT_CREDENTIALS).
EXIT_CREDENTIALS = 243


def outcome(
    name: str, result: str, main_code: int, main_status: int, timeout_minutes: float
) -> UnitOutcome:
    """``name`` is the job's human name, ``timeout_minutes`` its ``timeout``."""
    if result == "success":
        return UnitOutcome("success", 0, None, result)
    if result == "timeout":
        limit = f" after {minutes(timeout_minutes)} minutes" if timeout_minutes > 0 else ""
        return UnitOutcome("failure", EXIT_FAILED, f"{name} timed out{limit}", result)
    if main_code == CLD_EXITED and main_status != 0:
        status = main_status if 0 < main_status < 256 else EXIT_FAILED
        why = f"{name} failed with code {main_status}"
        if main_status == EXIT_CREDENTIALS:
            why += (": systemd could not load its credentials (is each file in "
                    "credentials_directory?)")
        return UnitOutcome("failure", status, why, result, code=main_status)
    if main_code in (CLD_KILLED, CLD_DUMPED) and result in ("signal", "core-dump"):
        sig = signal_name(main_status)
        dumped = " (core dumped)" if main_code == CLD_DUMPED else ""
        return UnitOutcome("failure", SIGNAL_BASE + main_status,
                       f"{name} was killed by signal {sig}{dumped}", result, signal=sig)
    if result == "oom-kill":
        return UnitOutcome("failure", SIGNAL_BASE + signal.SIGKILL,
                       f"{name} was killed by the out-of-memory killer", result,
                       signal="SIGKILL")
    return UnitOutcome("failure", EXIT_FAILED, f"{name} failed: systemd reports {result}", result)
