"""`offramp dev` end to end: everything comes up, Ctrl-C/SIGTERM leaves no process behind, and a
workflow started before a restart of the stack is still there after it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from offramp.config import DEFAULT_DEPLOYMENT_NAME, EngineSettings
from offramp.converter import DATA_CONVERTER
from offramp.devstack.chain import HOT_WALLET, expected_token_address, token_contract, web3_for
from offramp.devstack.processes import ManagedProcess, free_port
from offramp.devstack.stack import READY_LINE
from offramp.simulator.admin import SimulatorAdmin
from worker import versioning

pytestmark = pytest.mark.stack


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


HOT_WALLET_KEY_ENV = "OFFRAMP_HOT_WALLET_PRIVATE_KEY"


def environment(pid: int) -> set[str]:
    """The names of the variables in a process's environment."""
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return {entry.split(b"=", 1)[0].decode() for entry in raw.split(b"\0") if entry}


def processes_mentioning(text: str) -> list[int]:
    """pids whose command line or environment mentions `text` (what `ps e` would show)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or not alive(int(proc.name)):
            continue
        try:
            blob = (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
        except OSError:
            continue
        if text.encode() in blob:
            found.append(int(proc.name))
    return found


class Stack:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.ports = {
            name: free_port() for name in ("temporal", "ui", "anvil", "simulator", "webhooks")
        }
        self.proc: ManagedProcess | None = None

    def start(self) -> dict[str, int]:
        argv = [sys.executable, "-m", "offramp", "dev", "--data-dir", str(self.data_dir)]
        for name, port in self.ports.items():
            argv += [f"--{name}-port", str(port)]
        self.proc = ManagedProcess("stack", argv, self.data_dir.parent / "stack.log").start()
        self.proc.wait_for_log(READY_LINE, timeout=120)
        pids: dict[str, int] = json.loads((self.data_dir / "stack.json").read_text())["pids"]
        return pids

    def interrupt(self, sig: int) -> int | None:
        assert self.proc is not None and self.proc.pid is not None
        # Like Ctrl-C in a terminal or `kill`: the signal reaches the supervisor, which must
        # stop its children itself (they run in their own sessions).
        os.kill(self.proc.pid, sig)
        deadline = time.monotonic() + 60
        while self.proc.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.proc.stop()

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()


async def wait_listed(client: Client, workflow_id: str) -> bool:
    """Visibility is eventually consistent: poll the list, bounded."""
    try:
        async with asyncio.timeout(30):
            while True:
                async for wf in client.list_workflows(f"WorkflowId = '{workflow_id}'"):
                    if wf.id == workflow_id:
                        return True
                await asyncio.sleep(0.2)
    except TimeoutError:
        return False


async def webhooks_reach_the_receiver(stack: Stack) -> None:
    """The simulator signs its webhooks with the secret the receiver verifies: a new order's
    `order.created` is verified and noted (its workflow starts after it: nothing is woken)."""
    async with SimulatorAdmin(f"http://127.0.0.1:{stack.ports['simulator']}") as admin:
        await admin.create_order()
    health_url = f"http://127.0.0.1:{stack.ports['webhooks']}/health"
    async with httpx.AsyncClient(timeout=10) as http, asyncio.timeout(60):
        while True:
            health = (await http.get(health_url)).json()
            if health["requests"].get("kado noted", 0) >= 1:
                break
            await asyncio.sleep(0.2)
    assert "kado unauthenticated" not in health["requests"]
    assert health["wakes"]["queued"] == 0


async def test_stack_up_down_and_restart(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "data")
    try:
        pids = stack.start()
        assert set(pids) == {"temporal", "anvil", "webhooks", "simulator", "worker", "signer"}
        assert all(alive(pid) for pid in pids.values())

        async with httpx.AsyncClient(timeout=10) as http:
            ui = await http.get(f"http://127.0.0.1:{stack.ports['ui']}/")
        assert ui.status_code == 200
        await webhooks_reach_the_receiver(stack)

        w3 = web3_for(f"http://127.0.0.1:{stack.ports['anvil']}")
        token = token_contract(w3, expected_token_address())
        assert w3.eth.get_code(expected_token_address())
        assert token.functions.balanceOf(HOT_WALLET).call() > 0
        assert w3.eth.get_balance(HOT_WALLET) > 0

        client = await Client.connect(
            f"127.0.0.1:{stack.ports['temporal']}", data_converter=DATA_CONVERTER
        )
        # Both roles run; only the signer holds the key; their build is the current version.
        assert HOT_WALLET_KEY_ENV not in environment(pids["worker"])
        assert HOT_WALLET_KEY_ENV in environment(pids["signer"])
        desc = await versioning.describe(client, DEFAULT_DEPLOYMENT_NAME)
        assert versioning.current_build_id(desc) == versioning.build_id(EngineSettings())
        workflow_id = f"restart-probe-{uuid.uuid4()}"
        # No worker polls this queue: the run simply stays open across the restart.
        await client.start_workflow(
            "RestartProbe", id=workflow_id, task_queue=f"probe-{uuid.uuid4()}"
        )
        assert await wait_listed(client, workflow_id)

        assert stack.interrupt(signal.SIGINT) == 0
        for name, pid in pids.items():
            assert not alive(pid), f"{name} (pid {pid}) still running after Ctrl-C"
        assert processes_mentioning(str(stack.data_dir)) == []

        pids = stack.start()
        client = await Client.connect(
            f"127.0.0.1:{stack.ports['temporal']}", data_converter=DATA_CONVERTER
        )
        assert await wait_listed(client, workflow_id)
        # The chain survived too: same token, still funded, no redeploy needed.
        w3 = web3_for(f"http://127.0.0.1:{stack.ports['anvil']}")
        assert (
            token_contract(w3, expected_token_address()).functions.balanceOf(HOT_WALLET).call() > 0
        )

        assert stack.interrupt(signal.SIGTERM) == 0
        for name, pid in pids.items():
            assert not alive(pid), f"{name} (pid {pid}) still running after SIGTERM"
        assert processes_mentioning(str(stack.data_dir)) == []
    finally:
        stack.kill()
