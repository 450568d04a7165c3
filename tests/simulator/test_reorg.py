"""A deposit that a reorg removes is forgotten; the order waits again and settles on the new chain.

Uses its own anvil (evm_snapshot/evm_revert rewrites history, which the shared chain must not see).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from offramp.devstack.chain import LocalChain, anvil_process, mint, prepare_chain, web3_for
from offramp.devstack.processes import free_port
from offramp.simulator.admin import SimulatorAdmin
from offramp.simulator.process import simulator_process, wait_simulator_ready
from tests.simulator.conftest import Depositor


@pytest.fixture
def own_chain(tmp_path: Path) -> Iterator[LocalChain]:
    port = free_port()
    proc = anvil_process(port, tmp_path / "anvil.log").start()
    try:
        rpc_url = f"http://127.0.0.1:{port}"
        proc.wait_until(lambda: web3_for(rpc_url).eth.chain_id > 0, 30, "JSON-RPC")
        yield prepare_chain(rpc_url)
    finally:
        proc.stop()


@pytest.fixture
def own_simulator(tmp_path: Path, own_chain: LocalChain) -> Iterator[str]:
    port = free_port()
    proc = simulator_process(
        port,
        tmp_path / "simulator.log",
        rpc_url=own_chain.rpc_url,
        token_address=own_chain.token_address,
        data_file=tmp_path / "simulator.json",
        extra_args=("--poll-interval", "0.1", "--settlement-delay", "0.2"),
    ).start()
    try:
        wait_simulator_ready(proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()


async def test_reorged_deposit_is_forgotten(own_chain: LocalChain, own_simulator: str) -> None:
    w3 = web3_for(own_chain.rpc_url)
    account: LocalAccount = Account.create()
    w3.provider.make_request("anvil_setBalance", [account.address, hex(10**21)])  # type: ignore[arg-type]
    mint(w3, own_chain.token_address, account.address, 100 * 10**6)
    depositor = Depositor(w3, account, own_chain.token_address)

    async with SimulatorAdmin(own_simulator) as admin:
        # Four confirmations: the deposit is seen but cannot settle before the reorg.
        created = await admin.create_order(amount="6", confirmations=4)
        snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
        depositor.send_token(created.deposit_address, 6_000_000)
        await admin.wait_for_phase(created.order_id, "deposit_seen")

        assert w3.provider.make_request("evm_revert", [snapshot])["result"] is True  # type: ignore[arg-type]
        for _ in range(3):  # a longer chain without the deposit
            w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        view = await admin.wait_for_phase(created.order_id, "awaiting_deposit")
        assert view.state["deposits"] == []
        assert view.data["transferStatus"] == "uninitiated"

        # Paid again on the new chain: it settles.
        depositor.send_token(created.deposit_address, 6_000_000)
        for _ in range(3):
            w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        view = await admin.wait_for_phase(created.order_id, ["settled", "failed"])
        assert view.phase == "settled", view.state
        assert len(view.state["deposits"]) == 1
