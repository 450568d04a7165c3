"""The order's live details (markdown, shown in the Web UI): a pure rendering of its state."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from offramp.orders.models import SellOrderState


def details_markdown(s: SellOrderState) -> str:
    lines = [
        f"**{s.stage.value}**" + (" · ⚠ needs attention" if s.needs_attention else ""),
        "",
        f"- order `{s.order_id}` · provider status `{s.order.transfer_status or '-'}`",
    ]
    if s.plan is not None:
        lines.append(
            f"- pay **{s.plan.amount} {s.plan.asset}** on {s.plan.chain} to "
            f"`{s.plan.deposit_address}`"
            + (f" from `{s.plan.hot_wallet}`" if s.plan.hot_wallet else "")
        )
    if s.tx_hashes:
        lines.append("- tx: " + ", ".join(f"`{h}`" for h in s.tx_hashes))
    if s.attention_reason:
        lines.append(f"- attention: {s.attention_reason}")
    if s.timeline and s.timeline[-1].note:
        lines.append(f"- last: {s.timeline[-1].note}")
    return "\n".join(lines)
