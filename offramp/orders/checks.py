"""The pre-send checks of a SELL order that need no chain access (design: "Checks before any nonce
is taken"). Pure functions: every failure is a Rejection with a specific reason; nothing is sent.

Balance and gas estimation need the chain and run in the payment preflight.
"""

from __future__ import annotations

from collections.abc import Mapping, Set

from offramp.chain.amounts import exact_base_units
from offramp.config import AssetConfig, ChainConfig
from offramp.kado.models import (
    ZERO_ADDRESS,
    DisbursementStatus,
    KadoOrder,
    OrderType,
    TransferStatus,
)
from offramp.orders.models import (
    CheckResult,
    PaymentPlan,
    Rejection,
    RejectReason,
    SellOrderInput,
)


def _reject(reason: RejectReason, detail: str) -> CheckResult:
    return CheckResult(rejection=Rejection(reason=reason, detail=detail))


def _same_address(a: str, b: str) -> bool:
    return a.lower() == b.lower()


def identity_rejection(order: KadoOrder, request: SellOrderInput) -> Rejection | None:
    """Is this a SELL order of the requester? Needs no configuration and no readiness, so the
    workflow asks it first and never waits for an order that can never be paid."""
    if order.id != request.order_id:
        return Rejection(
            reason=RejectReason.ORDER_MALFORMED,
            detail=f"the provider answered with order {order.id!r}, not {request.order_id!r}",
        )
    if order.order_type is not OrderType.SELL:
        shown = order.order_type.value if order.order_type else "missing"
        return Rejection(
            reason=RejectReason.NOT_A_SELL_ORDER, detail=f"orderType is {shown}, not sell"
        )
    if request.user_ref is not None and order.user_ref != request.user_ref:
        return Rejection(
            reason=RejectReason.USER_REF_MISMATCH,
            detail="the order's userRef differs from the user_ref given at start",
        )
    if request.wallet_address is not None and not (
        order.wallet_address and _same_address(order.wallet_address, request.wallet_address)
    ):
        return Rejection(
            reason=RejectReason.WALLET_MISMATCH,
            detail="the order's walletAddress differs from the wallet_address given at start",
        )
    return None


def order_state_rejection(order: KadoOrder) -> Rejection | None:
    """An order the provider already failed or expired can never be paid."""
    if order.is_expired:
        return Rejection(reason=RejectReason.ORDER_EXPIRED, detail="the provider expired the order")
    if order.is_failed:
        return Rejection(
            reason=RejectReason.ORDER_FAILED,
            detail=f"the provider reports transferStatus failed ({order.machine_status or '-'})",
        )
    return None


# transferStatus values that mean the provider already sees the crypto moving or arrived.
_FUNDED_TRANSFER_STATUSES = frozenset({TransferStatus.PENDING, TransferStatus.SETTLED})
# [seen] machineStatusField of a settled order.
_SETTLED_MACHINE_STATUS = "SETTLED"


def already_funded_rejection(order: KadoOrder) -> Rejection | None:
    """The provider says the deposit is in transit or received, though we have not paid (or the
    caller has checked that no payment of ours exists): the order can never be paid by us.
    `unknown` is not here: Kado uses it for a transfer it lost track of, and the wait handles it."""
    if order.transfer_status in _FUNDED_TRANSFER_STATUSES:
        assert order.transfer_status is not None
        seen = f"transferStatus is {order.transfer_status.value}"
    elif order.provider_disbursement_status is DisbursementStatus.COMPLETED:
        seen = "providerDisbursementStatus is completed"
    elif order.machine_status == _SETTLED_MACHINE_STATUS:
        seen = f"machineStatusField is {_SETTLED_MACHINE_STATUS}"
    else:
        return None
    return Rejection(
        reason=RejectReason.ORDER_ALREADY_FUNDED,
        detail=f"{seen}: the provider reports the crypto sent before we paid",
    )


