"""The webhooks scenario: signed Kado events at a fixed rate (open loop) into a receiver process,
for orders whose workflows exist (and 10% that do not); reply latency percentiles and errors.

The target workflows run on a task queue no worker polls: each wake lands in its history as a
signal, which is all the receiver does, so the figures are the receiver's and the signal path's,
not the engine's. The receiver runs with its default settings (one wake per order per second).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from pydantic import SecretStr

from offramp.bench.common import Bench, bounded, terminate
from offramp.bench.figures import Row
from offramp.bench.stats import Latencies, percentile
from offramp.devstack.processes import ManagedProcess, free_port
from offramp.orders.models import WORKFLOW_TYPE, workflow_id_for
from offramp.webhooks.app import route_path
from offramp.webhooks.process import wait_webhooks_ready, webhooks_process
from offramp.webhooks.signatures import sign_kado

UNKNOWN_SHARE = 10  # one event in this many names an order without a workflow
CONNECTIONS = 256  # keep-alive connections of the load generator
IDLE_WAIT_SECONDS = 120.0


@dataclass
class Load:
    latencies: list[float] = field(default_factory=list)  # seconds per reply
    statuses: Counter[str] = field(default_factory=Counter)
    lag: float = 0.0  # how far behind its schedule the generator fell (worst), s
    receiver_cpu: float = math.nan  # CPU seconds the receiver used while answering
    generator_cpu: float = math.nan  # CPU seconds this (the sending) process used meanwhile


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU a process has used (Linux /proc): the receiver's cost per request,
    which, unlike its latency, does not depend on how busy the shared machine is."""
    if pid is None:
        return math.nan
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _event(order_id: str) -> bytes:
    payload = {
        "id": f"evt-{uuid.uuid4()}",
        "resource": "order",
        "type": "order.updated",
        # A status the receiver wakes for (it answers the in-between ones `noted`, no wake).
        "data": {"id": order_id, "transferStatus": "settled"},
    }
    return json.dumps(payload).encode()


async def _send(
    http: aiohttp.ClientSession, url: str, order_id: str, secret: SecretStr, load: Load
) -> None:
    body = _event(order_id)
    headers = {"Content-Type": "application/json", **sign_kado(body, secret, int(time.time()))}
    began = time.perf_counter()
    try:
        async with http.post(url, data=body, headers=headers) as reply:
            await reply.read()
            status = str(reply.status)
    except (aiohttp.ClientError, TimeoutError) as exc:
        status = type(exc).__name__
    load.latencies.append(time.perf_counter() - began)
    load.statuses[status] += 1


async def _blast(
    url: str, secret: SecretStr, pick: Callable[[int], str], rate: int, seconds: float
) -> Load:
    """`rate` requests per second for `seconds`, each sent at its scheduled time (open loop: a
    slow reply does not slow the sending)."""
    load = Load()
    total = int(rate * seconds)
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
        tasks: set[asyncio.Task[None]] = set()
        start = time.perf_counter()
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                load.lag = max(load.lag, -delay)
            task = asyncio.create_task(_send(http, url, pick(i), secret, load))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
    return load


async def _start_targets(bench: Bench, count: int) -> list[str]:
    """`count` open order workflows (never run: no worker polls their queue)."""
    queue = f"bench-webhooks-idle-{bench.tag}"
    order_ids = [f"bench-wh-{bench.tag}-{i}" for i in range(count)]

    def start(order_id: str) -> Callable[[], Awaitable[None]]:
        async def call() -> None:
            await bench.client.start_workflow(
                WORKFLOW_TYPE,
                {"order_id": order_id},
                id=workflow_id_for(order_id),
                task_queue=queue,
            )

        return call

    await bounded(start(o) for o in order_ids)
    return order_ids


async def _health(http: aiohttp.ClientSession, url: str) -> dict[str, object]:
    async with http.get(url) as reply:
        result: dict[str, object] = await reply.json()
        return result


@dataclass(frozen=True)
class RunningReceiver:
    url: str  # http://127.0.0.1:<port>
    secret: SecretStr  # the simulator signs with it too
    process: ManagedProcess

    def route(self, provider: str) -> str:
        return f"{self.url}{route_path(provider)}"


