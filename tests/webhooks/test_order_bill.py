"""A happy order woken only by the Kado simulator's own signed webhooks, through the real receiver:
its bill, counted from the real histories of the order and its payment child, is at most 20
Temporal Cloud actions. The waits are hour-long safety polls in 6-hour attempts, so the bill is
the same for any settlement up to 6 hours (tests/providers/test_wait_bill.py has the schedule)."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from offramp.chain.models import payment_workflow_id
from offramp.orders.models import Stage
from offramp.simulator.admin import SimulatorAdmin
from offramp.webhooks.app import route_path
from tests.conftest import SIMULATOR_TEST_ARGS
from tests.e2e.billing import billed_actions
from tests.e2e.happy_bill import order_bill
from tests.e2e.support import (
    WEBHOOK_WOKEN,
    SellChain,
    create_sim_order,
    engine_settings,
    engine_worker,
    sell_chain,
    start_order,
)
from tests.webhooks.conftest import RunningReceiver

MAX_ACTIONS = 20
# Seconds from the deposit's confirmation to settled at the provider. The suite runs 5 s; the
# bill is meant to be the same at any settlement time, which a longer run shows by hand
# (OFFRAMP_BILL_SETTLE_SECONDS=300 or 3600: one order, real time).
SETTLE_SECONDS = float(os.environ.get("OFFRAMP_BILL_SETTLE_SECONDS", "5"))


@pytest.fixture(scope="module")
def signing_secret() -> SecretStr:
    return SecretStr(secrets.token_hex(16))


@pytest.fixture
def webhook_secret(signing_secret: SecretStr) -> SecretStr:
    return signing_secret


@pytest.fixture(scope="module")
def sc(tmp_path_factory: pytest.TempPathFactory, signing_secret: SecretStr) -> Iterator[SellChain]:
    """A simulator that signs its webhooks with the receiver's secret (read from a file)."""
    log_dir = Path(tmp_path_factory.mktemp("webhook-bill"))
    secret_file = log_dir / "webhook-secret"
    secret_file.write_text(signing_secret.get_secret_value())
    args = (*SIMULATOR_TEST_ARGS, "--webhook-secret-file", str(secret_file))
    with sell_chain(log_dir, args) as chain:
        yield chain


async def test_a_happy_order_woken_by_webhooks_costs_at_most_20_actions(
    dev_env: WorkflowEnvironment,
    sc: SellChain,
    admin: SimulatorAdmin,
    task_queue: str,
    hooks: RunningReceiver,
) -> None:
    order_id = await create_sim_order(
        admin,
        scenario="slow_settlement",
        slow_settlement_seconds=SETTLE_SECONDS,
        webhook_url=f"{hooks.base_url}{route_path('kado')}",
    )
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        handle = await start_order(
            dev_env.client,
            task_queue,
            order_id,
            **WEBHOOK_WOKEN,
        )
        # Without a webhook the order would sit an hour in its tracking wait.
        async with asyncio.timeout(SETTLE_SECONDS + 120):
            result = await handle.result()
    assert result.outcome is Stage.SETTLED, result.reason
    payment = dev_env.client.get_workflow_handle(payment_workflow_id(f"kado-{order_id}"))
    order_actions = billed_actions(await handle.fetch_history())
    payment_actions = billed_actions(await payment.fetch_history())
    bill = order_bill(order_actions, payment_actions)  # the wake's signal included
    requests = hooks.receiver.requests
    print(
        f"\nbill {bill}: order {dict(order_actions)}, payment {dict(payment_actions)}; {requests}"
    )
    # The created and in-between events are noted; only the ending woke the order.
    assert requests["kado accepted"] == 1 and requests["kado noted"] >= 2
    assert order_actions["signal"] == 1
    assert bill <= MAX_ACTIONS
    assert sc.token_transfers_to(result.deposit_address or "") == [result.amount_base_units]
