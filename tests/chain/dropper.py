"""A node that keeps losing a payment's transactions (anvil_dropTransaction on every hash of the
payment that the node knows), for the history-bound test and its recorded history."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.chain.support import PayChain, payment_state


class Dropper:
    def __init__(self, chain: PayChain, handle: Any) -> None:
        self.chain, self.handle, self.drops = chain, handle, 0

    async def run(self) -> None:
        """Until cancelled."""
        while True:
            state = await payment_state(self.handle)
            for tx_hash in state.tx_hashes:
                if self.chain.tx_known(tx_hash):
                    self.chain.rpc("anvil_dropTransaction", [tx_hash])
                    self.drops += 1
            await asyncio.sleep(0.05)
