"""The order state machine and fault dice, without a chain or a server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from offramp.providers.kado.models import order_from_data
from offramp.simulator.faults import FaultConfig, FaultInjector
from offramp.simulator.jsonx import deep_merge, dumps_exact
from offramp.simulator.orders import Deposit, Failure, Phase, Scenario, SimOrder, expiry_after

TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def order(**changes: object) -> SimOrder:
    fields: dict[str, object] = {
        "id": "o1",
        "blockchain": "anvil",
        "asset": "USDC",
        "amount": Decimal("5"),
        "decimals": 6,
        "token_address": TOKEN,
        "deposit_address": "0x52908400098527886E0F7030069857D2E4169EE7",
        "created_at": T0,
        "expires_at": T0 + timedelta(seconds=60),
        "ready_at": T0,
        "ready_announced": True,
        "confirmations": 2,
        "settlement_delay_seconds": 10,
    }
    fields.update(changes)
    return SimOrder.model_validate(fields)


def phase(o: SimOrder) -> Phase:
    return o.phase  # read through a call: mypy would keep the narrowing of an earlier assert


def deposit(
    amount: int, *, block: int = 10, at: datetime = T0, token: str | None = TOKEN, tx: str = "0xaa"
) -> Deposit:
    return Deposit(
        tx_hash=tx,
        log_index=0,
        block_number=block,
        block_timestamp=int(at.timestamp()),
        token=token,
        amount=amount,
    )


def test_exact_deposit_confirms_then_settles_after_the_delay() -> None:
    o = order()
    assert o.add_deposit(deposit(5_000_000, block=10))
    assert phase(o) is Phase.DEPOSIT_SEEN
    assert not o.advance(T0, head_block=10)  # 1 of 2 confirmations
    assert o.advance(T0, head_block=11) and phase(o) is Phase.SETTLING
    assert not o.advance(T0 + timedelta(seconds=9), head_block=12)
    assert o.settled_at is None
    settled = T0 + timedelta(seconds=10.2)  # the tick's time, a little after settle_at
    assert o.advance(settled, head_block=12) and o.phase is Phase.SETTLED
    assert o.settled_at == settled  # where the bench's "settled → workflow done" starts


def test_the_same_deposit_seen_twice_counts_once() -> None:
    o = order(confirmations=1)
    assert o.add_deposit(deposit(5_000_000))
    assert not o.add_deposit(deposit(5_000_000))
    o.advance(T0, head_block=10)
    assert o.phase is Phase.SETTLING


def test_amounts_off_by_one_base_unit_fail() -> None:
    for amount in (4_999_999, 5_000_001):
        o = order(confirmations=1)
        o.add_deposit(deposit(amount))
        o.advance(T0, head_block=10)
        assert (o.phase, o.failure) == (Phase.FAILED, Failure.WRONG_AMOUNT)


def test_amount_with_more_decimals_than_the_token_can_never_match() -> None:
    o = order(amount=Decimal("1.0000001"), confirmations=1)
    assert o.expected_base_units is None
    o.add_deposit(deposit(1_000_000))
    o.advance(T0, head_block=10)
    assert o.failure is Failure.WRONG_AMOUNT


def test_wrong_token_and_native_mismatch() -> None:
    o = order()
    o.add_deposit(deposit(5_000_000, token="0x1111111111111111111111111111111111111111"))
    assert o.failure is Failure.WRONG_TOKEN
    native = order(token_address=None, decimals=18, amount=Decimal("1"))
    native.add_deposit(deposit(10**18, token=TOKEN))
    assert native.failure is Failure.WRONG_TOKEN


def test_expiry_and_late_deposits() -> None:
    o = order()
    assert o.advance(T0 + timedelta(seconds=60), head_block=5)
    assert o.phase is Phase.EXPIRED
    o.add_deposit(deposit(5_000_000, at=T0 + timedelta(seconds=60)))
    assert (o.phase, o.failure) == (Phase.FAILED, Failure.DEPOSIT_AFTER_EXPIRY)


def test_on_time_deposit_seen_after_expiry_revives_the_order() -> None:
    o = order()
    o.advance(T0 + timedelta(seconds=61), head_block=5)
    assert phase(o) is Phase.EXPIRED
    o.add_deposit(deposit(5_000_000, at=T0 + timedelta(seconds=59)))
    assert phase(o) is Phase.DEPOSIT_SEEN


def test_scenarios() -> None:
    stuck = order(scenario=Scenario.STUCK_UNKNOWN, confirmations=1)
    stuck.add_deposit(deposit(5_000_000))
    stuck.advance(T0 + timedelta(days=1), head_block=100)
    assert stuck.phase is Phase.STUCK_UNKNOWN
    assert stuck.served_data(T0)["transferStatus"] == "unknown"

    failing = order(scenario=Scenario.PROVIDER_FAILURE, confirmations=1)
    failing.add_deposit(deposit(5_000_000))
    failing.advance(T0, head_block=10)
    assert failing.failure is Failure.DISBURSEMENT_FAILED

    slow = order(scenario=Scenario.SLOW_SETTLEMENT, confirmations=1, slow_settlement_seconds=600)
    slow.add_deposit(deposit(5_000_000))
    slow.advance(T0, head_block=10)
    assert slow.served_data(T0)["machineStatusField"] == "DELAYED_SETTLEMENT"
    assert not slow.advance(T0 + timedelta(seconds=599), head_block=10)
    assert slow.advance(T0 + timedelta(seconds=600), head_block=10)
    assert slow.phase is Phase.SETTLED


def test_not_ready_order_serves_no_address_or_amount_then_announces_readiness() -> None:
    o = order(ready_at=T0 + timedelta(seconds=30), ready_announced=False)
    data = o.served_data(T0)
    assert "depositAddress" not in data and "amount" not in data["payAmount"]
    assert data["providerDisbursementStatus"] is None
    assert not order_from_data(data).is_ready_for_deposit
    assert not o.advance(T0 + timedelta(seconds=29), head_block=None)
    assert o.advance(T0 + timedelta(seconds=30), head_block=None)  # a webhook-worthy change
    assert order_from_data(o.served_data(T0 + timedelta(seconds=30))).is_ready_for_deposit


def test_served_data_parses_in_every_phase() -> None:
    for phase in Phase:
        o = order(phase=phase, failure=Failure.WRONG_AMOUNT if phase is Phase.FAILED else None)
        parsed = order_from_data(o.served_data(T0))
        assert parsed.id == "o1"
        assert parsed.is_expired == (phase is Phase.EXPIRED)


def test_expiry_rounds_up_to_a_whole_second() -> None:
    now = datetime(2026, 1, 1, 0, 0, 0, 250_000, tzinfo=UTC)
    assert expiry_after(now, 1) == datetime(2026, 1, 1, 0, 0, 2, tzinfo=UTC)
    assert expiry_after(now.replace(microsecond=0), 1) == datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)


def test_fault_dice_are_deterministic_and_bursts_repeat() -> None:
    config = FaultConfig(error_rate=0.3, rate_limit_burst=2, rate_limit_every=3, seed=11)
    first = [FaultInjector().decide("s", config).status for _ in range(1)]
    injector_a, injector_b = FaultInjector(), FaultInjector()
    a = [injector_a.decide("s", config).status for _ in range(50)]
    b = [injector_b.decide("s", config).status for _ in range(50)]
    assert a == b and first == [429]
    assert [a[i] for i in range(0, 50, 5)] == [429] * 10
    assert {s for s in a if s not in (None, 429)} == {503}
    assert FaultInjector().decide("s", FaultConfig()).status is None


def test_exact_json_helpers() -> None:
    text = dumps_exact({"a": Decimal("0.1"), "b": [Decimal("1E-7"), None, True, 'x"y']})
    assert text == '{"a":0.1,"b":[1E-7,null,true,"x\\"y"]}'
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}, "d": 4}) == {
        "a": {"b": 1, "c": 3},
        "d": 4,
    }


def test_reorg_forgets_deposits_of_orders_in_progress_only() -> None:
    settling = order(confirmations=1)
    settling.add_deposit(deposit(5_000_000, block=10))
    settling.advance(T0, head_block=10)
    assert phase(settling) is Phase.SETTLING
    assert settling.forget_deposits_after(9)
    assert phase(settling) is Phase.AWAITING_DEPOSIT and settling.settle_at is None
    assert not settling.forget_deposits_after(9)  # nothing left to forget

    split = order(confirmations=5)
    split.add_deposit(deposit(1_000_000, block=10, tx="0x01"))
    split.add_deposit(deposit(4_000_000, block=12, tx="0x02"))
    assert split.forget_deposits_after(11)
    assert phase(split) is Phase.DEPOSIT_SEEN and len(split.deposits) == 1

    settled = order(confirmations=1, settlement_delay_seconds=0)
    settled.add_deposit(deposit(5_000_000, block=10))
    settled.advance(T0, head_block=10)
    settled.advance(T0, head_block=10)
    assert phase(settled) is Phase.SETTLED
    settled.forget_deposits_after(9)
    assert phase(settled) is Phase.SETTLED  # the provider already paid out: final
