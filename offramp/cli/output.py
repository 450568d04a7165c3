"""`--json`: the same data a command prints, as one JSON document on stdout (for scripts)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from offramp.cli.app import console

JsonOpt = Annotated[bool, typer.Option("--json", help="print the data as JSON")]


def print_json(data: Any) -> None:
    # Plain print, not rich's: a script parses this, so no wrapping, colour or highlighting.
    console.print(
        json.dumps(data, indent=2, default=str), markup=False, highlight=False, soft_wrap=True
    )
