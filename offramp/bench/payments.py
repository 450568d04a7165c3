"""Payment workflows only (no provider): payments/s per wallet-pool size, and the soak through one
wallet with the hot wallet's history length and continue-as-new count."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from eth_account import Account
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import WorkflowAlreadyStartedError

from offramp.bench import pool, tracking
from offramp.bench.common import Bench, bounded, wait_and_time
from offramp.bench.figures import Row
from offramp.bench.onchain import ChainReader, audit
from offramp.chain.models import (
    PaymentOutcome,
    PaymentRequest,
    hot_wallet_workflow_id,
    payment_workflow_id,
)
from offramp.devstack.chain import LOCAL_CHAIN_NAME, TOKEN_DECIMALS

PAYMENT_TYPE = "Payment"


def payment_amount(i: int) -> Decimal:
    return Decimal(1) + Decimal(i % 1000) / 1000


async def start_payments(bench: Bench, requests: list[PaymentRequest]) -> None:
    def start(request: PaymentRequest) -> Callable[[], Awaitable[Any]]:
        return lambda: bench.client.start_workflow(
            PAYMENT_TYPE,
            request,
            id=payment_workflow_id(request.payment_id),
            task_queue=bench.stack.task_queue,
            execution_timeout=timedelta(seconds=bench.limit(len(requests)) * 2),
        )

    await bounded(start(r) for r in requests)


async def feed_payments(bench: Bench, requests: list[PaymentRequest], in_flight: int) -> None:
    """A steady stream: a new payment starts as soon as one of the `in_flight` open ones closes
    (a soak is sustained load through the wallet, not one burst behind its queue cap)."""
    gate = asyncio.Semaphore(in_flight)
    timeout = timedelta(seconds=bench.limit(len(requests)) * 2)

    async def one(request: PaymentRequest) -> None:
        workflow_id = payment_workflow_id(request.payment_id)
        async with gate:
            # A retried start whose first try went through is already started.
            with suppress(WorkflowAlreadyStartedError):
                await tracking.retrying(
                    lambda: bench.client.start_workflow(
                        PAYMENT_TYPE,
                        request,
                        id=workflow_id,
                        task_queue=bench.stack.task_queue,
                        execution_timeout=timeout,
                    )
                )
            handle = bench.client.get_workflow_handle(workflow_id)
            with suppress(Exception):  # its outcome is read and judged after the scenario
                await tracking.retrying(handle.result)

    await asyncio.gather(*(one(r) for r in requests))


async def outcomes(bench: Bench, closed: list[tracking.Closed]) -> list[PaymentOutcome]:
    done = [c for c in closed if c.status is WorkflowExecutionStatus.COMPLETED]

    def fetch(c: tracking.Closed) -> Callable[[], Awaitable[PaymentOutcome]]:
        handle = bench.client.get_workflow_handle(c.workflow_id, result_type=PaymentOutcome)
        return lambda: tracking.retrying(handle.result)

    return await bounded(fetch(c) for c in done)


async def run_payments(
    bench: Bench, count: int, wallets: int, name: str, in_flight: int = 0
) -> Row:
    """`count` Payment workflows from a pool of `wallets`, all at once (or `in_flight` open at a
    time); checked on chain."""
    pay_from = pool.pool_wallets(wallets)
    pool.fund(bench.stack.chain, pay_from)
    bench.log(f"{name}: {count} payments from {wallets} wallet(s)")
    bench.stack.start_engine_workers(pay_from)
    requests = [
        PaymentRequest(
            payment_id=f"bench-{bench.tag}-{name.split()[0]}{wallets}-{i:05d}",
            chain=LOCAL_CHAIN_NAME,
            asset="USDC",
            recipient=Account.create().address,
            amount=payment_amount(i),
        )
        for i in range(count)
    ]
    reader = ChainReader(bench.stack.info.rpc_url, bench.stack.chain.token_address)
    addresses = [w.address for w in pay_from]
    start_block, nonces_before = reader.head(), reader.nonces(addresses)
    since = bench.now()
    feeder = None
    if in_flight:
        feeder = asyncio.create_task(feed_payments(bench, requests, in_flight))
    else:
        await start_payments(bench, requests)
    row, closed = await wait_and_time(bench, name, "payments/s", PAYMENT_TYPE, since, count)
    if feeder is not None:
        feeder.cancel()
        with suppress(asyncio.CancelledError):
            await feeder
        row.notes.append(f"steady feed: at most {in_flight} payments open at a time")
    paid = await outcomes(bench, closed)
    row.outcomes = Counter(o.status.value for o in paid)
    row.outcomes.update(c.status.name for c in closed if c.status.name != "COMPLETED")
    # Every payment must arrive exactly once, unless it ended without signing anything; one
    # left open counts as unpaid.
    unsigned = [o.recipient for o in paid if not o.tx_hashes]
    skip = set(unsigned)
    expected = {
        r.recipient: int(r.amount * 10**TOKEN_DECIMALS) for r in requests if r.recipient not in skip
    }

    def check() -> str:
        end = reader.head()
        senders = {a.lower() for a in addresses}
        transfers = [t for t in reader.token_transfers(start_block, end) if t.sender in senders]
        txs = reader.wallet_txs(addresses, start_block, end)
        verdict = audit(expected, unsigned, transfers, txs, nonces_before, reader.nonces(addresses))
        return verdict.summary()

    row.chain = await asyncio.to_thread(check)
    used = Counter(o.hot_wallet for o in paid if o.hot_wallet)
    if wallets > 1:
        row.notes.append(f"payments per wallet: {sorted(used.values(), reverse=True)}")
    return row


async def run_pools(bench: Bench, count: int, sizes: list[int], rows: list[Row]) -> None:
    """Payments/s for each pool size, in one run (a row appended to `rows` per size)."""
    for size in sizes:
        if size > 1 and not pool.pools_supported():
            bench.log(f"pool of {size}: skipped, ChainConfig has no hot_wallets (branch h/chain)")
            continue
        rows.append(await run_payments(bench, count, size, f"pool {size}"))
    if not pool.pools_supported():
        rows[-1].notes.append("only a pool of 1 ran: wallet pools need branch h/chain")


async def wallet_history(bench: Bench, since: datetime) -> str:
    """The first wallet's entity: runs (continue-as-new) since `since`, longest history."""
    wallet = pool.pool_wallets(1)[0].address
    entity = hot_wallet_workflow_id(bench.stack.chain.chain_id, wallet)
    runs = [
        wf async for wf in bench.client.list_workflows(f"WorkflowId = '{entity}'", page_size=1000)
    ]
    recent = [wf for wf in runs if wf.close_time is None or wf.close_time >= since]
    # Each continue-as-new starts a run; the entity's very first start is not one.
    existed_before = any(wf.start_time < since for wf in runs)
    continued = sum(1 for wf in recent if wf.start_time >= since) - (0 if existed_before else 1)
    # Visibility gives a running workflow's history length as 0: describe each run instead.
    lengths, sizes = [], []
    for wf in recent:
        described = await bench.client.get_workflow_handle(entity, run_id=wf.run_id).describe()
        info = described.raw_description.workflow_execution_info
        lengths.append(info.history_length)
        sizes.append(info.history_size_bytes)
    return (
        f"hot wallet entity: {max(continued, 0)} continue-as-new during the soak, "
        f"{len(runs)} runs in all; longest history {max(lengths, default=0)} events, "
        f"largest {max(sizes, default=0) / 1024:.0f} KiB"
    )


async def run_soak(bench: Bench, count: int, in_flight: int) -> Row:
    since = bench.now()
    row = await run_payments(bench, count, 1, "soak", in_flight)
    row.notes.append(await tracking.retrying(lambda: wallet_history(bench, since)))
    return row
