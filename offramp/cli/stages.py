"""Stage names as operators type them: `AWAITING-APPROVAL`, `awaiting approval` and
`AWAITING_APPROVAL` are one stage; anything else is a usage error naming the valid ones (a typo
must not silently list nothing)."""

from __future__ import annotations

import re

import typer

from offramp.orders.models import Stage

_SEPARATORS = re.compile(r"[\s\-]+")


def parse_stage(text: str) -> Stage:
    name = _SEPARATORS.sub("_", text.strip()).upper()
    try:
        return Stage(name)
    except ValueError:
        valid = ", ".join(stage.value for stage in Stage)
        raise typer.BadParameter(
            f"unknown stage {text!r}; valid stages: {valid}", param_hint="'--stage'"
        ) from None


def stage_option(value: str | None) -> str | None:
    """Typer callback: the canonical stage name (or None when not given)."""
    return None if value is None else parse_stage(value).value
