"""Human views of an order: the CLI's status page and list queries."""

from __future__ import annotations

from offramp.orders.models import SellOrderState


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def list_query(
    *,
    stage: str | None = None,
    needs_attention: bool = False,
    chain: str | None = None,
    asset: str | None = None,
) -> str:
    """A visibility query over sell orders (the Web UI's filter box takes the same text)."""
    clauses = ["WorkflowType = 'SellOrderWorkflow'"]
    if stage:
        clauses.append(f"Stage = {_quote(stage.upper())}")
    if needs_attention:
        clauses.append("NeedsAttention = true")
    if chain:
        clauses.append(f"Chain = {_quote(chain.lower())}")
    if asset:
        clauses.append(f"Asset = {_quote(asset.upper())}")
    return " AND ".join(clauses)


def render_state(state: SellOrderState) -> str:
    lines = [
        f"order        {state.order_id}",
        f"stage        {state.stage.value}"
        + (
            "   ** NEEDS ATTENTION: " + (state.attention_reason or "")
            if state.needs_attention
            else ""
        ),
    ]
    if state.reason:
        lines.append(f"reason       {state.reason}")
    o = state.order
    lines.append(
        f"provider     transferStatus={o.transfer_status or '-'} machine={o.machine_status or '-'}"
        f" ({o.human_status or '-'})"
    )
    if state.plan is not None:
        p = state.plan
        lines.append(f"payment      {p.amount} {p.asset} on {p.chain} to {p.deposit_address}")
        lines.append(f"hot wallet   {p.hot_wallet or '(chosen when paying)'}")
    if state.approved_by:
        lines.append(f"approved by  {state.approved_by}")
    for attempt in state.tx_attempts:
        fees = ""
        if attempt.max_fee_per_gas is not None:
            fees = f" maxFee={attempt.max_fee_per_gas} tip={attempt.max_priority_fee_per_gas}"
        lines.append(f"tx           {attempt.tx_hash} nonce={attempt.nonce} {attempt.status}{fees}")
    if state.confirmed_tx_hash:
        lines.append(f"confirmed    {state.confirmed_tx_hash} in block {state.block_number}")
    if state.provider_statuses:
        lines.append("statuses     " + " → ".join(state.provider_statuses))
    lines.append("timeline")
    for entry in state.timeline:
        note = f"  {entry.note}" if entry.note else ""
        lines.append(f"  {entry.at:%Y-%m-%d %H:%M:%S} {entry.stage.value}{note}")
    return "\n".join(lines)
