"""The escaping module's fast paths keep its rules."""

from __future__ import annotations

import sys

import pytest

from pc_systemd.model.fields import CONTROL
from pc_systemd.systemd import unit_escape as esc


def test_no_printable_character_is_a_control_character() -> None:
    """check_line and unit_escape skip the CONTROL search for printable
    strings; that is only right while no printable character matches it."""
    printable_control = [
        hex(code) for code in range(sys.maxunicode + 1)
        if chr(code).isprintable() and CONTROL.search(chr(code))
    ]
    assert printable_control == []


@pytest.mark.parametrize("bad", ["\n", "\r", "\x00", "\x7f", "\x85", "\u2028", "\ufdd0",
                                 "\U0010ffff", "\ud800"])
def test_every_setting_still_refuses_control_characters(bad: str) -> None:
    value = f"a{bad}b"
    for escape in (esc.plain, esc.comment, lambda v: esc.path("/" + v),
                   lambda v: esc.environment("X", v), lambda v: esc.exec_argv(["/bin/x", v])):
        with pytest.raises(esc.UnitValueError):
            escape(value)
    # twice: the second call of an argument comes from the memo of words
    with pytest.raises(esc.UnitValueError):
        esc.exec_argv(["/bin/x", value])


def test_arguments_are_escaped_the_same_from_the_memo() -> None:
    argv = ["/bin/echo", "100%", "$HOME", 'say "hi"', "back\\slash", "ü"]
    first = esc.exec_argv(argv)
    assert first == '"/bin/echo" "100%%" "$$HOME" "say \\"hi\\"" "back\\\\slash" "ü"'
    assert esc.exec_argv(argv) == first
