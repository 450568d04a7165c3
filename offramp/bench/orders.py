"""N concurrent sell orders end to end: simulator order -> workflow -> payment -> settlement,
checked on chain. Optionally with the Temporal server killed twice mid-run."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from statistics import median
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

from offramp.bench import pool, tracking
from offramp.bench.common import Bench, bounded, wait_and_time
from offramp.bench.figures import Row
from offramp.bench.onchain import ChainReader, audit
from offramp.bench.stats import Outage, longest_stall
from offramp.chain.models import payment_workflow_id
from offramp.devstack.chain import TOKEN_DECIMALS
from offramp.orders.models import (
    WORKFLOW_TYPE,
    SellOrderInput,
    SellOrderResult,
    Stage,
    order_payment_id,
    workflow_id_for,
)
from offramp.orders.starter import start_sell_order
from offramp.providers import DEFAULT_PROVIDER
from offramp.simulator.admin import SimulatorAdmin

USER_REF = "bench-user"
# The local stack is quick: poll the provider often (production defaults: 5 s growing to 1 min).
POLL_INITIAL = timedelta(seconds=1)
POLL_MAX = timedelta(seconds=2)


@dataclass(frozen=True)
class BenchOrder:
    order_id: str
    deposit_address: str
    base_units: int


@dataclass(frozen=True)
class ActivityCounts:
    """Activities one real order schedules, in the order workflow and in its payment child."""

    order: int
    payment: int


def order_amount(i: int) -> Decimal:
    """Distinct small USDC amounts (under any cap or review threshold), exact."""
    return Decimal(1) + Decimal(i % 1000) / 1000


async def create_orders(bench: Bench, count: int, label: str, **fields: object) -> list[BenchOrder]:
    """`fields`: more of the simulator's order fields (a webhook URL, a settlement delay)."""
    async with SimulatorAdmin(bench.stack.simulator_url, timeout_seconds=60) as admin:

        def create(i: int) -> Callable[[], Awaitable[Any]]:
            return lambda: admin.create_order(
                order_id=f"bench-{bench.tag}-{label}-{i:05d}",
                asset="USDC",
                amount=order_amount(i),
                user_ref=USER_REF,
                # Open for the whole scenario: a queue of thousands through few wallets outlasts
                # the simulator's default 30 minutes (the engine then refuses to pay late:
                # tests/workflows/test_payment_deadline.py), and the bench measures throughput.
                expires_in_seconds=bench.limit(count) * 2,
                **fields,
            )

        created = await bounded(create(i) for i in range(count))
    return [BenchOrder(c.order_id, c.deposit_address, c.expected_base_units or 0) for c in created]


async def start_orders(bench: Bench, orders: list[BenchOrder], **options: Any) -> None:
    """`options`: order input fields over the bench's (webhooks, poll intervals)."""

    def start(order: BenchOrder) -> Callable[[], Awaitable[Any]]:
        fields: dict[str, Any] = {
            "poll_initial_interval": POLL_INITIAL,
            "poll_max_interval": POLL_MAX,
            **options,
        }
        request = SellOrderInput(
            order_id=order.order_id,
            user_ref=USER_REF,
            max_amount=Decimal(order.base_units).scaleb(-TOKEN_DECIMALS),
            **fields,
        )
        return lambda: start_sell_order(bench.client, request, task_queue=bench.stack.task_queue)

    await bounded(start(o) for o in orders)


async def results(bench: Bench, closed: list[tracking.Closed]) -> dict[str, SellOrderResult]:
    """The result of every order that completed (failed/terminated ones have none)."""
    done = [c for c in closed if c.status is WorkflowExecutionStatus.COMPLETED]

    def fetch(c: tracking.Closed) -> Callable[[], Awaitable[SellOrderResult]]:
        handle: WorkflowHandle[Any, SellOrderResult] = bench.client.get_workflow_handle(
            c.workflow_id, result_type=SellOrderResult
        )
        return lambda: tracking.retrying(handle.result)

    fetched = await bounded(fetch(c) for c in done)
    return {r.order_id: r for r in fetched}


def outcome_counts(
    closed: list[tracking.Closed], by_id: dict[str, SellOrderResult]
) -> Counter[str]:
    counts: Counter[str] = Counter(r.outcome.value for r in by_id.values())
    for c in closed:
        if c.status is not WorkflowExecutionStatus.COMPLETED:
            counts[c.status.name] += 1
    return counts


def check_chain(
    reader: ChainReader,
    orders: list[BenchOrder],
    by_id: dict[str, SellOrderResult],
    wallets: list[str],
    start_block: int,
    nonces_before: dict[str, int],
) -> str:
    """Every order is a happy one: each got exactly its amount once, unless it ended without
    signing anything (then it got nothing); an order left open counts as unpaid. Each wallet's
    nonces in the run are contiguous and used once."""
    expected: dict[str, int] = {}
    nothing: list[str] = []
    for order in orders:
        result = by_id.get(order.order_id)
        if result is not None and not result.tx_hashes:
            nothing.append(order.deposit_address)
        else:
            expected[order.deposit_address] = order.base_units
    end_block = reader.head()
    senders = {w.lower() for w in wallets}
    transfers = [t for t in reader.token_transfers(start_block, end_block) if t.sender in senders]
    verdict = audit(
        expected,
        nothing,
        transfers,
        reader.wallet_txs(wallets, start_block, end_block),
        nonces_before,
        reader.nonces(wallets),
    )
    return verdict.summary()