def check_order(
    order: KadoOrder,
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

    chain_name = (order.blockchain or "").lower()
    chain = chains.get(chain_name)
    if chain is None:
        return _reject(
            RejectReason.UNSUPPORTED_CHAIN,
            f"blockchain {order.blockchain or 'missing'!r} is not a configured EVM chain",
        )
    if (
        order.crypto_currency is not None
        and order.crypto_currency.official_chain_id is not None
        and order.crypto_currency.official_chain_id != chain.chain_id
    ):
        return _reject(
            RejectReason.CHAIN_ID_MISMATCH,
            f"cryptoCurrency.officialChainId {order.crypto_currency.official_chain_id} is not "
            f"{chain_name}'s chain id {chain.chain_id}",
        )

    asset_result = _check_asset(order, chain, chain_name)
    if isinstance(asset_result, CheckResult):
        return asset_result
    asset = asset_result

    amount = order.amount
    if amount is None:
        return _reject(RejectReason.AMOUNT_INVALID, "payAmount.amount is missing")
    if amount <= 0:
        return _reject(RejectReason.AMOUNT_INVALID, f"payAmount.amount {amount} is not positive")
    unit = (order.pay_amount.unit or "").strip().upper() if order.pay_amount else ""
    if unit and unit != asset.symbol.upper():
        return _reject(
            RejectReason.AMOUNT_UNIT_MISMATCH,
            f"payAmount.unit {unit!r} is not the asset paid ({asset.symbol})",
        )
    base_units = exact_base_units(amount, asset.decimals)
    if base_units is None:
        return _reject(
            RejectReason.AMOUNT_TOO_PRECISE,
            f"payAmount.amount {amount} has more than {asset.decimals} decimals ({asset.symbol})",
        )
    if amount > asset.per_order_cap:
        return _reject(
            RejectReason.OVER_ORDER_CAP,
            f"payAmount.amount {amount} {asset.symbol} is over the per-order cap "
            f"{asset.per_order_cap}",
        )
    if amount > request.max_amount:
        return _reject(
            RejectReason.OVER_MAX_AMOUNT,
            f"payAmount.amount {amount} {asset.symbol} is over max_amount {request.max_amount}",
        )

    deposit = order.deposit_address
    if deposit is None:
        return _reject(RejectReason.DEPOSIT_ADDRESS_INVALID, "depositAddress is missing")
    if _same_address(deposit, ZERO_ADDRESS):
        return _reject(RejectReason.DEPOSIT_ADDRESS_INVALID, "depositAddress is the zero address")
    if deposit.lower() in own_wallets or (
        asset.address is not None and _same_address(deposit, asset.address)
    ):
        return _reject(
            RejectReason.DEPOSIT_ADDRESS_OURS,
            "depositAddress is one of our own wallets or the token contract",
        )
    if not order.is_ready_for_deposit:
        return _reject(
            RejectReason.ORDER_NOT_READY,
            "the order is not ready for the deposit: " + ", ".join(order.missing_for_deposit),
        )

    return CheckResult(
        plan=PaymentPlan(
            order_id=order.id,
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
        )
    )


def _order_symbol(order: KadoOrder) -> str | CheckResult:
    """The one asset symbol the order names; a rejection when its fields name different ones."""
    named = {
        field: value
        for field, value in (
            ("asset", order.asset),
            ("assetSymbol", order.asset_symbol),
            (
                "cryptoCurrency.symbol",
                order.crypto_currency.symbol if order.crypto_currency else None,
            ),
        )
        if value
    }
    if len(set(named.values())) > 1:
        shown = ", ".join(f"{field} {value!r}" for field, value in named.items())
        return _reject(
            RejectReason.ASSET_SYMBOL_MISMATCH, f"the order names different assets: {shown}"
        )
    return next(iter(named.values()), "")


def _check_asset(
    order: KadoOrder, chain: ChainConfig, chain_name: str
) -> AssetConfig | CheckResult:
    symbol = _order_symbol(order)
    if isinstance(symbol, CheckResult):
        return symbol
    asset = chain.assets.get(symbol)
    if asset is None:
        return _reject(
            RejectReason.ASSET_NOT_ALLOWED,
            f"asset {symbol or 'missing'!r} is not allow-listed on {chain_name}",
        )
    currency = order.crypto_currency
    if (
        currency is not None
        and currency.is_native is not None
        and currency.is_native != asset.is_native
    ):
        kind = "the native coin" if asset.is_native else "a token"
        return _reject(
            RejectReason.NATIVE_FLAG_MISMATCH,
            f"cryptoCurrency.isNative is {str(currency.is_native).lower()} but {symbol} is "
            f"{kind} on {chain_name}",
        )
    if asset.is_native:
        if currency is not None and currency.address:
            return _reject(
                RejectReason.TOKEN_ADDRESS_MISMATCH,
                f"{symbol} is native on {chain_name} but the order names a token contract",
            )
    else:
        assert asset.address is not None
        if currency is None or currency.address is None:
            return _reject(
                RejectReason.TOKEN_ADDRESS_MISMATCH,
                f"the order gives no cryptoCurrency.address for {symbol}",
            )
        if not _same_address(currency.address, asset.address):
            return _reject(
                RejectReason.TOKEN_ADDRESS_MISMATCH,
                f"cryptoCurrency.address {currency.address} is not the configured {symbol} "
                f"contract {asset.address}",
            )
    if (
        currency is not None
        and currency.decimals is not None
        and currency.decimals != asset.decimals
    ):
        return _reject(
            RejectReason.TOKEN_DECIMALS_MISMATCH,
            f"cryptoCurrency.decimals {currency.decimals} is not the configured {asset.decimals}",
        )
    return asset
