"""Starting sell orders: the Python helper for wallet backends.

A second start for the same order returns the first one's handle: the workflow id is fixed per
order (`<provider>-sell-<orderId>`, Kado's: `kado-sell-<orderId>`) and duplicates are rejected, so a
second start can never pay again. The provider is a search attribute set here, at start (no upsert,
so no billed action).
"""

from __future__ import annotations

from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from offramp import search_attributes as sa
from offramp.config import DEFAULT_TASK_QUEUE
from offramp.orders.models import WORKFLOW_TYPE, SellOrderInput, SellOrderResult, Stage
from offramp.providers import adapter


def static_summary(request: SellOrderInput) -> str:
    return f"{adapter(request.provider).title} SELL {request.order_id}"[:200]


def static_details(request: SellOrderInput) -> str:
    binding = ", ".join(
        part
        for part in (
            f"userRef `{request.user_ref}`" if request.user_ref else "",
            f"wallet `{request.wallet_address}`" if request.wallet_address else "",
        )
        if part
    )
    return (
        f"**{adapter(request.provider).title} SELL order `{request.order_id}`**\n\n"
        f"- bound to {binding}\n"
        f"- at most {request.max_amount} (whole units of the order's asset)\n"
    )


async def start_sell_order(
    client: Client, request: SellOrderInput, *, task_queue: str = DEFAULT_TASK_QUEUE
) -> WorkflowHandle[object, SellOrderResult]:
    """Start the order's workflow, or return the handle of the one already started for it."""
    if client.data_converter.payload_codec is not None and (
        "amount_searchable" not in request.model_fields_set
    ):
        # Encrypted payloads: keep the amount out of the plaintext search attributes too.
        request = request.model_copy(update={"amount_searchable": False})
    try:
        return await client.start_workflow(
            WORKFLOW_TYPE,
            request,
            id=request.workflow_id,
            task_queue=task_queue,
            result_type=SellOrderResult,
            # One workflow per order, ever: a running one is returned, a closed one is not redone.
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.ORDER_ID, request.order_id),
                    SearchAttributePair(sa.PROVIDER, request.provider),
                    SearchAttributePair(sa.STAGE, Stage.RECEIVED.value),
                    SearchAttributePair(sa.NEEDS_ATTENTION, False),
                ]
            ),
            static_summary=static_summary(request),
            static_details=static_details(request),
        )
    except WorkflowAlreadyStartedError:
        return client.get_workflow_handle(request.workflow_id, result_type=SellOrderResult)