async def activity_counts(
    bench: Bench, by_id: dict[str, SellOrderResult], sample: int = 9
) -> ActivityCounts | None:
    """Activities of a settled order and of its payment child: the median over a few orders (an
    order polls once more when it sees one more provider status change)."""
    settled = sorted(o for o, r in by_id.items() if r.outcome is Stage.SETTLED)[:sample]
    if not settled:
        return None
    scheduled = EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED

    async def count(workflow_id: str) -> int:
        history = await tracking.retrying(
            bench.client.get_workflow_handle(workflow_id).fetch_history
        )
        return sum(1 for e in history.events if e.event_type == scheduled)

    orders = [await count(workflow_id_for(o)) for o in settled]
    payments = [
        await count(payment_workflow_id(order_payment_id(DEFAULT_PROVIDER, o))) for o in settled
    ]
    return ActivityCounts(order=round(median(orders)), payment=round(median(payments)))


async def kill_server_twice(
    bench: Bench, since_query: str, count: int, down_seconds: float
) -> list[Outage]:
    """SIGKILL the dev server once a third and again once two thirds of the orders closed (or
    after a bound), down `down_seconds` each time, restarted on the same SQLite file."""
    outages: list[Outage] = []
    closed_query = f"{since_query} AND ExecutionStatus != 'Running'"
    for fraction in (1 / 3, 2 / 3):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + bench.limit(count) / 3
        while loop.time() < deadline:
            if await tracking.count(bench.client, closed_query) >= count * fraction:
                break
            await asyncio.sleep(tracking.POLL_SECONDS)
        killed = bench.stack.kill_temporal()
        bench.log(f"  server SIGKILLed at {killed:%H:%M:%S}; down {down_seconds:.0f} s")
        await asyncio.sleep(down_seconds)
        outage = await asyncio.to_thread(bench.stack.restart_temporal, killed)
        bench.log(f"  server restarted at {outage.restarted:%H:%M:%S}")
        outages.append(outage)
    return outages


@dataclass
class Batch:
    """A batch of orders run end to end: its row, what closed, and their results."""

    row: Row
    orders: list[BenchOrder]
    closed: list[tracking.Closed]
    by_id: dict[str, SellOrderResult]


async def run_batch(
    bench: Bench,
    name: str,
    count: int,
    *,
    label: str,
    replicas: int = 1,
    wallets: int = 1,
    kill_server: bool = False,
    down_seconds: float = 20.0,
    order_fields: dict[str, Any] | None = None,
    input_options: dict[str, Any] | None = None,
) -> Batch:
    """`count` orders started at once on fresh workers, followed until closed (bounded), with
    their outcomes and the on-chain audit. `order_fields`: more simulator order fields;
    `input_options`: order input fields over the bench's."""
    pay_from = pool.pool_wallets(wallets)
    pool.fund(bench.stack.chain, pay_from)
    bench.log(f"{name}: starting workers, creating {count} orders at the simulator")
    bench.stack.start_engine_workers(pay_from, replicas)
    orders = await create_orders(bench, count, label, **(order_fields or {}))
    reader = ChainReader(bench.stack.info.rpc_url, bench.stack.chain.token_address)
    addresses = [w.address for w in pay_from]
    start_block, nonces_before = reader.head(), reader.nonces(addresses)
    since = bench.now()
    await start_orders(bench, orders, **(input_options or {}))
    bench.log(f"  {count} orders started")
    faults = None
    if kill_server:
        query = tracking.scenario_query(WORKFLOW_TYPE, since)
        faults = asyncio.create_task(kill_server_twice(bench, query, count, down_seconds))
    try:
        row, closed = await wait_and_time(bench, name, "orders/s", WORKFLOW_TYPE, since, count)
        outages = await faults if faults is not None else []
    finally:
        if faults is not None:
            faults.cancel()
    by_id = await results(bench, closed)
    row.outcomes = outcome_counts(closed, by_id)
    row.chain = await asyncio.to_thread(
        check_chain, reader, orders, by_id, addresses, start_block, nonces_before
    )
    if outages:
        stall = longest_stall([c.close for c in closed], outages)
        row.notes.append(
            f"longest stall after a restart: {stall:.1f} s "
            f"({len(outages)} kills, {down_seconds:.0f} s down each)"
        )
    return Batch(row, orders, closed, by_id)


async def run_orders(
    bench: Bench,
    count: int,
    *,
    replicas: int = 1,
    wallets: int = 1,
    kill_server: bool = False,
    down_seconds: float = 20.0,
) -> tuple[Row, ActivityCounts | None]:
    """`count` orders started at once; the row, and the activities one real order used."""
    name = f"orders{' server-kill x2' if kill_server else ''} ({replicas} worker"
    name += f"{'s' if replicas > 1 else ''}, {wallets} wallet{'s' if wallets > 1 else ''})"
    batch = await run_batch(
        bench,
        name,
        count,
        label="kill" if kill_server else f"o{count}w{replicas}",
        replicas=replicas,
        wallets=wallets,
        kill_server=kill_server,
        down_seconds=down_seconds,
    )
    return batch.row, await activity_counts(bench, batch.by_id)
