"""The approve / reject / cancel payload as the Web UI may send it: read, or refused naming the
field (the workflow-level behaviour is in tests/cli/test_operator_cli.py)."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.exceptions import ApplicationError

from offramp.orders.models import Decision
from workflows.operator_input import INVALID_DECISION, operator_decision


def test_a_decision_is_read_from_its_json_object_or_taken_as_it_is() -> None:
    decision = Decision(operator="ops@example.com", note="kyc ok")
    assert (
        operator_decision("approve", {"operator": "ops@example.com", "note": "kyc ok"}) == decision
    )
    assert operator_decision("approve", decision) is decision
    assert operator_decision("cancel", {"operator": "ops"}).note == ""


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (None, "operator is required"),
        ({}, "operator is required"),
        ({"note": "x"}, "operator is required"),
        ({"operator": ""}, "operator: String should have at least 1 character"),
        ({"operator": 7}, "operator: Input should be a valid string"),
        ("ops@example.com", "the payload must be a JSON object, not str"),
        (["ops"], "the payload must be a JSON object, not list"),
    ],
    ids=["none", "empty", "no-operator", "blank", "number", "string", "list"],
)
def test_a_bad_payload_is_refused_naming_the_field(payload: Any, reason: str) -> None:
    with pytest.raises(ApplicationError) as refused:
        operator_decision("reject", payload)
    assert refused.value.type == INVALID_DECISION and refused.value.non_retryable
    assert refused.value.message == (
        f'reject: {reason} (payload {{"operator": "<who decides>", "note": "<optional note>"}})'
    )
