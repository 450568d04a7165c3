"""`offramp status`: an order's state from a worker when one answers quickly, otherwise from the
server's own record of the workflow (describe: status, search attributes, static summary and
details, pending activities; for a closed run its result or failure from the history). The
record needs no worker, so a closed order always shows, and a running one shows its stage while
the workers are down. The view says which it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from offramp import search_attributes as sa
from offramp.cli.app import CliError
from offramp.cli.ids import OrderRef
from offramp.orders.models import SellOrderResult, SellOrderState
from offramp.orders.names import STATE_QUERY
from offramp.orders.render import render_state

# How long a worker may take to answer the state query before the record is shown instead.
QUERY_TIMEOUT = timedelta(seconds=3)
# A worker long-polls for about a minute: one seen polling within this long is probably alive.
_POLLER_FRESH = timedelta(seconds=90)

SOURCE_WORKER = "worker"
SOURCE_RECORD = "server record"


@dataclass
class StatusView:
    order_id: str
    workflow_id: str
    run_id: str
    status: str  # RUNNING, COMPLETED, FAILED, ...
    source: str  # SOURCE_WORKER or SOURCE_RECORD
    source_note: str  # why the record was used, or "state query"
    start_time: datetime
    close_time: datetime | None
    search_attributes: dict[str, Any]
    summary: str | None
    details: str | None
    state: SellOrderState | None = None
    result: SellOrderResult | None = None
    failure: str | None = None
    pending_activities: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "workflow_id": self.workflow_id,
            "run_id": self.run_id,
            "status": self.status,
            "source": self.source,
            "source_note": self.source_note,
            "start_time": self.start_time.isoformat(),
            "close_time": self.close_time.isoformat() if self.close_time else None,
            "search_attributes": self.search_attributes,
            "summary": self.summary,
            "details": self.details,
            "state": self.state.model_dump(mode="json") if self.state else None,
            "result": self.result.model_dump(mode="json") if self.result else None,
            "failure": self.failure,
            "pending_activities": self.pending_activities,
        }


async def order_status(client: Client, ref: OrderRef, *, query: bool = True) -> StatusView:
    handle = client.get_workflow_handle(ref.workflow_id)
    try:
        desc = await handle.describe()
    except RPCError as exc:
        raise CliError(f"order {ref.order_id}: {exc.message}") from None
    view = StatusView(
        order_id=ref.order_id,
        workflow_id=desc.id,
        run_id=desc.run_id,
        status=desc.status.name if desc.status else "UNKNOWN",
        source=SOURCE_RECORD,
        source_note="asked not to query a worker",
        start_time=desc.start_time,
        close_time=desc.close_time,
        search_attributes={
            pair.key.name: _json_value(pair.value) for pair in desc.typed_search_attributes
        },
        summary=await desc.static_summary(),
        details=await desc.static_details(),
        pending_activities=_pending(desc),
    )
    if query:
        view.state, note = await _state_if_quick(client, handle, desc)
        view.source, view.source_note = (
            (SOURCE_WORKER, note) if view.state else (SOURCE_RECORD, note)
        )
    if desc.status is not WorkflowExecutionStatus.RUNNING:
        view.result, view.failure = await _outcome(client, desc)
    return view


async def _state_if_quick(
    client: Client, handle: WorkflowHandle[Any, Any], desc: WorkflowExecutionDescription
) -> tuple[SellOrderState | None, str]:
    """The state query's answer, or None and why not (no worker, or none answered in time)."""
    if not await _has_live_poller(client, desc.task_queue):
        return None, f"no worker is polling task queue {desc.task_queue}"
    try:
        state: SellOrderState = await handle.query(
            STATE_QUERY, result_type=SellOrderState, rpc_timeout=QUERY_TIMEOUT
        )
    except RPCError as exc:
        if exc.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            return None, f"no worker answered the state query within {QUERY_TIMEOUT.seconds} s"
        return None, f"the state query failed: {exc.message}"
    except WorkflowQueryFailedError as exc:
        return None, f"the state query failed: {exc}"
    return state, "state query answered by a worker"


