"""JSON with exact decimals: Decimal values are written as JSON number text (never via float)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any


def dumps_exact(value: Any) -> str:
    """Like `json.dumps(value, separators=(",", ":"))`, with Decimal as its exact number text.
    (A non-finite Decimal is written as NaN/Infinity, as Python's json does for floats: the
    simulator serves such bodies on purpose when a test asks for one.)"""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        items = (f"{json.dumps(str(k))}:{dumps_exact(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps_exact(v) for v in value) + "]"
    return json.dumps(value)


def deep_merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`overrides` on top of `base`: nested objects merge, anything else replaces."""
    merged = dict(base)
    for key, value in overrides.items():
        current = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, dict):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = value
    return merged
