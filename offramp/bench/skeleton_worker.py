"""`python -m offramp.bench.skeleton_worker ADDRESS TASK_QUEUE`: a worker process hosting only the
skeleton, so it runs in its own process like the real worker does. Stops on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import signal
import sys

from temporalio.client import Client
from temporalio.worker import Worker

from offramp.bench.skeleton import SkeletonOrder, SkeletonPayment, noop

READY_MESSAGE = "skeleton worker ready"


async def serve(address: str, task_queue: str) -> None:
    client = await Client.connect(address, namespace="default")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[SkeletonOrder, SkeletonPayment],
        activities=[noop],
    ):
        print(READY_MESSAGE, flush=True)
        await stop.wait()


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m offramp.bench.skeleton_worker ADDRESS TASK_QUEUE", file=sys.stderr)
        return 2
    asyncio.run(serve(argv[0], argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
