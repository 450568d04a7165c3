"""The hot-wallet entity's limits travel in its input: an input from before they existed decodes
with the values it ran with, and the defaults are never written (payloads unchanged, readable by
an old worker during a rolling deploy)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from offramp.chain.models import HotWalletInput, HotWalletLimits, HotWalletParams, SendTuning

TUNING = SendTuning(
    confirmations=1,
    max_fee_per_gas_cap_wei=10**12,
    bump_after_seconds=60,
    poll_interval_seconds=1,
    rpc_timeout_seconds=10,
    in_flight_limit=16,
    reservation_timeout_seconds=300,
)


def wallet_params(**limits: float) -> HotWalletParams:
    return HotWalletParams(
        chain="anvil",
        chain_id=31337,
        address="0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        tuning=TUNING,
        limits=HotWalletLimits.model_validate(limits),
    )


def test_default_limits_are_not_written_and_an_old_input_reads_them_back() -> None:
    text = HotWalletInput(params=wallet_params()).model_dump_json()
    assert "limits" not in json.loads(text)["params"]
    old = HotWalletInput.model_validate_json(text)
    assert old.params.limits == HotWalletLimits()
    assert old.params.limits.queue_limit == 500 and old.params.limits.history_events_budget == 4000


def test_limits_other_than_the_defaults_round_trip() -> None:
    text = HotWalletInput(params=wallet_params(queue_limit=3)).model_dump_json()
    assert json.loads(text)["params"]["limits"]["queue_limit"] == 3
    assert HotWalletInput.model_validate_json(text).params.limits.queue_limit == 3


@pytest.mark.parametrize("field", ["queue_limit", "recent_limit", "retry_later_seconds"])
def test_a_limit_must_be_positive(field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        HotWalletLimits.model_validate({field: 0})
