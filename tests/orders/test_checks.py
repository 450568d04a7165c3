"""The pre-send checks: each failure has its own reason; a good order yields an exact plan."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from offramp.chain.amounts import exact_base_units as to_base_units
from offramp.config import AssetConfig, ChainConfig
from offramp.devstack.chain import HOT_WALLET, local_chain_config
from offramp.orders.checks import check_order
from offramp.orders.models import RejectReason, SellOrderInput
from offramp.providers.kado.adapter import snapshot
from offramp.providers.kado.models import loads_exact, order_from_data

TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
DEPOSIT = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
USER_WALLET = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"


def chains(review_threshold: Decimal | None = None) -> dict[str, ChainConfig]:
    config = local_chain_config("http://127.0.0.1:1", TOKEN)
    usdc = config.assets["USDC"].model_copy(update={"review_threshold": review_threshold})
    return {"anvil": config.model_copy(update={"assets": {**config.assets, "USDC": usdc}})}


def order_json(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "6408fd3e24c501549aaac9fd",
        "orderType": "sell",
        "blockchain": "anvil",
        "asset": "USDC",
        "assetSymbol": "USDC",
        "userRef": "user-42",
        "walletAddress": USER_WALLET,
        "depositAddress": DEPOSIT,
        "payAmount": {"amount": Decimal("100.25"), "unit": "USDC"},
        "cryptoCurrency": {"symbol": "USDC", "address": TOKEN, "isNative": False, "decimals": 6},
        "transferStatus": "uninitiated",
        "providerDisbursementStatus": "pending",
        "machineStatusField": "PENDING_PAYMENT",
    }
    data.update(overrides)
    return data


REQUEST = SellOrderInput(
    order_id="6408fd3e24c501549aaac9fd",
    user_ref="user-42",
    wallet_address=USER_WALLET,
    max_amount=Decimal("500"),
)


def check(data: dict[str, Any], request: SellOrderInput = REQUEST, **kw: Any) -> Any:
    return check_order(
        snapshot(order_from_data(data)), request, kw.get("chains", chains()), {HOT_WALLET.lower()}
    )


def test_good_token_order_gives_an_exact_plan() -> None:
    result = check(order_json())
    assert result.rejection is None and result.plan is not None
    assert result.plan.amount == Decimal("100.25")
    assert result.plan.amount_base_units == 100_250_000
    assert result.plan.token_address == TOKEN
    assert result.plan.deposit_address == DEPOSIT
    assert not result.plan.needs_review


def test_native_order() -> None:
    data = order_json(
        asset="ETH",
        assetSymbol="ETH",
        payAmount={"amount": Decimal("0.000000000000000001"), "unit": "ETH"},
        cryptoCurrency={"symbol": "ETH", "isNative": True, "decimals": 18},
    )
    result = check(data)
    assert result.plan is not None
    assert result.plan.amount_base_units == 1
    assert result.plan.token_address is None


NATIVE = {
    "asset": "ETH",
    "assetSymbol": "ETH",
    "payAmount": {"amount": Decimal("0.5"), "unit": "ETH"},
    "cryptoCurrency": {"symbol": "ETH", "isNative": True, "decimals": 18},
}


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        (
            {"cryptoCurrency": {"symbol": "ETH", "isNative": False}},
            RejectReason.NATIVE_FLAG_MISMATCH,
        ),
        (
            {"cryptoCurrency": {"symbol": "ETH", "isNative": True, "address": TOKEN}},
            RejectReason.TOKEN_ADDRESS_MISMATCH,
        ),
        (
            {"payAmount": {"amount": Decimal("0.5"), "unit": "USDC"}},
            RejectReason.AMOUNT_UNIT_MISMATCH,
        ),
        ({"asset": "USDC"}, RejectReason.ASSET_SYMBOL_MISMATCH),
    ],
)
def test_inconsistent_native_order_is_rejected(
    overrides: dict[str, Any], reason: RejectReason
) -> None:
    result = check(order_json(**{**NATIVE, **overrides}))
    assert result.plan is None and result.rejection is not None
    assert result.rejection.reason is reason, result.rejection


def test_missing_unit_and_native_flag_are_not_disagreements() -> None:
    data = order_json(payAmount={"amount": Decimal("1")}, cryptoCurrency={"address": TOKEN})
    assert check(data).plan is not None
    native = order_json(**{**NATIVE, "cryptoCurrency": {"symbol": "ETH"}})
    assert check(native).plan is not None


def test_review_threshold_marks_the_plan() -> None:
    result = check(order_json(), chains=chains(review_threshold=Decimal("100")))
    assert result.plan is not None and result.plan.needs_review


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"id": "6408fd3e24c501549aaac9fe"}, RejectReason.ORDER_MALFORMED),
        ({"orderType": "buy"}, RejectReason.NOT_A_SELL_ORDER),
        ({"orderType": "mystery"}, RejectReason.NOT_A_SELL_ORDER),
        ({"userRef": "someone-else"}, RejectReason.USER_REF_MISMATCH),
        ({"walletAddress": DEPOSIT}, RejectReason.WALLET_MISMATCH),
        ({"blockchain": "solana"}, RejectReason.UNSUPPORTED_CHAIN),
        ({"blockchain": None}, RejectReason.UNSUPPORTED_CHAIN),
        (
            {"cryptoCurrency": {"symbol": "USDC", "address": TOKEN, "officialChainId": 1}},
            RejectReason.CHAIN_ID_MISMATCH,
        ),
        (
            {"asset": "DOGE", "assetSymbol": "DOGE", "cryptoCurrency": None},
            RejectReason.ASSET_NOT_ALLOWED,
        ),
        (
            {"cryptoCurrency": {"symbol": "USDC", "address": DEPOSIT, "decimals": 6}},
            RejectReason.TOKEN_ADDRESS_MISMATCH,
        ),
        (
            {"cryptoCurrency": {"symbol": "USDC", "decimals": 6}},
            RejectReason.TOKEN_ADDRESS_MISMATCH,
        ),
        (
            {"cryptoCurrency": {"symbol": "USDC", "address": TOKEN, "decimals": 18}},
            RejectReason.TOKEN_DECIMALS_MISMATCH,
        ),
        ({"payAmount": {"amount": Decimal("1.0000001")}}, RejectReason.AMOUNT_TOO_PRECISE),
        ({"payAmount": {"amount": Decimal("10000.000001")}}, RejectReason.OVER_ORDER_CAP),
        ({"payAmount": {"amount": Decimal("500.000001")}}, RejectReason.OVER_MAX_AMOUNT),
        ({"payAmount": {"unit": "USDC"}}, RejectReason.AMOUNT_INVALID),
        ({"depositAddress": "0x" + "0" * 40}, RejectReason.DEPOSIT_ADDRESS_INVALID),
        ({"depositAddress": None}, RejectReason.DEPOSIT_ADDRESS_INVALID),
        ({"depositAddress": HOT_WALLET}, RejectReason.DEPOSIT_ADDRESS_OURS),
        ({"depositAddress": TOKEN}, RejectReason.DEPOSIT_ADDRESS_OURS),
        ({"transferStatus": "failed"}, RejectReason.ORDER_FAILED),
        (
            {"transferStatus": "failed", "machineStatusField": "ORDER_EXPIRED"},
            RejectReason.ORDER_EXPIRED,
        ),
        ({"providerDisbursementStatus": "expired"}, RejectReason.ORDER_EXPIRED),
        ({"providerDisbursementStatus": "unknown"}, RejectReason.ORDER_NOT_READY),
        ({"transferStatus": "unknown"}, RejectReason.ORDER_NOT_READY),
        # Self-consistency: the order's own fields disagree.
        ({"assetSymbol": "ETH"}, RejectReason.ASSET_SYMBOL_MISMATCH),
        (
            {"cryptoCurrency": {"symbol": "ETH", "address": TOKEN, "decimals": 6}},
            RejectReason.ASSET_SYMBOL_MISMATCH,
        ),
        ({"payAmount": {"amount": Decimal("1"), "unit": "ETH"}}, RejectReason.AMOUNT_UNIT_MISMATCH),
        (
            {"cryptoCurrency": {"symbol": "USDC", "address": TOKEN, "isNative": True}},
            RejectReason.NATIVE_FLAG_MISMATCH,
        ),
        # The provider says the crypto is already on its way, and we have not paid.
        ({"transferStatus": "pending"}, RejectReason.ORDER_ALREADY_FUNDED),
        ({"transferStatus": "settled"}, RejectReason.ORDER_ALREADY_FUNDED),
        ({"providerDisbursementStatus": "completed"}, RejectReason.ORDER_ALREADY_FUNDED),
        ({"machineStatusField": "SETTLED"}, RejectReason.ORDER_ALREADY_FUNDED),
    ],
)
def test_each_failed_check_has_its_reason(overrides: dict[str, Any], reason: RejectReason) -> None:
    result = check(order_json(**overrides))
    assert result.plan is None
    assert result.rejection is not None
    assert result.rejection.reason is reason
    assert result.rejection.detail


def test_amount_is_exact_from_json_text() -> None:
    data = loads_exact(
        '{"id": "6408fd3e24c501549aaac9fd", "orderType": "sell", '
        '"blockchain": "anvil", "asset": "USDC", '
        '"userRef": "user-42", "walletAddress": "' + USER_WALLET + '", '
        '"depositAddress": "' + DEPOSIT + '", "payAmount": {"amount": 0.1, "unit": "USDC"}, '
        '"cryptoCurrency": {"symbol": "USDC", "address": "' + TOKEN + '", "decimals": 6}, '
        '"transferStatus": "uninitiated", "providerDisbursementStatus": "pending"}'
    )
    result = check(data)
    assert result.plan is not None and result.plan.amount_base_units == 100_000


def test_base_units_keep_precision_beyond_the_default_context() -> None:
    amount = Decimal("123456789012345.123456789012345678")
    assert to_base_units(amount, 18) == 123456789012345123456789012345678
    assert to_base_units(Decimal("1.5"), 0) is None


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"order_id": ""}, "order_id"),
        ({"order_id": "../etc"}, "order_id"),
        ({"wallet_address": "0x123"}, "wallet_address"),
        ({"max_amount": Decimal("0")}, "max_amount"),
        ({"max_amount": Decimal("NaN")}, "max_amount"),
        ({"user_ref": None, "wallet_address": None}, "bound"),
    ],
)
def test_bad_input_is_refused_naming_the_field(fields: dict[str, Any], named: str) -> None:
    base: dict[str, Any] = {"order_id": "abc", "user_ref": "u", "max_amount": Decimal("1")}
    with pytest.raises(ValidationError) as err:
        SellOrderInput(**{**base, **fields})
    assert named in str(err.value)


def test_asset_config_is_used_as_given() -> None:
    # A sanity check of the fixture itself, so the cases above test what they claim.
    usdc: AssetConfig = chains()["anvil"].assets["USDC"]
    assert usdc.address == TOKEN and usdc.decimals == 6
