"""A fast reader for the plain YAML that job files are made of.

PyYAML costs about 35 ms to import and 0.13 ms per file to compose, which
is most of a generator run.  Job files are nearly always a flat mapping of
plain or quoted scalars, one-level lists and mappings, flow lists and simple
folded or literal text.  This reader handles exactly that, with YAML 1.1
typing as PyYAML's SafeLoader does it, and returns ``False`` -- "use
PyYAML" -- at the first thing it is not sure of: anchors, tags, escapes,
multi-line plain scalars, tabs, non-ASCII text, deeper nesting, and every
syntax error (so error messages always come from PyYAML).  A differential
test holds it to PyYAML's result on every input it accepts.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pc_systemd.model.nodes import MAX_NODES, Map, Node, Scalar, Seq

NO = Literal[False]
_PRINTABLE = re.compile(r"[\x20-\x7e\n]*\Z")
_TOP_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*):(?: +(.*))?\Z")
_SUB_KEY = re.compile(r"( +)([A-Za-z_][A-Za-z0-9_]*):(?: +(.*))?\Z")
_ITEM = re.compile(r"( *)- +(\S.*)\Z")
_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)\Z")
_FLOAT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)\.[0-9]+\Z")
_BOOL = {
    **dict.fromkeys(("yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"), True),
    **dict.fromkeys(("no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"), False),
}
_NULL = {"~", "null", "Null", "NULL"}
# Starts with a letter or '/', no ':', '#' or trailing space: a plain string.
_SIMPLE_TEXT = re.compile(r"[A-Za-z/][^:#]*(?<! )\Z")
# YAML indicators a plain scalar cannot start with ('[' and quotes are
# handled; '-' is allowed when not followed by a space).
_BAD_START = set(",]{}#&*!|>%@`?:<=")


class _Unsure(Exception):
    """Raised internally: hand the document to PyYAML."""


def fast_parse(text: str) -> Node | NO | None:
    # This reader makes at most three nodes a line (a key, its value or a
    # flow list, and the list's first item) and one more per comma: where
    # that could pass the node limit, PyYAML's path counts them exactly.
    if not _PRINTABLE.match(text) or 4 + 3 * text.count("\n") + text.count(",") > MAX_NODES:
        return False
    try:
        return _Reader(text.split("\n")).document()
    except _Unsure:
        return False


def _plain(text: str) -> Any:
    """The value of a plain scalar, typed as YAML 1.1 (PyYAML) types it."""
    first = text[0]
    if first in _BAD_START:
        raise _Unsure
    if first == "-" and (len(text) == 1 or text[1] == " "):
        raise _Unsure
    if text in _BOOL:
        return _BOOL[text]
    if text in _NULL:
        return None
    if first in "0123456789+-.~":
        if _INT.match(text):
            return int(text)
        if _FLOAT.match(text):
            return float(text)
        # Ints, floats and timestamps never contain these; anything else
        # starting like a number (octal, 1:30, dates, .inf) goes to PyYAML.
        if not any(c in text for c in "*/,"):
            raise _Unsure
    return text


def _inline_plain(raw: str) -> str:
    """A plain scalar on one line: comment stripped, ': ' refused."""
    cut = raw.find(" #")
    body = (raw if cut < 0 else raw[:cut]).rstrip()
    if not body or ": " in body or body.endswith(":"):
        raise _Unsure
    return body


def _quoted(raw: str) -> str:
    """A single- or double-quoted scalar wholly on this line."""
    quote = raw[0]
    if quote == "'":
        i, out = 1, []
        while True:
            j = raw.find("'", i)
            if j < 0:
                raise _Unsure  # continues on the next line
            out.append(raw[i:j])
            if raw[j + 1 : j + 2] == "'":
                out.append("'")
                i = j + 2
                continue
            value, rest = "".join(out), raw[j + 1 :]
            break
    else:
        j = raw.find('"', 1)
        if j < 0 or "\\" in raw[1:j]:
            raise _Unsure
        value, rest = raw[1:j], raw[j + 1 :]
    if rest.strip() and not rest.lstrip().startswith("#"):
        raise _Unsure
    if rest and not rest.startswith(" ") and rest.strip():
        raise _Unsure
    return value


def _scalar(raw: str, line: int) -> Scalar:
    if raw[0] in "'\"":
        return Scalar(value := _quoted(raw), value, line)
    if _SIMPLE_TEXT.match(raw) and raw not in _BOOL and raw not in _NULL:
        # the common case: a word or path that can only be a string
        return Scalar(raw, raw, line)
    text = _inline_plain(raw)
    return Scalar(_plain(text), text, line)


def _flow_list(raw: str, line: int) -> Seq:
    end = raw.rfind("]")
    rest = raw[end + 1 :] if end >= 0 else ""
    if end < 0 or (rest.strip() and not rest.startswith(" #")):
        raise _Unsure
    body = raw[1:end]
    if any(c in body for c in "[]{}#'\":"):
        raise _Unsure
    if not body.strip():
        return Seq((), line)
    items = []
    for part in body.split(","):
        text = part.strip()
        if not text:
            raise _Unsure
        items.append(Scalar(_plain(text), text, line))
    return Seq(tuple(items), line)


class _Reader:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.i = 0

    def _skip(self) -> None:
        """Past blank and comment lines."""
        while self.i < len(self.lines):
            stripped = self.lines[self.i].strip()
            if stripped and not stripped.startswith("#"):
                return
            self.i += 1

    def document(self) -> Node | None:
        self._skip()
        pairs: list[tuple[Node, Node]] = []
        start = self.i + 1
        while self.i < len(self.lines):
            line = self.lines[self.i]
            match = _TOP_KEY.match(line)
            if match is None:
                raise _Unsure
            number = self.i + 1
            key = match.group(1)
            pairs.append((Scalar(_plain(key), key, number), self._value(match.group(2), number)))
            self._skip()
        if not pairs:
            return None
        return Map(tuple(pairs), start)

    def _value(self, raw: str | None, number: int) -> Node:
        self.i += 1
        raw = (raw or "").strip()
        if raw.startswith("#"):
            raw = ""
        if not raw:
            return self._block(number)
        if raw in (">", "|"):
            return self._text_block(raw, number)
        if raw[0] == "[":
            return _flow_list(raw, number)
        return _scalar(raw, number)

    def _children(self) -> list[tuple[int, str]]:
        """The lines under a key: up to the next line at column 0 that is
        not a list item."""
        found = []
        while self.i < len(self.lines):
            line = self.lines[self.i]
            stripped = line.strip()
            if stripped and not stripped.startswith("#"):
                if not line.startswith(" ") and not line.startswith("-"):
                    break
                found.append((self.i + 1, line))
            self.i += 1
        return found

    def _block(self, number: int) -> Node:
        children = self._children()
        if not children:
            raise _Unsure  # a null value; PyYAML knows where its line is
        items = [_ITEM.match(line) for _, line in children]
        if all(items):
            indents = {m.group(1) for m in items if m}
            if len(indents) != 1:
                raise _Unsure
            seq = []
            for (n, _), m in zip(children, items, strict=True):
                assert m is not None
                raw = m.group(2)
                if raw[0] in "[{" or raw in (">", "|"):
                    raise _Unsure
                seq.append(_scalar(raw, n))
            return Seq(tuple(seq), children[0][0])
        keys = [_SUB_KEY.match(line) for _, line in children]
        if not all(keys):
            raise _Unsure
        if len({k.group(1) for k in keys if k}) != 1:
            raise _Unsure
        pairs: list[tuple[Node, Node]] = []
        for (n, _), k in zip(children, keys, strict=True):
            assert k is not None
            raw = (k.group(3) or "").strip()
            if not raw or raw.startswith("#") or raw[0] in "[{" or raw in (">", "|"):
                raise _Unsure
            pairs.append((Scalar(_plain(k.group(2)), k.group(2), n), _scalar(raw, n)))
        return Map(tuple(pairs), children[0][0])

    def _text_block(self, style: str, number: int) -> Scalar:
        """``>`` or ``|`` text at one indent, no blank lines inside."""
        body: list[str] = []
        indent = None
        while self.i < len(self.lines):
            line = self.lines[self.i]
            if not line.strip():
                if body and not line:
                    break
                raise _Unsure  # white space may be text of the block
            width = len(line) - len(line.lstrip(" "))
            if indent is None:
                if width == 0:
                    raise _Unsure
                indent = width
            if width < indent:
                break
            if width > indent or line != line.rstrip():
                raise _Unsure
            body.append(line[indent:])
            self.i += 1
        if not body:
            raise _Unsure
        # a blank line ends the text; text may not go on after it
        rest = self.i
        while rest < len(self.lines) and not self.lines[rest]:
            rest += 1
        if rest < len(self.lines) and self.lines[rest].startswith(" "):
            raise _Unsure
        # clip chomping: one final line break, if the text has one there
        broken = self.i < len(self.lines)
        value = (" " if style == ">" else "\n").join(body) + ("\n" if broken else "")
        return Scalar(value, value, number)