async def _has_live_poller(client: Client, task_queue: str) -> bool:
    """Does a worker poll the queue? Saves a query that no one could answer (and its 3 s)."""
    try:
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
    except RPCError:
        return True  # e.g. an API key without that permission: let the query's timeout decide
    now = datetime.now(UTC)
    return any(
        now - poller.last_access_time.ToDatetime(tzinfo=UTC) < _POLLER_FRESH
        for poller in response.pollers
    )


async def _outcome(
    client: Client, desc: WorkflowExecutionDescription
) -> tuple[SellOrderResult | None, str | None]:
    """A closed run's result, or its failure, from its history (no worker needed)."""
    handle = client.get_workflow_handle(desc.id, run_id=desc.run_id, result_type=SellOrderResult)
    try:
        result: SellOrderResult = await handle.result(follow_runs=False)
    except WorkflowFailureError as exc:
        cause = exc.cause
        return None, f"{desc.status.name if desc.status else 'closed'}: " + str(
            getattr(cause, "message", None) or cause
        )
    return result, None


def _pending(desc: WorkflowExecutionDescription) -> list[str]:
    lines = []
    for activity in desc.raw_description.pending_activities:
        line = f"{activity.activity_type.name} (attempt {activity.attempt})"
        if activity.HasField("last_failure") and activity.last_failure.message:
            line += f": last failure {activity.last_failure.message}"
        lines.append(line)
    return lines


def _json_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return value


def render_view(view: StatusView) -> str:
    """The state page when a worker answered; otherwise the record's view of the same order."""
    closed = f", closed {view.close_time:%Y-%m-%d %H:%M:%S}" if view.close_time else ""
    header = [
        f"source       {view.source} ({view.source_note})",
        f"workflow     {view.workflow_id} run {view.run_id} {view.status}{closed}",
    ]
    if view.state is not None:
        return "\n".join([*header, render_state(view.state)])
    return "\n".join([*header, *_record_lines(view)])


def _record_lines(view: StatusView) -> list[str]:
    attrs = view.search_attributes
    result = view.result
    stage = result.outcome.value if result else str(attrs.get(sa.STAGE.name, "-"))
    attention = result.needs_attention if result else bool(attrs.get(sa.NEEDS_ATTENTION.name))
    lines = [
        f"order        {view.order_id}",
        f"stage        {stage}" + ("   ** NEEDS ATTENTION" if attention else ""),
    ]
    if result is not None:
        if result.reason:
            lines.append(f"reason       {result.reason}")
        if result.reject_reason:
            lines.append(f"rejected     {result.reject_reason.value}")
        if result.amount is not None:
            lines.append(
                f"payment      {result.amount} {result.asset} on {result.chain} to "
                f"{result.deposit_address}"
            )
        for tx_hash in result.tx_hashes:
            lines.append(f"tx           {tx_hash}")
        if result.confirmed_tx_hash:
            lines.append(f"confirmed    {result.confirmed_tx_hash} in block {result.block_number}")
    if view.failure:
        lines.append(f"failure      {view.failure}")
    # The engine's own attributes; Temporal's (BuildIds, TemporalChangeVersion) are in --json.
    ours = {key.name for key in sa.ALL}
    shown = ", ".join(f"{k}={v}" for k, v in sorted(attrs.items()) if k in ours)
    lines.append(f"attributes   {shown or '-'}")
    for activity in view.pending_activities:
        lines.append(f"pending      {activity}")
    lines.append(f"started      {view.start_time:%Y-%m-%d %H:%M:%S}")
    if view.summary:
        lines.append(f"summary      {view.summary}")
    lines.append("(the timeline and provider statuses need a worker: the `state` query)")
    return lines
