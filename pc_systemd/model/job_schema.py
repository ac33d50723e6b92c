"""The JSON Schema (draft 2020-12) of job files, put together from the
fragments the job keys declare (``Key.schema``), for editors to check job
files as they are typed (``run-job schema``).

It says what JSON Schema can of the validator's rules and never more: every
job file ``run-job validate`` accepts passes it. ``run-job validate``
remains the judge: duplicate keys, a schedule's ranges, a zone that exists,
quoting in command lines are only checked there.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from pc_systemd.model.fields import Key
from pc_systemd.model.job_keys import JOB_KEYS

DIALECT = "https://json-schema.org/draft/2020-12/schema"
# A name, not an address: nothing is published there, and editors find the
# schema through the path or URL the job file's modeline gives.
SCHEMA_ID = "urn:process-control:job"
SCHEMA_FILE = "job.schema.json"  # in the repository and in /usr/share/process-control/


def property_schema(key: Key[Any]) -> dict[str, Any]:
    """A key's fragment with its help and, where it is plain JSON, its default."""
    if key.schema is None:
        raise ValueError(f"job key {key.name!r} declares no JSON Schema fragment (schema=)")
    # markdownDescription: editors that render Markdown show the backticks as code.
    schema = {"description": key.help, "markdownDescription": key.help, **key.schema}
    if not key.required and isinstance(key.default, bool | int | float | str):
        schema["default"] = key.default
    return schema


def job_schema(strict: bool = False) -> dict[str, Any]:
    """The schema of a job file; ``strict``: unknown keys fail too (as
    ``run-job validate --strict``), instead of passing (the validator only
    warns about them, as the original ignored them)."""
    title = "process-control job file"
    schema = {
        "$schema": DIALECT,
        "$id": SCHEMA_ID + (":strict" if strict else ""),
        "title": title + (" (strict: no unknown keys)" if strict else ""),
        "description": "One job: <job_directory>/<slug>.yaml. Keys missing here come from "
        "default_job_config, else the defaults shown. `run-job validate` checks more "
        "than this schema can say.",
        "type": "object",
        "properties": {key.name: property_schema(key) for key in JOB_KEYS},
        "required": [key.name for key in JOB_KEYS if key.required],
        "additionalProperties": not strict,
    }
    return copy.deepcopy(schema)  # the fragments are shared constants: hand out a copy


def schema_text(strict: bool = False) -> str:
    """The schema as ``run-job schema`` prints it and job.schema.json holds it."""
    return json.dumps(job_schema(strict), indent=2, ensure_ascii=True) + "\n"
