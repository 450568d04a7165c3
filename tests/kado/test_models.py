"""KadoOrder parsing: documented shapes, exact money, hostile values."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offramp.converter import DATA_CONVERTER
from offramp.providers.kado.models import (
    DisbursementStatus,
    KadoOrder,
    OrderParseError,
    OrderType,
    PaymentStatus,
    TransferStatus,
    WaitForOrderChangeInput,
    loads_exact,
    order_from_data,
    parse_envelope,
)

DEPOSIT = "0x52908400098527886E0F7030069857D2E4169EE7"  # EIP-55 test vector
TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"

# The reference's suggested shape, with JSON number text kept verbatim.
DOCUMENTED = """{"success": true, "message": "Order found", "data": {
  "id": "6408fd3e24c501549aaac9fd", "orderType": "sell", "blockchain": "ethereum",
  "asset": "USDC", "assetSymbol": "USDC", "userRef": "user-42",
  "walletAddress": "0x1111111111111111111111111111111111111111",
  "depositAddress": "%s",
  "payAmount": {"amount": %s, "unit": "USDC"},
  "recvAmount": {"amount": 98.75, "unit": "USD"}, "totalFee": {"amount": 1.5, "unit": "USD"},
  "cryptoCurrency": {"symbol": "USDC", "address": "%s", "isNative": false, "decimals": 6},
  "paymentStatus": null, "transferStatus": "uninitiated", "providerDisbursementStatus": "pending",
  "machineStatusField": "PENDING_PAYMENT", "humanStatusField": "Waiting for your deposit",
  "txHash": "", "createdAt": "2026-01-01T00:00:00.000Z"}}"""


def body(amount: str = "100.25", deposit: str = DEPOSIT) -> str:
    return DOCUMENTED % (deposit, amount, TOKEN)


def parse(text: str) -> KadoOrder:
    envelope = parse_envelope(text)
    assert envelope.success
    return order_from_data(envelope.data)


def data_with(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = loads_exact(body())["data"]
    data.update(changes)
    return data


def test_documented_shape_parses_and_is_ready() -> None:
    order = parse(body())
    assert order.id == "6408fd3e24c501549aaac9fd"
    assert order.order_type is OrderType.SELL
    assert order.amount == Decimal("100.25")
    assert order.pay_amount is not None and order.pay_amount.unit == "USDC"
    assert order.deposit_address == DEPOSIT
    assert order.transfer_status is TransferStatus.UNINITIATED
    assert order.provider_disbursement_status is DisbursementStatus.PENDING
    assert order.payment_status is None
    assert order.crypto_currency is not None
    assert order.crypto_currency.address == TOKEN and order.crypto_currency.decimals == 6
    assert order.recv_amount is not None and order.recv_amount.amount == Decimal("98.75")
    assert order.is_ready_for_deposit and order.missing_for_deposit == []
    assert order.unrecognised == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.1", Decimal("0.1")),
        ("1e-7", Decimal("1E-7")),
        ("123456789.123456", Decimal("123456789.123456")),
        ("100", Decimal("100")),
        ("100.250", Decimal("100.250")),
        ("0.30000000000000004", Decimal("0.30000000000000004")),
    ],
)
def test_amount_is_exact_decimal_from_the_json_text(text: str, expected: Decimal) -> None:
    amount = parse(body(text)).amount
    assert isinstance(amount, Decimal)
    assert amount == expected and str(amount) == str(expected)


def test_base_units_exact_or_refused() -> None:
    order = parse(body("123.456789"))
    assert order.pay_amount is not None
    assert order.pay_amount.base_units(6) == 123_456_789
    with pytest.raises(ValueError, match="more than 2 decimals"):
        order.pay_amount.base_units(2)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('"100.25"', "not a string"),
        ("-1", "greater than zero"),
        ("0", "greater than zero"),
        ("0.0", "greater than zero"),
        ("NaN", "finite"),
        ("Infinity", "finite"),
        ("-Infinity", "finite"),
        ("1e400", "absurdly large"),
        ("1" + "0" * 5000, "absurdly large"),
        ("1e-50", "fractional digits"),
        ("true", "not a float or boolean"),
        ("[1]", "JSON number"),
        ('{"value": 1}', "JSON number"),
    ],
)
def test_hostile_amounts_name_the_field(text: str, reason: str) -> None:
    with pytest.raises(OrderParseError) as info:
        parse(body(text))
    assert info.value.field == "payAmount.amount"
    assert reason in info.value.reason


@pytest.mark.parametrize(
    "changes",
    [
        {"payAmount": {"unit": "USDC"}},
        {"payAmount": {"amount": None, "unit": "USDC"}},
        {"payAmount": None},
        {"depositAddress": None},
        {"depositAddress": ""},
    ],
)
def test_missing_amount_or_address_means_not_ready(changes: dict[str, Any]) -> None:
    data = data_with(**changes)
    for key in [k for k, v in changes.items() if v is None]:
        del data[key]
    order = order_from_data(data)
    assert not order.is_ready_for_deposit
    assert order.missing_for_deposit


@pytest.mark.parametrize(
    "address",
    [
        "not-an-address",
        "0x1234",
        "0x52908400098527886E0F7030069857D2E4169Ee7",  # bad checksum (mixed case)
        "52908400098527886E0F7030069857D2E4169EE7",  # no 0x
        "0x52908400098527886E0F7030069857D2E4169EE7zz",
        "0x0052908400098527886E0F7030069857D2E4169EE7",  # 21 bytes
        "0xZZ908400098527886E0F7030069857D2E4169EE7",
    ],
)
def test_deposit_address_that_is_not_an_address(address: str) -> None:
    with pytest.raises(OrderParseError) as info:
        parse(body(deposit=address))
    assert info.value.field == "depositAddress"


def test_deposit_address_of_wrong_type() -> None:
    with pytest.raises(OrderParseError) as info:
        order_from_data(data_with(depositAddress=12345))
    assert info.value.field == "depositAddress"


def test_lower_case_address_is_accepted_and_checksummed() -> None:
    assert parse(body(deposit=DEPOSIT.lower())).deposit_address == DEPOSIT


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("transferStatus", "refunded"),
        ("transferStatus", 7),
        ("transferStatus", {"x": 1}),
        ("paymentStatus", "CHARGEBACK"),
        ("providerDisbursementStatus", "on_hold"),
        ("orderType", "swap"),
    ],
)
def test_unknown_enum_values_are_kept_as_unknown(field: str, value: Any) -> None:
    order = order_from_data(data_with(**{field: value}))
    attribute = {
        "transferStatus": "transfer_status",
        "paymentStatus": "payment_status",
        "providerDisbursementStatus": "provider_disbursement_status",
        "orderType": "order_type",
    }[field]
    assert getattr(order, attribute).value == "unknown"
    assert field in order.unrecognised
    assert not order.is_ready_for_deposit or field in {"paymentStatus", "orderType"}


def test_case_variants_normalised() -> None:
    order = order_from_data(
        data_with(orderType="SELL", blockchain=" Polygon ", transferStatus="Settled")
    )
    assert order.order_type is OrderType.SELL
    assert order.blockchain == "polygon"
    assert order.transfer_status is TransferStatus.SETTLED
    assert order.unrecognised == {}


def test_unknown_fields_are_ignored_and_loose_fields_tolerated() -> None:
    order = order_from_data(
        data_with(
            somethingNew={"nested": [1, 2]},
            recvAmount="ninety",
            totalFee={"amount": "abc", "unit": 5},
            bridgeFee="none",
            humanStatusField=42,
            settlementTimeInSeconds="soon",
            paymentStatus="SUCCESS",
        )
    )
    assert order.recv_amount is None
    assert order.total_fee is not None and order.total_fee.amount is None
    assert order.bridge_fee == []
    assert order.human_status == "42"
    assert order.settlement_time_seconds is None
    assert order.payment_status is PaymentStatus.SUCCESS


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": None}, "id"),
        ({"id": ""}, "id"),
        ({"payAmount": "100"}, "payAmount"),
        ({"cryptoCurrency": {"decimals": "6"}}, "cryptoCurrency.decimals"),
        ({"cryptoCurrency": {"decimals": 6.5}}, "cryptoCurrency.decimals"),
        ({"cryptoCurrency": {"decimals": 99}}, "cryptoCurrency.decimals"),
        ({"cryptoCurrency": {"address": "0xnope"}}, "cryptoCurrency.address"),
        ({"cryptoCurrency": "USDC"}, "cryptoCurrency"),
    ],
)
def test_strict_fields_name_themselves(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(OrderParseError) as info:
        order_from_data(data_with(**changes))
    assert info.value.field == field


def test_missing_id_names_the_field() -> None:
    data = data_with()
    del data["id"]
    with pytest.raises(OrderParseError) as info:
        order_from_data(data)
    assert info.value.field == "id"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("<html><body>502 Bad Gateway</body></html>", "body"),
        ("", "body"),
        ('{"success": true, "data": {"id": "x"', "body"),
        ("[]", "body"),
        ("null", "body"),
        ('{"data": {}}', "success"),
        ('{"success": "yes", "data": {}}', "success"),
        ("[" * 100_000 + "]" * 100_000, "body"),
    ],
)
def test_bodies_that_are_not_the_wrapper(text: str, field: str) -> None:
    with pytest.raises(OrderParseError) as info:
        parse_envelope(text)
    assert info.value.field == field


def test_success_false_is_reported_not_parsed() -> None:
    envelope = parse_envelope('{"success": false, "message": "Order not found", "data": null}')
    assert envelope.success is False and envelope.message == "Order not found"


def test_order_round_trips_through_the_temporal_converter_exactly() -> None:
    order = parse(body("100.250"))
    converter = DATA_CONVERTER.payload_converter
    payloads = converter.to_payloads([order])
    back = converter.from_payloads(payloads, [KadoOrder])[0]
    assert back == order
    assert str(back.amount) == "100.250"
    weird = order_from_data(data_with(transferStatus="weird"))
    back_weird = converter.from_payloads(converter.to_payloads([weird]), [KadoOrder])[0]
    assert back_weird.unrecognised == {"transferStatus": "weird"}
    assert back_weird.transfer_status is TransferStatus.UNKNOWN


def test_floats_are_refused_outside_the_wire_too() -> None:
    with pytest.raises(ValueError, match="not a float"):
        KadoOrder.model_validate({"id": "x", "payAmount": {"amount": 0.1}})


def test_wait_input_change_rules_and_backoff() -> None:
    ready = parse(body())
    not_ready = order_from_data(data_with(depositAddress=None))
    wait_ready = WaitForOrderChangeInput(order_id="x", await_ready=True)
    assert wait_ready.changed(ready) and not wait_ready.changed(not_ready)
    settled = order_from_data(data_with(transferStatus="settled"))
    follow = WaitForOrderChangeInput(order_id="x", last_transfer_status=TransferStatus.PENDING)
    assert follow.changed(settled)
    pending = order_from_data(data_with(transferStatus="pending"))
    assert not follow.changed(pending)
    # Following a paid order: the steps in between end no wait; an ending or `unknown` does.
    paid = WaitForOrderChangeInput(
        order_id="x", last_transfer_status=TransferStatus.UNINITIATED, until_final=True
    )
    unknown = order_from_data(data_with(transferStatus="unknown"))
    assert not paid.changed(pending) and paid.changed(settled) and paid.changed(unknown)
    assert WaitForOrderChangeInput(
        order_id="x", last_transfer_status=TransferStatus.UNINITIATED
    ).changed(pending)  # without it, as before
    was_unknown = paid.model_copy(update={"last_transfer_status": TransferStatus.UNKNOWN})
    assert was_unknown.changed(pending)  # back from unknown: the workflow drops its alarm
    policy = WaitForOrderChangeInput(
        order_id="x", initial_interval_seconds=2, max_interval_seconds=10, backoff=2
    )
    assert [policy.delay_seconds(n) for n in range(1, 6)] == [2, 4, 8, 10, 10]
    assert policy.delay_seconds(10_000) == 10


@settings(max_examples=300, deadline=None)
@given(
    st.decimals(
        min_value=Decimal("0.000001"),
        max_value=Decimal("999999999999.999999"),
        places=6,
        allow_nan=False,
        allow_infinity=False,
    )
)
def test_any_six_decimal_amount_round_trips_exactly(value: Decimal) -> None:
    order = parse(body(str(value)))
    assert order.amount == value
    assert order.pay_amount is not None
    assert order.pay_amount.base_units(6) == int(value * 10**6)


def test_non_utf8_body_is_malformed() -> None:
    with pytest.raises(OrderParseError) as info:
        parse_envelope(b"\xff\xfe\xfa not json")
    assert info.value.field == "body"
