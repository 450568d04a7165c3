"""What an operator sends to the approve / reject / cancel updates, read leniently enough that a
bad payload (from the Web UI's update form, say) is refused with the field that is wrong rather
than a Python TypeError or "Failed decoding arguments".

The handlers take the payload as plain JSON (`Any`, optional): the SDK's own decoding of a
missing or incomplete payload fails before any validator can explain it. An update refused by its
validator is not recorded in history; an accepted one was valid, so replay reads it the same.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import ValidationError
from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from offramp.orders.models import Decision
    from offramp.validation import describe

# The payload to type in the Web UI's update form (also in the README).
DECISION_PAYLOAD: Final = '{"operator": "<who decides>", "note": "<optional note>"}'
PAYLOAD_DOC: Final = f"Payload: {DECISION_PAYLOAD}"
INVALID_DECISION: Final = "InvalidDecision"


def operator_decision(update: str, payload: Any) -> Decision:
    """The decision in `payload`; an ApplicationError naming the missing or bad field."""
    if isinstance(payload, Decision):
        return payload
    if payload is None or payload == {}:
        raise _invalid(update, "operator is required")
    if not isinstance(payload, dict):
        raise _invalid(update, f"the payload must be a JSON object, not {type(payload).__name__}")
    try:
        return Decision.model_validate(payload)
    except ValidationError as err:
        missing = [
            ".".join(str(p) for p in item["loc"]) + " is required"
            for item in err.errors(include_url=False, include_input=False)
            if item["type"] == "missing"
        ]
        raise _invalid(update, "; ".join(missing) or describe(err)) from None


def _invalid(update: str, reason: str) -> ApplicationError:
    return ApplicationError(
        f"{update}: {reason} (payload {DECISION_PAYLOAD})",
        type=INVALID_DECISION,
        non_retryable=True,
    )
