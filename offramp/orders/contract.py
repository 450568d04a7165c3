"""The workflow contract for backends in any language: type name, task queue, JSON schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from offramp.config import DEFAULT_TASK_QUEUE
from offramp.devstack.binaries import PROJECT_ROOT
from offramp.orders.models import (
    WORKFLOW_ID_PREFIX,
    WORKFLOW_TYPE,
    Decision,
    SellOrderInput,
    SellOrderResult,
    SellOrderState,
)

CONTRACT_DIR = PROJECT_ROOT / "contract"


def schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema, generated from the models the workflow really uses."""
    return {
        "sell-order-input.schema.json": SellOrderInput.model_json_schema(mode="validation"),
        "sell-order-result.schema.json": SellOrderResult.model_json_schema(mode="serialization"),
        "sell-order-state.schema.json": SellOrderState.model_json_schema(mode="serialization"),
        "decision.schema.json": Decision.model_json_schema(mode="validation"),
        "contract.json": {
            "workflowType": WORKFLOW_TYPE,
            "taskQueue": DEFAULT_TASK_QUEUE,
            "workflowIdPattern": WORKFLOW_ID_PREFIX + "<order_id>",
            "input": "sell-order-input.schema.json",
            "result": "sell-order-result.schema.json",
            "queries": {"state": "sell-order-state.schema.json"},
            "updates": {
                "approve": "decision.schema.json",
                "reject": "decision.schema.json",
                "cancel": "decision.schema.json",
            },
            "signals": {"poll_now": None},
            "encoding": "json/plain (pydantic): decimals as JSON strings, durations as ISO 8601",
        },
    }


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write(directory: Path = CONTRACT_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in schemas().items():
        path = directory / name
        path.write_text(render(schema))
        written.append(path)
    return written
