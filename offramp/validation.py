"""One way to say what was wrong with a validated input: `field: reason; field: reason`."""

from __future__ import annotations

from pydantic import ValidationError


def describe(err: ValidationError) -> str:
    parts = []
    for item in err.errors(include_url=False, include_input=False):
        field = ".".join(str(p) for p in item["loc"]) or "input"
        parts.append(f"{field}: {item['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)
