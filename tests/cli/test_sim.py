"""`offramp sim serve` runs the simulator against a chain; `offramp sim create-order` creates an
order that the public order-status route then serves."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import httpx

from offramp.devstack.chain import LocalChain
from offramp.devstack.processes import ManagedProcess, free_port
from offramp.providers.kado.models import parse_envelope
from offramp.simulator.process import wait_simulator_ready
from tests.cli.conftest import Cli, base_env


async def test_sim_serve_and_create_order(local_chain: LocalChain, tmp_path: Path) -> None:
    port = free_port()
    serve = ManagedProcess(
        "sim",
        [
            sys.executable,
            "-m",
            "offramp",
            "sim",
            "serve",
            "--port",
            str(port),
            "--rpc-url",
            local_chain.rpc_url,
            "--token-address",
            local_chain.token_address,
        ],
        tmp_path / "sim.log",
    ).start()
    cli = Cli(base_env())
    url = f"http://127.0.0.1:{port}"
    try:
        wait_simulator_ready(serve)
        created = await cli(
            "sim", "create-order", "--url", url, "--amount", "12.345678", "--user-ref", "u-7"
        )
        assert created.code == 0, created.err
        _, order_id, _, deposit = created.out.split()
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.get(f"{url}/v2/public/orders/{order_id}")
        order = parse_envelope(response.content).data
        assert order["payAmount"]["amount"] == Decimal("12.345678")
        assert order["userRef"] == "u-7" and order["depositAddress"] == deposit

        bad = await cli("sim", "create-order", "--url", url, "--amount", "lots")
        assert bad.code == 2 and "amount" in bad.error_line
    finally:
        serve.stop()

    down = await cli("sim", "create-order", "--url", url)
    assert down.code == 1 and "cannot reach the simulator" in down.error_line