@contextmanager
def receiver(bench: Bench) -> Iterator[RunningReceiver]:
    """A webhook receiver process on a free port for the block's duration, with the stack's
    shared secret and default settings (one wake per order per second)."""
    stack = bench.stack
    port = free_port()
    process = webhooks_process(
        port,
        stack.logs / f"webhooks-{bench.tag}.log",
        kado_secret_file=stack.webhook_secret_file,
        env={"TEMPORAL_ADDRESS": stack.info.temporal_address, "TEMPORAL_NAMESPACE": "default"},
    ).start()
    try:
        wait_webhooks_ready(process)
        secret = SecretStr(stack.webhook_secret_file.read_text().strip())
        yield RunningReceiver(f"http://127.0.0.1:{port}", secret, process)
        if not process.running():
            raise RuntimeError(f"the receiver exited:\n{process.log_tail()}")
    finally:
        process.stop()


async def pending_wakes(base_url: str, log: Callable[[str], None]) -> dict[str, object]:
    """The receiver's health once its wakes are all delivered (bounded wait)."""
    async with aiohttp.ClientSession() as http:
        deadline = time.monotonic() + IDLE_WAIT_SECONDS
        health = await _health(http, f"{base_url}/health")
        while health["pending"] and time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            health = await _health(http, f"{base_url}/health")
            log(f"  webhooks: {health['pending']} wakes still pending")
    return health


async def run_webhooks(bench: Bench, rate: int, seconds: float, orders: int = 200) -> Row:
    targets: list[str] = []
    with receiver(bench) as running:
        try:
            targets = await _start_targets(bench, orders)
            unknown = [f"bench-wh-{bench.tag}-unknown-{i}" for i in range(max(1, orders // 10))]

            def pick(i: int) -> str:
                if i % UNKNOWN_SHARE == 0:
                    return unknown[(i // UNKNOWN_SHARE) % len(unknown)]
                return targets[i % len(targets)]

            bench.log(f"  webhooks: {rate}/s for {seconds:.0f} s to {orders} orders (+unknown)")
            pid = running.process.pid
            began, cpu_before, own_before = time.monotonic(), cpu_seconds(pid), time.process_time()
            load = await _blast(running.route("kado"), running.secret, pick, rate, seconds)
            wall = time.monotonic() - began
            load.receiver_cpu = cpu_seconds(pid) - cpu_before
            load.generator_cpu = time.process_time() - own_before
            health = await pending_wakes(running.url, bench.log)
        finally:
            if targets:
                await terminate(bench, [workflow_id_for(o) for o in targets])
    return _row(load, wall, rate, health)


def _row(load: Load, wall: float, rate: int, health: dict[str, object]) -> Row:
    ok = load.statuses.get("200", 0)
    errors = sum(n for status, n in load.statuses.items() if status != "200")
    values = load.latencies
    ms = {p: percentile(values, p / 100) * 1000 for p in (50, 95, 99)}
    row = Row(
        scenario=f"webhooks {rate}/s",
        count=len(values),
        rate=len(values) / wall if wall > 0 else math.nan,
        unit="replies/s",
        seconds=wall,
        latency=Latencies(
            p50=percentile(values, 0.5), p95=percentile(values, 0.95), max=max(values, default=0)
        ),
        # "COMPLETED": answered 2xx; anything else (a 4xx/5xx status, a client error) is not clean.
        outcomes=Counter(
            {"COMPLETED": ok, **{f"reply {s}": n for s, n in load.statuses.items() if s != "200"}}
        ),
    )
    row.notes.append(
        f"reply latency ms: p50 {ms[50]:.1f}, p95 {ms[95]:.1f}, p99 {ms[99]:.1f}, "
        f"max {max(values, default=0) * 1000:.1f}; errors {errors}; "
        f"generator fell behind its schedule by at most {load.lag * 1000:.0f} ms"
    )
    per_request = load.receiver_cpu / len(values) * 1000 if values else math.nan
    sender = load.generator_cpu / len(values) * 1000 if values else math.nan
    row.notes.append(
        f"CPU for {len(values)} replies in {wall:.0f} s: receiver {load.receiver_cpu:.1f} s "
        f"({per_request:.2f} ms per request, wakes included), load generator "
        f"{load.generator_cpu:.1f} s ({sender:.2f} ms per request): on a shared machine the "
        "latency is mostly queueing for CPU; these are what a core can serve"
    )
    wakes, pending = health["wakes"], health["pending"]
    row.notes.append(f"receiver after the run: wakes {wakes}; pending {pending}")
    return row
