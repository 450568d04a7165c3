"""Test support for payments: private anvil chains, an in-process payment worker, RPC helpers,
and the check that no recorded history holds the private key."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from pydantic import SecretStr
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker
from web3 import Web3

from activities.chain import ChainActivities
from activities.hot_wallet import HotWalletActivities
from offramp.chain.models import (
    PaymentOutcome,
    PaymentRequest,
    PaymentState,
    hot_wallet_workflow_id,
    payment_workflow_id,
)
from offramp.chain.rpc import ChainRuntime
from offramp.config import ChainConfig, EngineSettings
from offramp.devstack.chain import (
    DEPLOYER_KEY,
    HOT_WALLET,
    HOT_WALLET_KEY,
    LocalChain,
    anvil_process,
    pool_keys,
    prepare_chain,
    token_contract,
    web3_for,
)
from offramp.devstack.processes import ManagedProcess, free_port
from offramp.task_queues import signer_task_queue
from worker import registry, roles
from workflows.hot_wallet import HotWalletWorkflow
from workflows.payment import NonceFillWorkflow, PaymentWorkflow

CHAIN = "anvil"
T = TypeVar("T")


@dataclass
class PayChain:
    """A private anvil (its own chain id, so its hot-wallet entity id is its own) for one test."""

    proc: ManagedProcess
    local: LocalChain
    chain_id: int
    w3: Web3

    @property
    def token(self) -> str:
        return self.local.token_address

    def config(self, **overrides: Any) -> ChainConfig:
        base = self.local.config().model_dump()  # the node's own chain id
        for singular, plural in (("rpc_url", "rpc_urls"), ("hot_wallet", "hot_wallets")):
            if plural in overrides:
                base.pop(singular, None)
        settings: dict[str, Any] = {
            "poll_interval_seconds": 0.1,
            "rpc_timeout_seconds": 10.0,
            **overrides,
        }
        return ChainConfig.model_validate({**base, **settings})

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        response = self.w3.provider.make_request(method, params or [])  # type: ignore[arg-type]
        if "error" in response:
            raise RuntimeError(f"{method}: {response['error']}")
        return response.get("result")

    def nonce(self, block: str = "latest", wallet: str = HOT_WALLET) -> int:
        return int(self.w3.eth.get_transaction_count(wallet, block))  # type: ignore[arg-type]

    def token_balance(self, address: str) -> int:
        balance: int = token_contract(self.w3, self.token).functions.balanceOf(address).call()
        return balance

    def eth_balance(self, address: str) -> int:
        return int(self.w3.eth.get_balance(Web3.to_checksum_address(address)))

    def set_automine(self, on: bool) -> None:
        self.rpc("evm_setAutomine", [on])

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", [hex(blocks)])

    def tx_known(self, tx_hash: str) -> bool:
        return self.rpc("eth_getTransactionByHash", [tx_hash]) is not None

    def block_recipient(self, recipient: str) -> None:
        """Make token transfers to `recipient` revert (TestUSDC.setBlocked, owner only)."""
        from eth_account import Account

        contract = token_contract(self.w3, self.token)
        deployer = Account.from_key(DEPLOYER_KEY)
        tx = contract.functions.setBlocked(Web3.to_checksum_address(recipient), True)
        built = tx.build_transaction(
            {"from": deployer.address, "nonce": self.w3.eth.get_transaction_count(deployer.address)}
        )
        signed = deployer.sign_transaction(built)
        self.w3.eth.wait_for_transaction_receipt(
            self.w3.eth.send_raw_transaction(signed.raw_transaction), timeout=10, poll_latency=0.05
        )


def unique_chain_id() -> int:
    return random.randint(1_000_000, 2_000_000_000)


@contextmanager
def pay_chain(log_dir: Path) -> Iterator[PayChain]:
    port = free_port()
    chain_id = unique_chain_id()
    proc = anvil_process(port, log_dir / f"anvil-{port}.log", chain_id=chain_id).start()
    try:
        rpc_url = f"http://127.0.0.1:{port}"
        proc.wait_until(lambda: web3_for(rpc_url).eth.chain_id > 0, 30, "JSON-RPC")
        local = prepare_chain(rpc_url)
        yield PayChain(proc=proc, local=local, chain_id=chain_id, w3=web3_for(rpc_url))
    finally:
        proc.stop()


def payment_settings(
    task_queue: str, chains: dict[str, ChainConfig], pool_size: int = 1
) -> EngineSettings:
    """The hot wallet's key, and with `pool_size` > 1 the keys of the local pool (accounts 1..n)
    in OFFRAMP_HOT_WALLET_PRIVATE_KEYS form."""
    return EngineSettings(
        task_queue=task_queue,
        chains=chains,
        hot_wallet_private_key=SecretStr(HOT_WALLET_KEY),
        hot_wallet_private_keys=SecretStr(",".join(pool_keys(pool_size)[1:]))
        if pool_size > 1
        else None,
    )


@asynccontextmanager
async def payment_worker(
    client: Client,
    task_queue: str,
    chains: dict[str, ChainConfig],
    pool_size: int = 1,
    max_cached_workflows: int = 1000,
) -> AsyncIterator[ChainRuntime]:
    """The payment workflows and chain activities in-process, on `task_queue`."""
    runtime = await ChainRuntime.create(payment_settings(task_queue, chains, pool_size))
    try:
        async with both_queues(
            client,
            task_queue,
            [PaymentWorkflow, NonceFillWorkflow, HotWalletWorkflow],
            [*ChainActivities(runtime).all(), *HotWalletActivities(runtime).all()],
            max_cached_workflows=max_cached_workflows,
        ):
            yield runtime
    finally:
        await runtime.aclose()


@asynccontextmanager
async def both_queues(
    client: Client,
    task_queue: str,
    workflows: Sequence[type],
    activities: Sequence[Callable[..., Any]],
    **options: Any,
) -> AsyncIterator[Worker]:
    """Workers as a role-`all` worker runs them: `task_queue` and its signer queue (signing
    activities are scheduled there, offramp.task_queues). Yields the main queue's worker."""
    async with (
        Worker(
            client,
            task_queue=task_queue,
            workflows=workflows,
            activities=registry.main_queue_activities(roles.ALL, activities),
            graceful_shutdown_timeout=timedelta(seconds=1),
            **options,
        ) as main,
        Worker(
            client,
            task_queue=signer_task_queue(task_queue),
            activities=registry.signer_queue_activities(roles.ALL, activities),
            graceful_shutdown_timeout=timedelta(seconds=1),
        ),
    ):
        yield main


