"""Run job.schema.json through a real editor's checker: yaml-language-server.

    npm install --prefix /tmp/yls yaml-language-server
    .venv/bin/python bench/editor_check.py /tmp/yls/node_modules/.bin/yaml-language-server

Hands the server (over the Language Server Protocol, on stdio) every job
file that tests/test_job_schema.py finds valid, and every one it finds
invalid and caught by the schema (the corpus's and its TYPE_ERRORS), each
with the ``# yaml-language-server: $schema=...`` line docs/configuration.md shows, and
prints the counts and every file the editor judges otherwise. Not part of
the test suite: it needs node and npm, which the project's machines need
for nothing else.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import test_job_schema as t  # noqa: E402
from tests.conftest import Site  # noqa: E402


class Server:
    def __init__(self, command: str, yaml_version: str) -> None:
        self.proc = subprocess.Popen([command, "--stdio"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.settings = {"yamlVersion": yaml_version, "validate": True,
                         "schemaStore": {"enable": False}}
        self.request(1, "initialize", {"processId": os.getpid(), "rootUri": None,
                                       "capabilities": {"workspace": {"configuration": True}}})
        self.wait(lambda m: m.get("id") == 1)
        self.send({"method": "initialized", "params": {}})
        self.send({"method": "workspace/didChangeConfiguration",
                   "params": {"settings": {"yaml": self.settings}}})

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def request(self, number: int, method: str, params: dict[str, Any]) -> None:
        self.send({"id": number, "method": method, "params": params})

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        length = 0
        while (line := self.proc.stdout.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        message: dict[str, Any] = json.loads(self.proc.stdout.read(length))
        return message

    def wait(self, wanted: Any) -> dict[str, Any]:
        while True:
            message = self.read()
            if message.get("method") == "workspace/configuration":
                items = message["params"]["items"]
                self.send({"id": message["id"], "result": [
                    self.settings if i.get("section") == "yaml" else None for i in items]})
            elif "id" in message and "method" in message:
                self.send({"id": message["id"], "result": None})
            elif wanted(message):
                return message

    def diagnostics(self, number: int, text: str, schema: Path) -> list[str]:
        """The schema's diagnostics of one file (YAML syntax ones left out)."""
        uri = f"file:///tmp/editor-check/job{number}.yaml"
        full = f"# yaml-language-server: $schema={schema}\n{text}"
        self.send({"method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": uri, "languageId": "yaml", "version": 1, "text": full}}})
        message = self.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics"
                            and m["params"]["uri"] == uri)
        return [d["message"] for d in message["params"]["diagnostics"]
                if str(d.get("source", "")).startswith("yaml-schema")]


def job_sets() -> tuple[list[str], list[str]]:
    """(valid, invalid and caught by the schema) job files, as text."""
    top = Path(tempfile.mkdtemp())
    (top / "jobs").mkdir()
    site = Site(top, top / "jobs", top / "config.yaml")
    site.configure()
    valid, caught = list(t.repository_jobs().values()), []
    for case in t.TEXT_CASES:
        data = case.data()
        if len(data) > 20_000:  # the size and node limits: nothing an editor shows
            continue
        try:
            text = data.decode()
        except UnicodeDecodeError:
            continue
        outcome = t.check_agreement(site, data, case.text())
        (valid if outcome == "valid" else caught if outcome == "invalid" else []).append(text)
    for line, _ in t.TYPE_ERRORS:
        caught.append(("" if line.startswith("name:") else "name: x\n")
                      + ("" if line.startswith("command:") else "command: /bin/true\n")
                      + line + "\n")
    return sorted(set(valid)), sorted(set(caught))


def main(command: str) -> int:
    schema = ROOT / "job.schema.json"
    valid, caught = job_sets()
    for version in ("1.2", "1.1"):
        server = Server(command, version)
        flagged = [(text, found) for n, text in enumerate(valid)
                   if (found := server.diagnostics(n, text, schema))]
        missed = [text for n, text in enumerate(caught, len(valid))
                  if not server.diagnostics(n, text, schema)]
        server.proc.kill()
        print(f"YAML {version}: {len(valid)} valid files, {len(flagged)} flagged; "
              f"{len(caught)} invalid ones, {len(missed)} not flagged")
        for text, found in flagged:
            print(f"  flagged: {text!r}: {found}")
        for text in missed:
            print(f"  not flagged: {text!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
