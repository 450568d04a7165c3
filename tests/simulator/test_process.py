"""The simulator as its own process: standalone CLI, restart with its data file, webhooks."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from offramp.devstack.binaries import PROJECT_ROOT
from offramp.devstack.chain import LocalChain
from offramp.devstack.processes import ManagedProcess, free_port
from offramp.providers.kado.models import loads_exact, order_from_data
from offramp.simulator.admin import SimulatorAdmin
from offramp.simulator.process import simulator_process, wait_simulator_ready
from offramp.webhooks.signatures import SignatureRejected, verify_kado
from tests.simulator.conftest import Depositor

FAST = ("--poll-interval", "0.1", "--settlement-delay", "0.2")


@contextmanager
def running_simulator(
    tmp_path: Path,
    *,
    chain: LocalChain | None,
    data_file: Path | None = None,
    extra: tuple[str, ...] = FAST,
    env: dict[str, str] | None = None,
) -> Iterator[tuple[str, ManagedProcess]]:
    port = free_port()
    proc = simulator_process(
        port,
        tmp_path / f"simulator-{port}.log",
        rpc_url=chain.rpc_url if chain else None,
        token_address=chain.token_address if chain else None,
        data_file=data_file,
        extra_args=extra,
        env=env,
    ).start()
    try:
        wait_simulator_ready(proc, timeout=60)
        yield f"http://127.0.0.1:{port}", proc
    finally:
        proc.stop()


def test_cli_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "offramp.simulator", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=PROJECT_ROOT,
        check=False,
    )
    assert result.returncode == 0
    for option in ("--rpc-url", "--token-address", "--data-file", "--webhook-url"):
        assert option in result.stdout


async def test_standalone_without_a_chain_still_serves_and_expires(tmp_path: Path) -> None:
    with running_simulator(tmp_path, chain=None) as (url, _):
        async with SimulatorAdmin(url) as admin:
            created = await admin.create_order(token_address=None, native=True, asset="ETH")
            assert created.data["depositAddress"] == created.deposit_address
            await admin.patch_order(created.order_id, expires_in_seconds=0)
            await admin.wait_for_phase(created.order_id, "expired", timeout_seconds=15)


async def test_orders_survive_a_kill_and_deposits_made_while_down_are_seen(
    tmp_path: Path, local_chain: LocalChain, depositor: Depositor
) -> None:
    data_file = tmp_path / "simulator.json"
    with running_simulator(tmp_path, chain=local_chain, data_file=data_file) as (url, proc):
        async with SimulatorAdmin(url) as admin:
            created = await admin.create_order(amount="8.000001", user_ref="survivor")
            other = await admin.create_order(amount="1")
        proc.kill()  # SIGKILL: no chance to save on the way out
    saved = json.loads(data_file.read_text())
    assert created.order_id in saved["orders"] and saved["cursor"] is not None

    depositor.send_token(created.deposit_address, 8_000_001)  # while the simulator is down

    with running_simulator(tmp_path, chain=local_chain, data_file=data_file) as (url, _):
        async with SimulatorAdmin(url) as admin:
            view = await admin.wait_for_phase(created.order_id, "settled")
            assert view.state["user_ref"] == "survivor"
            assert view.state["deposit_address"] == created.deposit_address
            assert (await admin.order(other.order_id)).phase == "awaiting_deposit"


@dataclass
class Received:
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@asynccontextmanager
async def webhook_receiver() -> AsyncIterator[tuple[str, Received]]:
    received = Received()

    async def hook(request: Request) -> Response:
        received.requests.append((dict(request.headers), await request.body()))
        return Response("ok")

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=[Route("/hook", hook, methods=["POST"])]),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline and not task.done(), "receiver did not start"
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}/hook", received
    finally:
        server.should_exit = True
        await task


async def test_webhooks_are_signed_and_sent_on_each_change(
    tmp_path: Path, local_chain: LocalChain, depositor: Depositor
) -> None:
    secret = "hook-secret-not-in-logs"
    async with webhook_receiver() as (hook_url, received):
        with running_simulator(
            tmp_path,
            chain=local_chain,
            extra=(*FAST, "--webhook-url", hook_url),
            env={"OFFRAMP_SIM_WEBHOOK_SECRET": secret},
        ) as (url, proc):
            async with SimulatorAdmin(url) as admin:
                created = await admin.create_order(amount="2")
                depositor.send_token(created.deposit_address, 2_000_000)
                await admin.wait_for_phase(created.order_id, "settled")

                def statuses() -> list[str]:
                    return [
                        loads_exact(body)["data"]["transferStatus"] for _, body in received.requests
                    ]

                deadline = time.monotonic() + 30
                while "settled" not in statuses():
                    assert time.monotonic() < deadline, f"webhooks so far: {statuses()}"
                    await asyncio.sleep(0.05)
            log_text = proc.log_since_start().decode(errors="replace")

    assert statuses()[0] == "uninitiated" and statuses()[-1] == "settled"
    assert "pending" in statuses()
    for headers, body in received.requests:
        # Signed as the webhook receiver verifies: timestamp and raw body.
        verify_kado(headers, body, SecretStr(secret), now=time.time())
        with pytest.raises(SignatureRejected, match="does not match"):
            verify_kado(headers, body + b" ", SecretStr(secret), now=time.time())
        payload = loads_exact(body)
        assert set(payload) == {"id", "resource", "type", "data"}
        assert payload["resource"] == "order"
        assert order_from_data(payload["data"]).id == created.order_id
    types = [loads_exact(body)["type"] for _, body in received.requests]
    assert types[0] == "order.created" and set(types[1:]) == {"order.updated"}
    assert secret not in log_text
