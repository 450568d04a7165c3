"""The pre-send checks of a SELL order that need no chain access (design: "Checks before any nonce
is taken"). Pure functions on the provider-neutral `OrderSnapshot`: every failure is a Rejection
with a specific reason, naming the provider's own field (`snapshot.labels`); nothing is sent.

Balance and gas estimation need the chain and run in the payment preflight.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from offramp.chain.addresses import ZERO_ADDRESS
from offramp.chain.amounts import exact_base_units
from offramp.config import AssetConfig, ChainConfig, find_asset
from offramp.orders.models import (
    CheckResult,
    PaymentPlan,
    Rejection,
    RejectReason,
    SellOrderInput,
)
from offramp.providers.snapshot import OrderKind, OrderSnapshot


def _reject(reason: RejectReason, detail: str) -> CheckResult:
    return CheckResult(rejection=Rejection(reason=reason, detail=detail))


def _same_address(a: str, b: str) -> bool:
    return a.lower() == b.lower()


def identity_rejection(order: OrderSnapshot, request: SellOrderInput) -> Rejection | None:
    """Is this a SELL order of the requester? Needs no configuration and no readiness, so the
    workflow asks it first and never waits for an order that can never be paid."""
    who, labels = order.identity, order.labels
    if who.order_id != request.order_id:
        return Rejection(
            reason=RejectReason.ORDER_MALFORMED,
            detail=f"the provider answered with order {who.order_id!r}, not {request.order_id!r}",
        )
    if who.kind is not OrderKind.SELL:
        shown = who.kind.value if who.kind else "missing"
        return Rejection(
            reason=RejectReason.NOT_A_SELL_ORDER, detail=f"{labels.kind} is {shown}, not sell"
        )
    if request.user_ref is not None and who.user_ref != request.user_ref:
        return Rejection(
            reason=RejectReason.USER_REF_MISMATCH,
            detail=f"the order's {labels.user_ref} differs from the user_ref given at start",
        )
    if request.wallet_address is not None and not (
        who.wallet_address and _same_address(who.wallet_address, request.wallet_address)
    ):
        return Rejection(
            reason=RejectReason.WALLET_MISMATCH,
            detail=(
                f"the order's {labels.wallet_address} differs from the wallet_address given "
                "at start"
            ),
        )
    return None


def order_state_rejection(order: OrderSnapshot) -> Rejection | None:
    """An order the provider already failed or expired can never be paid."""
    if order.expired:
        return Rejection(reason=RejectReason.ORDER_EXPIRED, detail="the provider expired the order")
    if order.failed:
        return Rejection(
            reason=RejectReason.ORDER_FAILED,
            detail=(
                f"the provider reports {order.labels.status} failed ({order.status_code or '-'})"
            ),
        )
    return None


def already_funded_rejection(order: OrderSnapshot) -> Rejection | None:
    """The provider says the deposit is in transit or received, though we have not paid (or the
    caller has checked that no payment of ours exists): the order can never be paid by us."""
    if order.funded_evidence is None:
        return None
    return Rejection(
        reason=RejectReason.ORDER_ALREADY_FUNDED,
        detail=f"{order.funded_evidence}: the provider reports the crypto sent before we paid",
    )


def check_order(
    order: OrderSnapshot,
    request: SellOrderInput,
    chains: Mapping[str, ChainConfig],
    own_wallets: Set[str],
) -> CheckResult:
    """Every check on the provider's order against the request and our configuration.

    `own_wallets`: addresses we control (lower-case); never a deposit address.
    """
    if (identity := identity_rejection(order, request)) is not None:
        return CheckResult(rejection=identity)
    if (state := order_state_rejection(order)) is not None:
        return CheckResult(rejection=state)
    if (funded := already_funded_rejection(order)) is not None:
        return CheckResult(rejection=funded)

    pay, labels = order.instruction, order.labels
    chain_name = (pay.chain or "").lower()
    chain = chains.get(chain_name)
    if chain is None:
        return _reject(
            RejectReason.UNSUPPORTED_CHAIN,
            f"{labels.chain} {pay.chain or 'missing'!r} is not a configured EVM chain",
        )
    if pay.chain_id is not None and pay.chain_id != chain.chain_id:
        return _reject(
            RejectReason.CHAIN_ID_MISMATCH,
            f"{labels.chain_id} {pay.chain_id} is not {chain_name}'s chain id {chain.chain_id}",
        )

    asset_result = _check_asset(order, chain, chain_name)
    if isinstance(asset_result, CheckResult):
        return asset_result
    asset = asset_result

    amount_result = _check_amount(order, asset, request)
    if isinstance(amount_result, CheckResult):
        return amount_result
    amount, base_units = amount_result

    deposit = pay.deposit_address
    if deposit is None:
        return _reject(RejectReason.DEPOSIT_ADDRESS_INVALID, f"{labels.deposit_address} is missing")
    if _same_address(deposit, ZERO_ADDRESS):
        return _reject(
            RejectReason.DEPOSIT_ADDRESS_INVALID, f"{labels.deposit_address} is the zero address"
        )
    if deposit.lower() in own_wallets or (
        asset.address is not None and _same_address(deposit, asset.address)
    ):
        return _reject(
            RejectReason.DEPOSIT_ADDRESS_OURS,
            f"{labels.deposit_address} is one of our own wallets or the token contract",
        )
    if not order.ready:
        return _reject(
            RejectReason.ORDER_NOT_READY,
            "the order is not ready for the deposit: " + ", ".join(order.missing_for_deposit),
        )

    return CheckResult(
        plan=PaymentPlan(
            order_id=order.order_id,
            chain=chain_name,
            chain_id=chain.chain_id,
            asset=asset.symbol,
            token_address=asset.address,
            decimals=asset.decimals,
            amount=amount,
            amount_base_units=base_units,
            deposit_address=deposit,
            # A pool's wallet is chosen by the payment's preflight (the order learns it from the
            # payment's progress); only a pool of one is known here.
            hot_wallet=chain.hot_wallet if len(chain.hot_wallets) == 1 else "",
            needs_review=asset.review_threshold is not None and amount >= asset.review_threshold,
            pay_before=pay_before(pay.deadline),
        )
    )


# A transfer signed this close to the provider's deadline may be mined after it.
DEADLINE_MARGIN = timedelta(seconds=60)


def pay_before(deadline: str | None) -> datetime | None:
    """The provider's deadline (ISO 8601 text) less `DEADLINE_MARGIN`; None if it gives none or
    one we cannot read (then only the provider's own expiry status stops a payment)."""
    if not deadline:
        return None
    try:
        at = datetime.fromisoformat(deadline.replace("Z", "+00:00"))
    except ValueError:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at - DEADLINE_MARGIN


def _check_amount(
    order: OrderSnapshot, asset: AssetConfig, request: SellOrderInput
) -> tuple[Decimal, int] | CheckResult:
    """The exact amount and its base units; a rejection when it cannot be paid as given."""
    amount, label = order.instruction.amount, order.labels.amount
    if amount is None:
        return _reject(RejectReason.AMOUNT_INVALID, f"{label} is missing")
    if amount <= 0:
        return _reject(RejectReason.AMOUNT_INVALID, f"{label} {amount} is not positive")
    unit = (order.instruction.amount_unit or "").strip().upper()
    if unit and unit != asset.symbol.upper():
        return _reject(
            RejectReason.AMOUNT_UNIT_MISMATCH,
            f"{order.labels.amount_unit} {unit!r} is not the asset paid ({asset.symbol})",
        )
    base_units = exact_base_units(amount, asset.decimals)
    if base_units is None:
        return _reject(
            RejectReason.AMOUNT_TOO_PRECISE,
            f"{label} {amount} has more than {asset.decimals} decimals ({asset.symbol})",
        )
    if asset.over_order_cap(amount):
        return _reject(
            RejectReason.OVER_ORDER_CAP,
            f"{label} {amount} {asset.symbol} is over the per-order cap {asset.per_order_cap}",
        )
    if amount > request.max_amount:
        return _reject(
            RejectReason.OVER_MAX_AMOUNT,
            f"{label} {amount} {asset.symbol} is over max_amount {request.max_amount}",
        )
    return amount, base_units


def _order_symbol(order: OrderSnapshot) -> str | CheckResult:
    """The one asset symbol the order names; a rejection when its fields name different ones."""
    named = order.instruction.asset_names
    if len(set(named.values())) > 1:
        shown = ", ".join(f"{field} {value!r}" for field, value in named.items())
        return _reject(
            RejectReason.ASSET_SYMBOL_MISMATCH, f"the order names different assets: {shown}"
        )
    return next(iter(named.values()), "")


def _check_asset(
    order: OrderSnapshot, chain: ChainConfig, chain_name: str
) -> AssetConfig | CheckResult:
    symbol = _order_symbol(order)
    if isinstance(symbol, CheckResult):
        return symbol
    asset = find_asset(chain.assets, symbol)
    if asset is None:
        return _reject(
            RejectReason.ASSET_NOT_ALLOWED,
            f"asset {symbol or 'missing'!r} is not allow-listed on {chain_name}",
        )
    pay, labels = order.instruction, order.labels
    if pay.is_native is not None and pay.is_native != asset.is_native:
        kind = "the native coin" if asset.is_native else "a token"
        return _reject(
            RejectReason.NATIVE_FLAG_MISMATCH,
            f"{labels.is_native} is {str(pay.is_native).lower()} but {symbol} is "
            f"{kind} on {chain_name}",
        )
    if asset.is_native:
        if pay.token_address:
            return _reject(
                RejectReason.TOKEN_ADDRESS_MISMATCH,
                f"{symbol} is native on {chain_name} but the order names a token contract",
            )
    else:
        assert asset.address is not None
        if pay.token_address is None:
            return _reject(
                RejectReason.TOKEN_ADDRESS_MISMATCH,
                f"the order gives no {labels.token_address} for {symbol}",
            )
        if not _same_address(pay.token_address, asset.address):
            return _reject(
                RejectReason.TOKEN_ADDRESS_MISMATCH,
                f"{labels.token_address} {pay.token_address} is not the configured {symbol} "
                f"contract {asset.address}",
            )
    if pay.decimals is not None and pay.decimals != asset.decimals:
        return _reject(
            RejectReason.TOKEN_DECIMALS_MISMATCH,
            f"{labels.decimals} {pay.decimals} is not the configured {asset.decimals}",
        )
    return asset
