"""Payments over several RPC nodes (real worker, real anvil, real HTTP): a failing first node
(refused, HTTP 500, 429, hanging past the timeout) still pays exactly once; the signed bytes go to
every healthy node and "already known" counts as sent; a secret in an RPC URL's path and query
reaches no history, activity failure or log line while every node misbehaves."""

from __future__ import annotations

import json
import logging
import signal
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from eth_account import Account
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from offramp.chain.models import PaymentStatus
from offramp.devstack.chain import HOT_WALLET_KEY
from offramp.devstack.worker_process import wait_worker_ready, worker_process
from tests.chain.rpc_nodes import (
    RpcNode,
    assert_no_secret,
    faulty_url,
    refused_url,
    rpc_node,
)
from tests.chain.support import (
    CHAIN,
    PayChain,
    pay_chain,
    payment_request,
    payment_worker,
    start_payment,
    wait_for,
)

FAULTS = ["refused", "500", "429", "hang"]


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


@pytest.fixture
def chain(tmp_path: Path, stack: ExitStack) -> PayChain:
    return stack.enter_context(pay_chain(tmp_path))


@pytest.mark.parametrize("fault", FAULTS)
async def test_payment_confirms_once_when_the_first_node_fails(
    fault: str,
    dev_client: Client,
    task_queue: str,
    chain: PayChain,
    stack: ExitStack,
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = stack.enter_context(rpc_node(chain.local.rpc_url))
    config = chain.config(
        rpc_urls=[faulty_url(stack, chain.local.rpc_url, fault), good.url],
        rpc_request_timeout_seconds=1.0,
    )
    recipient = Account.create().address
    start = chain.nonce()
    with caplog.at_level(logging.DEBUG):
        async with payment_worker(dev_client, task_queue, {CHAIN: config}):
            request = payment_request(f"failover-{fault}-{uuid.uuid4()}", recipient, "USDC", "7.5")
            handle = await start_payment(dev_client, task_queue, request)
            outcome = await handle.result()
    assert outcome.status is PaymentStatus.CONFIRMED, outcome
    assert chain.token_balance(recipient) == 7_500_000
    assert chain.nonce() == start + 1 and outcome.nonce == start
    assert good.calls["eth_sendRawTransaction"] >= 1
    assert_no_secret((await handle.fetch_history()).to_json(), "the payment's history")
    assert_no_secret(caplog.text, "the worker's log")


async def test_the_signed_bytes_go_to_every_node_and_already_known_is_sent(
    dev_client: Client, task_queue: str, chain: PayChain, stack: ExitStack
) -> None:
    # Two nodes in front of the same anvil: one of them gets anvil's "transaction already
    # imported"; a third answers "already known" without passing it on.
    knows = stack.enter_context(rpc_node(chain.local.rpc_url, "already_known"))
    first = stack.enter_context(rpc_node(chain.local.rpc_url))
    second = stack.enter_context(rpc_node(chain.local.rpc_url))
    nodes: list[RpcNode] = [knows, first, second]
    config = chain.config(rpc_urls=[n.url for n in nodes])
    recipient = Account.create().address
    start = chain.nonce()
    async with payment_worker(dev_client, task_queue, {CHAIN: config}):
        request = payment_request(f"fan-out-{uuid.uuid4()}", recipient, "ETH", "0.25")
        outcome = await (await start_payment(dev_client, task_queue, request)).result()
    assert outcome.status is PaymentStatus.CONFIRMED, outcome
    assert [n.calls["eth_sendRawTransaction"] for n in nodes] == [1, 1, 1]
    assert len(outcome.tx_hashes) == 1
    assert chain.eth_balance(recipient) == 25 * 10**16
    assert chain.nonce() == start + 1


async def test_rpc_url_secrets_never_appear_while_every_node_misbehaves(
    dev_client: Client,
    task_queue: str,
    chain: PayChain,
    stack: ExitStack,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Healthy at start (the chain id is verified), then 500, 429 and a hang, plus one refusing
    # connections all along; then they recover and the payment goes through.
    nodes = [stack.enter_context(rpc_node(chain.local.rpc_url)) for _ in range(3)]
    config = chain.config(
        rpc_urls=[refused_url()] + [n.url for n in nodes],
        rpc_request_timeout_seconds=1.0,
        rpc_cooldown_seconds=0.0,
    )
    recipient = Account.create().address
    with caplog.at_level(logging.DEBUG):
        async with payment_worker(dev_client, task_queue, {CHAIN: config}):
            for node, mode in zip(nodes, ["500", "429", "hang"], strict=True):
                node.mode = mode
            request = payment_request(f"secret-{uuid.uuid4()}", recipient, "USDC", "3")
            handle = await start_payment(dev_client, task_queue, request)

            async def failed_twice() -> str | None:
                pending = (await handle.describe()).raw_description.pending_activities
                if pending and pending[0].attempt >= 3 and pending[0].last_failure.message:
                    return pending[0].last_failure.message
                return None

            failure = await wait_for(failed_twice, "the preflight to fail twice", 60)
            for label, what in [("rpc #1", "cannot connect"), ("rpc #2", "HTTP 500")]:
                assert f"{label}: {what}" in failure, failure
            assert "rpc #3: HTTP 429" in failure and "rpc #4: timed out" in failure, failure
            assert_no_secret(failure, "the activity failure")
            assert "127.0.0.1" not in failure
            for node in nodes:
                node.mode = "forward"
                node.release.set()
            outcome = await handle.result()
    assert outcome.status is PaymentStatus.CONFIRMED, outcome
    assert chain.token_balance(recipient) == 3_000_000
    history = (await handle.fetch_history()).to_json()
    assert_no_secret(history, "the payment's history")
    assert_no_secret(caplog.text, "the worker's log")
    assert "rpc #2 failed: HTTP 500" in caplog.text  # the log does say what failed


async def test_the_worker_process_output_holds_no_rpc_secret(
    dev_env: WorkflowEnvironment,
    task_queue: str,
    chain: PayChain,
    stack: ExitStack,
    tmp_path: Path,
) -> None:
    """What an operator sees of `python -m worker` (its stderr log at INFO): a node refusing
    connections, one answering 500 and one hanging, then a payment; no part of any URL."""
    flaky = stack.enter_context(rpc_node(chain.local.rpc_url))
    hangs = stack.enter_context(rpc_node(chain.local.rpc_url, "hang"))
    good = stack.enter_context(rpc_node(chain.local.rpc_url))
    config = chain.config(
        rpc_urls=[refused_url(), flaky.url, hangs.url, good.url], rpc_request_timeout_seconds=1.0
    )
    chains_file = tmp_path / "chains.json"
    chains_file.write_text(json.dumps({CHAIN: config.model_dump(mode="json")}))
    proc = worker_process(
        {
            "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
            "TEMPORAL_NAMESPACE": dev_env.client.namespace,
            "OFFRAMP_TASK_QUEUE": task_queue,
            "OFFRAMP_CHAINS_FILE": str(chains_file),
            "OFFRAMP_HOT_WALLET_PRIVATE_KEY": HOT_WALLET_KEY,
        },
        tmp_path / "worker.log",
    ).start()
    try:
        wait_worker_ready(proc)
        flaky.mode = "500"
        recipient = Account.create().address
        request = payment_request(f"worker-out-{uuid.uuid4()}", recipient, "USDC", "1")
        outcome = await (await start_payment(dev_env.client, task_queue, request)).result()
        assert outcome.status is PaymentStatus.CONFIRMED, outcome
        assert proc.stop(timeout=30, sig=signal.SIGTERM) == 0
        output = proc.log_since_start().decode()
    finally:
        proc.kill()
    assert "rpc #2 failed: HTTP 500" in output and "rpc #1 failed: cannot connect" in output
    assert_no_secret(output, "the worker's output")
