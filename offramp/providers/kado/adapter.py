"""Kado as an engine adapter: its names, capabilities, error types and the pure mapping of a
`KadoOrder` to the engine's `OrderSnapshot`. Imports no I/O library (the client is imported
lazily by `client_from_settings`)."""

from __future__ import annotations

from typing import Any, Final

from offramp.providers.base import ActivityNames, Capability, ErrorKind, ProviderClient
from offramp.providers.kado.errors import ERROR_TYPES
from offramp.providers.kado.models import (
    FETCH_ORDER_ACTIVITY,
    WAIT_FOR_ORDER_CHANGE_ACTIVITY,
    DisbursementStatus,
    FetchOrderInput,
    KadoOrder,
    OrderType,
    TransferStatus,
    WaitForOrderChangeInput,
)
from offramp.providers.snapshot import (
    FieldLabels,
    Identity,
    OrderKind,
    OrderSnapshot,
    PaymentInstruction,
)

NAME: Final = "kado"

LABELS: Final = FieldLabels(
    kind="orderType",
    user_ref="userRef",
    wallet_address="walletAddress",
    chain="blockchain",
    chain_id="cryptoCurrency.officialChainId",
    amount="payAmount.amount",
    amount_unit="payAmount.unit",
    deposit_address="depositAddress",
    token_address="cryptoCurrency.address",
    decimals="cryptoCurrency.decimals",
    is_native="cryptoCurrency.isNative",
    status="transferStatus",
    status_code="machineStatusField",
)

# transferStatus values that mean the provider already sees the crypto moving or arrived.
_FUNDED_TRANSFER_STATUSES = frozenset({TransferStatus.PENDING, TransferStatus.SETTLED})
# [seen] machineStatusField of a settled order.
_SETTLED_MACHINE_STATUS = "SETTLED"

_KINDS = {OrderType.SELL: OrderKind.SELL, OrderType.BUY: OrderKind.BUY}


def funded_evidence(order: KadoOrder) -> str | None:
    """What says the deposit is in transit or received. `unknown` is not here: Kado uses it for a
    transfer it lost track of, and the wait handles it."""
    if order.transfer_status in _FUNDED_TRANSFER_STATUSES:
        assert order.transfer_status is not None
        return f"transferStatus is {order.transfer_status.value}"
    if order.provider_disbursement_status is DisbursementStatus.COMPLETED:
        return "providerDisbursementStatus is completed"
    if order.machine_status == _SETTLED_MACHINE_STATUS:
        return f"machineStatusField is {_SETTLED_MACHINE_STATUS}"
    return None


def snapshot(order: KadoOrder) -> OrderSnapshot:
    """The engine's view of a Kado order (pure)."""
    currency = order.crypto_currency
    asset_names = {
        label: value
        for label, value in (
            ("asset", order.asset),
            ("assetSymbol", order.asset_symbol),
            ("cryptoCurrency.symbol", currency.symbol if currency else None),
        )
        if value
    }
    return OrderSnapshot(
        provider=NAME,
        identity=Identity(
            order_id=order.id,
            kind=_KINDS.get(order.order_type, OrderKind.UNKNOWN) if order.order_type else None,
            user_ref=order.user_ref,
            wallet_address=order.wallet_address,
        ),
        instruction=PaymentInstruction(
            chain=order.blockchain,
            chain_id=currency.official_chain_id if currency else None,
            asset_names=asset_names,
            asset=order.asset_symbol or order.asset,
            token_address=currency.address if currency else None,
            decimals=currency.decimals if currency else None,
            is_native=currency.is_native if currency else None,
            amount=order.amount,
            amount_unit=order.pay_amount.unit if order.pay_amount else None,
            deposit_address=order.deposit_address,
            memo=order.manual_deposit_memo,
            deadline=order.expires_at,
        ),
        status=order.transfer_status.value if order.transfer_status else None,
        status_code=order.machine_status,
        status_text=order.human_status,
        ready=order.is_ready_for_deposit,
        settled=order.is_settled,
        failed=order.is_failed,
        expired=order.is_expired,
        status_unknown=order.transfer_status is TransferStatus.UNKNOWN,
        missing_for_deposit=order.missing_for_deposit,
        funded_evidence=funded_evidence(order),
        labels=LABELS,
    )


class KadoAdapter:
    name: Final = NAME
    capabilities: Final = frozenset({Capability.PAYS_DEPOSIT, Capability.WEBHOOKS})
    activities: Final = ActivityNames(
        fetch_order=FETCH_ORDER_ACTIVITY, wait_for_order_change=WAIT_FOR_ORDER_CHANGE_ACTIVITY
    )
    order_model: Final = KadoOrder
    fetch_input_model: Final = FetchOrderInput
    wait_input_model: Final = WaitForOrderChangeInput
    error_types: Final = ERROR_TYPES
    title: Final = "Kado"
    labels: Final = LABELS

    def snapshot(self, order: Any) -> OrderSnapshot:
        return snapshot(order if isinstance(order, KadoOrder) else KadoOrder.model_validate(order))

    def fetch_input(self, order_id: str) -> FetchOrderInput:
        return FetchOrderInput(order_id=order_id)

    def wait_input(
        self,
        *,
        order_id: str,
        await_ready: bool,
        last_status: str | None,
        retry_malformed: bool,
        initial_interval_seconds: float,
        max_interval_seconds: float,
        attempt_seconds: float = 0.0,
        until_final: bool = False,
    ) -> WaitForOrderChangeInput:
        return WaitForOrderChangeInput(
            order_id=order_id,
            await_ready=await_ready,
            last_transfer_status=TransferStatus(last_status) if last_status else None,
            retry_malformed=retry_malformed,
            initial_interval_seconds=initial_interval_seconds,
            max_interval_seconds=max_interval_seconds,
            attempt_seconds=attempt_seconds,
            until_final=until_final,
        )

    def client_from_settings(self, settings: Any) -> ProviderClient:
        from offramp.providers.kado.client import KadoClient  # httpx: never in workflows

        return KadoClient.from_settings(settings)


ADAPTER: Final = KadoAdapter()
# Exported for type checks against the protocol.
__all__ = ["ADAPTER", "LABELS", "NAME", "ErrorKind", "KadoAdapter", "funded_evidence", "snapshot"]
