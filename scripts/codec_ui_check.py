"""Does the Web UI, pointed at the codec server, show an encrypted order's input decoded?

A scripted browser check (headless Chromium from Debian's `chromium` package, driven over the
DevTools protocol): a dev server whose UI has `--ui-codec-endpoint`, `offramp codec-server`, and
a SellOrder started with an encrypting client (no worker: its input is all the UI needs). Prints
what the UI's workflow page shows. `--no-codec` runs the same without the codec endpoint.

    .venv/bin/python scripts/codec_ui_check.py [--no-codec]
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
from temporalio.client import Client

from offramp.codec import parse_key_ring
from offramp.converter import encrypting_converter
from offramp.devstack import binaries
from offramp.devstack.processes import free_port
from offramp.orders.models import SellOrderInput

ROOT = Path(__file__).resolve().parent.parent
TOKEN = f"ui-check-{uuid.uuid4().hex}"
KEYS = f"k1:{base64.b64encode(os.urandom(32)).decode()}"
USER_REF = f"user-ui-check-{uuid.uuid4().hex[:6]}"
AMOUNT = "777.77"


async def page_text(devtools_port: int, url: str, needle: str, limit: float = 60.0) -> str:
    """The page's visible text once it contains `needle` (or after `limit` seconds)."""
    async with aiohttp.ClientSession() as http:
        targets = await _devtools_targets(http, devtools_port)
        page = next(t for t in targets if t["type"] == "page")
        async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            calls = iter(range(1, 1_000_000))

            async def call(method: str, **params: Any) -> dict[str, Any]:
                call_id = next(calls)
                await ws.send_json({"id": call_id, "method": method, "params": params})
                while True:
                    message: dict[str, Any] = await ws.receive_json()
                    if message.get("id") == call_id:
                        return message

            await call("Page.navigate", url=url)
            text, deadline = "", time.monotonic() + limit
            while needle not in text and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                reply = await call("Runtime.evaluate", expression="document.body.innerText")
                text = str(reply.get("result", {}).get("result", {}).get("value") or "")
            return text


async def _devtools_targets(http: aiohttp.ClientSession, port: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while True:
        try:
            async with http.get(f"http://127.0.0.1:{port}/json") as response:
                targets: list[dict[str, Any]] = await response.json()
                return targets
        except aiohttp.ClientError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


async def connect(port: int) -> Client:
    deadline = time.monotonic() + 60
    while True:
        try:
            return await Client.connect(f"127.0.0.1:{port}")
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


@dataclass(frozen=True)
class Ports:
    temporal: int
    ui: int
    codec: int
    devtools: int


async def check(with_codec: bool, ports: Ports) -> bool:
    plain = await connect(ports.temporal)
    converter = encrypting_converter(parse_key_ring(KEYS, "OFFRAMP_CODEC_KEYS"))
    client = Client(plain.service_client, namespace="default", data_converter=converter)
    order_id = f"uicheck{uuid.uuid4().hex[:8]}"
    request = SellOrderInput(order_id=order_id, user_ref=USER_REF, max_amount=Decimal(AMOUNT))
    handle = await client.start_workflow(
        "SellOrderWorkflow", request, id=f"kado-sell-{order_id}", task_queue="nobody-polls"
    )
    url = (
        f"http://localhost:{ports.ui}/namespaces/default/workflows/{handle.id}/"
        f"{handle.result_run_id}/history"
    )
    # Without the codec the UI shows the ciphertext (base64): wait for that instead.
    history = await plain.get_workflow_handle(handle.id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    ciphertext = base64.b64encode(started.input.payloads[0].data).decode()[:24]
    text = await page_text(ports.devtools, url, USER_REF if with_codec else ciphertext)
    shown = USER_REF in text and AMOUNT in text
    print(f"UI {'with' if with_codec else 'without'} the codec endpoint: {url}")
    print(f"  user ref and amount shown decoded: {shown}; ciphertext shown: {ciphertext in text}")
    lines = text.splitlines()
    at = next((i for i, line in enumerate(lines) if line.strip() == "Input"), None)
    if at is not None:
        print("  Input panel: " + " ".join(line.strip() for line in lines[at + 1 : at + 6]))
    return shown


def start(stack: ExitStack, args: list[str], log: Path, **options: Any) -> None:
    out = stack.enter_context(log.open("ab"))
    proc = subprocess.Popen(args, stdout=out, stderr=out, **options)

    def stop() -> None:
        proc.terminate()
        proc.wait(30)

    stack.callback(stop)


def main() -> int:
    with_codec = "--no-codec" not in sys.argv[1:]
    ports = Ports(free_port(), free_port(), free_port(), free_port())
    server = [str(binaries.temporal_cli()), "server", "start-dev", "--ip", "127.0.0.1",
              "--port", str(ports.temporal), "--ui-port", str(ports.ui),
              "--log-level", "error"]  # fmt: skip
    if with_codec:
        server += ["--ui-codec-endpoint", f"http://127.0.0.1:{ports.codec}/{TOKEN}"]
    codec = [sys.executable, "-m", "offramp", "codec-server", "--port", str(ports.codec),
             "--cors-origin", f"http://localhost:{ports.ui}"]  # fmt: skip
    env = {**os.environ, "OFFRAMP_CODEC_KEYS": KEYS, "OFFRAMP_CODEC_SERVER_TOKEN": TOKEN}
    with tempfile.TemporaryDirectory(prefix="codec-ui-") as tmp, ExitStack() as stack:
        log = Path(tmp) / "processes.log"
        chrome = ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
                  "--disable-dev-shm-usage", f"--remote-debugging-port={ports.devtools}",
                  f"--user-data-dir={tmp}/profile", "about:blank"]  # fmt: skip
        start(stack, server, log)
        start(stack, codec, log, env=env, cwd=ROOT)
        start(stack, chrome, log)
        shown = asyncio.run(check(with_codec, ports))
    return 0 if shown == with_codec else 1


if __name__ == "__main__":
    raise SystemExit(main())