def payment_request(payment_id: str, recipient: str, asset: str, amount: str) -> PaymentRequest:
    """A payment on the test chain: `amount` in whole units, as exact decimal text."""
    return PaymentRequest(
        payment_id=payment_id, chain=CHAIN, asset=asset, recipient=recipient, amount=Decimal(amount)
    )


async def start_payment(
    client: Client, task_queue: str, request: PaymentRequest
) -> WorkflowHandle[PaymentWorkflow, PaymentOutcome]:
    return await client.start_workflow(
        PaymentWorkflow.run,
        request,
        id=payment_workflow_id(request.payment_id),
        task_queue=task_queue,
        execution_timeout=timedelta(minutes=5),
    )


async def payment_state(handle: WorkflowHandle[Any, Any]) -> PaymentState:
    state: PaymentState = await handle.query("state", result_type=PaymentState)
    return state


async def wait_for(probe: Callable[[], Awaitable[T | None]], what: str, limit: float = 30.0) -> T:
    """Poll `probe` until it returns something truthy (bounded; never a bare sleep)."""
    deadline = time.monotonic() + limit
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)


def wallet_id(chain: PayChain) -> str:
    return hot_wallet_workflow_id(chain.chain_id, HOT_WALLET)


def key_forms() -> list[bytes]:
    bare = HOT_WALLET_KEY.removeprefix("0x")
    return [bare.lower().encode(), bare.upper().encode(), bytes.fromhex(bare)]


def _blobs(node: Any) -> Iterator[bytes]:
    """Every string in a JSON history, and its base64 decoding (payloads are base64 in JSON)."""
    if isinstance(node, dict):
        for value in node.values():
            yield from _blobs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _blobs(value)
    elif isinstance(node, str):
        yield node.encode()
        with contextlib.suppress(ValueError, binascii.Error):
            yield base64.b64decode(node, validate=True)


def history_holds_key(history_json: str) -> bool:
    forms = key_forms()
    for blob in [history_json.encode(), *_blobs(json.loads(history_json))]:
        lowered = blob.lower()
        if any(form in blob or form.lower() in lowered for form in forms):
            return True
    return False


async def assert_no_key_in_histories(client: Client, workflow_ids: list[str]) -> int:
    """Fetch each workflow's JSON history and assert the hot wallet key is in none of them (also
    inside base64 payloads); returns the number of bytes searched."""
    searched = 0
    for workflow_id in workflow_ids:
        text = (await client.get_workflow_handle(workflow_id).fetch_history()).to_json()
        searched += len(text)
        assert not history_holds_key(text), f"private key found in the history of {workflow_id}"
    return searched
