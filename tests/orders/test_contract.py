"""The committed workflow contract is what the code generates (regenerate: `offramp schema`)."""

from __future__ import annotations

import json

import pytest

from offramp.orders.contract import CONTRACT_DIR, render, schemas
from offramp.orders.models import SellOrderInput


@pytest.mark.parametrize("name", sorted(schemas()))
def test_committed_schema_is_current(name: str) -> None:
    committed = (CONTRACT_DIR / name).read_text()
    assert committed == render(schemas()[name]), f"contract/{name} is stale: run `offramp schema`"


def test_example_input_validates() -> None:
    example = json.loads((CONTRACT_DIR / "example-input.json").read_text())
    request = SellOrderInput.model_validate_json(json.dumps(example))
    assert str(request.max_amount) == example["max_amount"]
