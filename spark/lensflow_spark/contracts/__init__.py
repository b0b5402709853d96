"""Job input and result contracts: JSON Schema files generated from the TypeScript zod schemas
(`make contracts`), so both sides validate against one source of truth; and the shared facts
(release formats, the best-point rule) exported beside them as JSON."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator


class ContractError(ValueError):
    """A job input or result document that does not match its job's contract."""


@cache
def _validator(name: str) -> Draft202012Validator:
    text = resources.files(__name__).joinpath(f"{name}.schema.json").read_text("utf-8")
    return Draft202012Validator(json.loads(text))


def _validate(job: str, kind: str, doc: dict[str, Any]) -> dict[str, Any]:
    errors = sorted(_validator(f"{job}-{kind}").iter_errors(doc), key=lambda e: list(e.path))
    if errors:
        lines = [f"  {'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors]
        raise ContractError(f"{job} {kind} breaks its contract:\n" + "\n".join(lines))
    return doc


def validate_input(job: str, doc: dict[str, Any]) -> dict[str, Any]:
    """Returns `doc` if it matches the job's input schema; raises ContractError listing every problem."""
    return _validate(job, "input", doc)


@cache
def shared_fact(name: str) -> Any:
    """A fact defined in `src/contracts/sharedFacts.ts`, e.g. "release-formats" or "best-point-rule"."""
    return json.loads(resources.files(__name__).joinpath(f"{name}.json").read_text("utf-8"))


def validate_result(job: str, doc: dict[str, Any]) -> dict[str, Any]:
    """Returns `doc` if it matches the job's result schema; raises ContractError listing every problem."""
    return _validate(job, "result", doc)
