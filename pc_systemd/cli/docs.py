"""The tables of the configuration and job keys (in docs/configuration.md),
and the JSON Schema of job files, made from their declarations
(``python -m pc_systemd.cli.docs docs/configuration.md job.schema.json``
rewrites them)."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import Any

from pc_systemd.model.config import CONFIG_KEYS
from pc_systemd.model.fields import Key
from pc_systemd.model.job_keys import JOB_KEYS
from pc_systemd.model.job_schema import schema_text

TABLES: dict[str, Sequence[Key[Any]]] = {"config": CONFIG_KEYS, "job": JOB_KEYS}


def table(keys: Sequence[Key[Any]]) -> str:
    rows = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for key in keys:
        cells = (f"`{key.name}`", key.type, key.doc_default(), key.help)
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"


def refresh(text: str) -> str:
    for name, keys in TABLES.items():
        pattern = re.compile(
            rf"(<!-- keys:{name} -->\n).*?(<!-- /keys:{name} -->)", re.DOTALL
        )
        body = table(keys)

        def fill(match: re.Match[str], body: str = body) -> str:
            return match.group(1) + body + match.group(2)

        text = pattern.sub(fill, text)
    return text


def main(argv: list[str]) -> int:
    for path in argv:
        try:
            with open(path, encoding="utf-8") as handle:
                old = handle.read()
        except FileNotFoundError:
            old = ""
        new = schema_text() if path.endswith(".json") else refresh(old)
        if new != old:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(new)
            print(f"updated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
