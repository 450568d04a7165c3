"""Several RPC nodes per chain: failover on transport errors, timeouts and 429/5xx; the
highest nonce of the healthy nodes; a JSON-RPC error is an answer, not a failover; errors name
nodes by label and never carry any part of a URL (real anvil, real HTTP)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from web3 import AsyncWeb3

from activities.chain import ChainActivities
from offramp.chain.failover import FailoverProvider, RpcUnavailable
from offramp.chain.models import WalletNonces, WalletNoncesInput, hot_wallet_workflow_id
from offramp.chain.rpc import ChainRuntime
from offramp.converter import DATA_CONVERTER
from offramp.devstack.chain import HOT_WALLET, LocalChain
from tests.chain.rpc_nodes import assert_no_secret, faulty_url, refused_url, rpc_node
from tests.chain.support import pay_chain, payment_settings

FAULTS = ["refused", "500", "429", "hang"]


@pytest.fixture
def nodes(local_chain: LocalChain) -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def provider(urls: list[str], timeout: float = 1.0, cooldown: float = 60.0) -> FailoverProvider:
    labels = [f"rpc #{i + 1}" for i in range(len(urls))]
    return FailoverProvider(
        urls, labels, chain_id=31337, request_timeout=timeout, cooldown=cooldown
    )


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_failing_first_node_fails_over_and_is_then_tried_last(
    fault: str, nodes: ExitStack, local_chain: LocalChain, caplog: pytest.LogCaptureFixture
) -> None:
    bad = faulty_url(nodes, local_chain.rpc_url, fault)
    good = nodes.enter_context(rpc_node(local_chain.rpc_url))
    p = provider([bad, good.url])
    w3 = AsyncWeb3(p)
    try:
        with caplog.at_level(logging.DEBUG):
            assert await w3.eth.block_number >= 0
            assert not p.nodes[0].healthy(p.nodes[0].failed_until - 1)
            before = good.calls["eth_blockNumber"]
            for _ in range(3):  # the failed node cools down: the good one is asked first
                await w3.eth.block_number
            assert good.calls["eth_blockNumber"] == before + 3
        assert "rpc #1 failed" in caplog.text
        assert_no_secret(caplog.text, "the log")
    finally:
        await p.disconnect()


async def test_every_node_failing_names_them_by_label_only(
    nodes: ExitStack, local_chain: LocalChain, caplog: pytest.LogCaptureFixture
) -> None:
    urls = [faulty_url(nodes, local_chain.rpc_url, fault) for fault in FAULTS]
    p = provider(urls)
    try:
        with caplog.at_level(logging.DEBUG), pytest.raises(RpcUnavailable) as raised:
            await AsyncWeb3(p).eth.block_number
        message = str(raised.value)
        for i, what in enumerate(["cannot connect", "HTTP 500", "HTTP 429", "timed out"]):
            assert f"rpc #{i + 1}: {what}" in message
        assert raised.value.__cause__ is None and raised.value.__context__ is None
        assert_no_secret(message + caplog.text, "the error or the log")
        assert "127.0.0.1" not in message
    finally:
        await p.disconnect()


async def test_a_json_rpc_error_is_an_answer_not_a_failover(
    nodes: ExitStack, local_chain: LocalChain
) -> None:
    first = nodes.enter_context(rpc_node(local_chain.rpc_url))
    second = nodes.enter_context(rpc_node(local_chain.rpc_url))
    p = provider([first.url, second.url])
    try:
        # anvil refuses a raw transaction that does not decode: the node's answer, kept.
        response = await p.make_request("eth_sendRawTransaction", ["0x00"])  # type: ignore[arg-type]
        assert "error" in response
        assert second.calls["eth_sendRawTransaction"] == 0
        assert p.nodes[0].healthy(0.0) and p.nodes[0].failed_until == 0.0
    finally:
        await p.disconnect()


async def test_a_node_on_another_chain_is_never_used(
    nodes: ExitStack, local_chain: LocalChain, clean_env: None
) -> None:
    other = nodes.enter_context(rpc_node(local_chain.rpc_url, "chain:1"))
    good = nodes.enter_context(rpc_node(local_chain.rpc_url))
    config = local_chain.config().model_copy(update={"rpc_urls": [good.url, other.url]})
    runtime = await ChainRuntime.create(payment_settings("tq", {"anvil": config}))
    try:
        refusal = await runtime.served("anvil")
        assert isinstance(refusal, str)
        assert "eth_chainId is 1 (rpc #2)" in refusal
        assert_no_secret(refusal, "the refusal")
    finally:
        await runtime.aclose()


@pytest.mark.parametrize("lag_first", [True, False])
async def test_nonce_reads_take_the_highest_answer_of_the_healthy_nodes(
    lag_first: bool, nodes: ExitStack, tmp_path: Path, clean_env: None
) -> None:
    chain = nodes.enter_context(pay_chain(tmp_path))
    chain.rpc("anvil_setNonce", [HOT_WALLET, hex(7)])
    lagging = nodes.enter_context(rpc_node(chain.local.rpc_url, lag=3))
    good = nodes.enter_context(rpc_node(chain.local.rpc_url))
    pair = [lagging, good] if lag_first else [good, lagging]
    config = chain.config(rpc_urls=[refused_url()] + [n.url for n in pair])
    runtime = await ChainRuntime.create(payment_settings("tq", {"anvil": config}))
    try:
        env = ActivityEnvironment()
        # A bare chain name reads the wallet of the entity asking.
        env.info = replace(env.info, workflow_id=hot_wallet_workflow_id(chain.chain_id, HOT_WALLET))
        activities = ChainActivities(runtime)
        for inp in ("anvil", WalletNoncesInput(chain="anvil", address=HOT_WALLET)):
            nonces = await env.run(activities.read_wallet_nonces, inp)
            assert nonces == WalletNonces(latest=7, pending=7)
        assert lagging.calls["eth_getTransactionCount"] >= 4
        assert good.calls["eth_getTransactionCount"] >= 4
    finally:
        await runtime.aclose()


async def test_nonce_reads_of_a_wallet_outside_the_pool_are_refused(
    local_chain: LocalChain, clean_env: None
) -> None:
    runtime = await ChainRuntime.create(payment_settings("tq", {"anvil": local_chain.config()}))
    try:
        stranger = Account.create().address
        with pytest.raises(ApplicationError, match="not a hot wallet") as raised:
            await ActivityEnvironment().run(
                ChainActivities(runtime).read_wallet_nonces,
                WalletNoncesInput(chain="anvil", address=stranger),
            )
        assert raised.value.non_retryable
    finally:
        await runtime.aclose()


def test_read_wallet_nonces_input_decodes_old_and_new_payloads() -> None:
    """Histories from before pools pass a bare chain name; new callers pass a model."""
    converter = DATA_CONVERTER.payload_converter
    hint: list[Any] = [str | WalletNoncesInput]
    new = WalletNoncesInput(chain="anvil", address=HOT_WALLET)
    assert converter.from_payloads(converter.to_payloads(["anvil"]), hint) == ["anvil"]
    assert converter.from_payloads(converter.to_payloads([new]), hint) == [new]


async def test_a_node_that_stays_down_warns_once_then_logs_at_debug_until_it_answers(
    nodes: ExitStack, local_chain: LocalChain, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = nodes.enter_context(rpc_node(local_chain.rpc_url, "500"))
    good = nodes.enter_context(rpc_node(local_chain.rpc_url))
    p = provider([flaky.url, good.url], cooldown=0.0)  # no cooldown: rpc #1 is asked first
    w3 = AsyncWeb3(p)

    def lines(level: int) -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.name == "offramp.chain.failover" and r.levelno == level
        ]

    try:
        with caplog.at_level(logging.DEBUG, logger="offramp.chain.failover"):
            for _ in range(5):
                assert await w3.eth.block_number >= 0
            assert lines(logging.WARNING) == ["rpc #1 failed: HTTP 500"]
            assert lines(logging.DEBUG) == ["rpc #1 failed: HTTP 500"] * 4
            flaky.mode = "forward"
            await w3.eth.block_number
            assert lines(logging.INFO) == ["rpc #1 answers again"]
            flaky.mode = "500"  # down again: a new warning
            await w3.eth.block_number
            assert lines(logging.WARNING) == ["rpc #1 failed: HTTP 500"] * 2
    finally:
        await p.disconnect()
