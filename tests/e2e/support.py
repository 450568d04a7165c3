"""End-to-end support: a private chain with the Kado simulator watching it, and the whole engine
(every workflow and activity the worker registers) on a fresh task queue."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker
from web3 import Web3

from offramp.config import ChainConfig, EngineSettings
from offramp.devstack.chain import HOT_WALLET, HOT_WALLET_KEY, LOCAL_CHAIN_NAME, token_contract
from offramp.devstack.processes import ManagedProcess, free_port
from offramp.orders.models import SellOrderInput, SellOrderResult, SellOrderState, Stage
from offramp.orders.starter import start_sell_order
from offramp.simulator.admin import SimulatorAdmin
from offramp.simulator.process import simulator_process, wait_simulator_ready
from tests.chain.support import PayChain, both_queues, pay_chain
from tests.conftest import SIMULATOR_TEST_ARGS
from worker import registry
from worker.resources import WorkerResources

# Fast polling for tests; production defaults are 5 s growing to 1 min.
FAST_POLL: dict[str, Any] = {
    "poll_initial_interval": timedelta(milliseconds=200),
    "poll_max_interval": timedelta(seconds=1),
}
# Hour-long polls: within a test only a wake (poll_now) makes the workflow ask the provider again.
HOUR_POLLS: dict[str, Any] = {
    "poll_initial_interval": timedelta(hours=1),
    "poll_max_interval": timedelta(hours=1),
    "ready_timeout": timedelta(hours=3),
}
# Woken by webhooks: hour-long safety polls in 6-hour wait attempts (one attempt per wait).
WEBHOOK_WOKEN: dict[str, Any] = {
    "webhooks": True,
    "safety_poll_interval": timedelta(hours=1),
    "poll_initial_interval": timedelta(hours=1),
    "wait_attempt": timedelta(hours=6),
    "ready_timeout": timedelta(hours=3),
}


@dataclass
class SellChain:
    """A private anvil (own chain id) and a Kado simulator watching it."""

    chain: PayChain
    simulator: ManagedProcess
    simulator_url: str

    @property
    def w3(self) -> Web3:
        return self.chain.w3

    @property
    def token(self) -> str:
        return self.chain.token

    def config(self, **overrides: Any) -> ChainConfig:
        # The local chain config: USDC orders of 5000 or more wait for approval.
        return self.chain.config(**overrides)

    def hot_wallet_nonce(self) -> int:
        return self.w3.eth.get_transaction_count(HOT_WALLET, "pending")

    def token_transfers_to(self, address: str) -> list[int]:
        """Every Transfer of the test token to `address` on this chain (values in base units)."""
        token = token_contract(self.w3, self.token)
        logs = token.events.Transfer().get_logs(
            from_block=0, argument_filters={"to": Web3.to_checksum_address(address)}
        )
        return [int(log["args"]["value"]) for log in logs]

    def native_transfers_to(self, address: str) -> list[int]:
        """Every value transfer to `address` in any block (anvil: scan the chain)."""
        target = address.lower()
        values = []
        for number in range(self.w3.eth.block_number + 1):
            block = self.w3.eth.get_block(number, full_transactions=True)
            for tx in block["transactions"]:
                assert not isinstance(tx, bytes)
                if tx.get("to") and str(tx["to"]).lower() == target and int(tx["value"]) > 0:
                    values.append(int(tx["value"]))
        return values


@contextmanager
def sell_chain(
    log_dir: Path, simulator_args: tuple[str, ...] = SIMULATOR_TEST_ARGS
) -> Iterator[SellChain]:
    with pay_chain(log_dir) as chain:
        port = free_port()
        proc = simulator_process(
            port,
            log_dir / f"simulator-{port}.log",
            rpc_url=chain.local.rpc_url,
            token_address=chain.token,
            data_file=log_dir / f"simulator-{port}.json",
            extra_args=simulator_args,
        ).start()
        try:
            wait_simulator_ready(proc)
            yield SellChain(chain, proc, f"http://127.0.0.1:{port}")
        finally:
            proc.stop()


def engine_settings(sc: SellChain, task_queue: str, **chain_overrides: Any) -> EngineSettings:
    config = sc.config(
        poll_interval_seconds=0.1,
        wallet_entity_suffix=task_queue,
        **chain_overrides,
    )
    return EngineSettings(
        task_queue=task_queue,
        chains={LOCAL_CHAIN_NAME: config},
        hot_wallet_private_key=SecretStr(HOT_WALLET_KEY),
        kado_base_url=sc.simulator_url,
    )


@asynccontextmanager
async def engine_worker(client: Client, settings: EngineSettings) -> AsyncIterator[Worker]:
    """Everything the production worker registers, in-process."""
    resources = await WorkerResources.create(settings)
    try:
        async with both_queues(
            client,
            settings.task_queue,
            list(registry.workflows()),
            list(registry.activities(resources)),
        ) as worker:
            yield worker
    finally:
        await resources.aclose()


def new_order_id() -> str:
    return f"e2e{uuid.uuid4().hex[:21]}"


async def start_order(
    client: Client,
    task_queue: str,
    order_id: str,
    *,
    max_amount: Decimal = Decimal("1000000"),
    user_ref: str = "user-42",
    **fields: Any,
) -> WorkflowHandle[Any, SellOrderResult]:
    request = SellOrderInput(
        order_id=order_id, user_ref=user_ref, max_amount=max_amount, **{**FAST_POLL, **fields}
    )
    return await start_sell_order(client, request, task_queue=task_queue)


async def create_sim_order(admin: SimulatorAdmin, **fields: Any) -> str:
    fields.setdefault("order_id", new_order_id())
    fields.setdefault("user_ref", "user-42")
    created = await admin.create_order(**fields)
    return created.order_id


async def wait_stage(handle: WorkflowHandle[Any, Any], *stages: Stage) -> SellOrderState:
    """Poll the state query until the order is in one of `stages` (bounded)."""
    async with asyncio.timeout(60):
        while True:
            state: SellOrderState = await handle.query("state", result_type=SellOrderState)
            if state.stage in stages:
                return state
            await asyncio.sleep(0.1)
