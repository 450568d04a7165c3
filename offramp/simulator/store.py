"""Orders, the chain cursor and global faults, optionally persisted to a JSON data file.

The file is rewritten atomically (temp file + rename) after every change, so a killed simulator
restarts with the orders it had and resumes scanning the chain where it stopped.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from offramp.simulator.faults import FaultConfig
from offramp.simulator.orders import SimOrder

log = logging.getLogger(__name__)

DATA_FILE_VERSION = 1


class StoreState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = DATA_FILE_VERSION
    # Last block whose deposits were applied; None: start at the chain head.
    cursor: int | None = None
    # Chain id and genesis hash the cursor belongs to (a fresh chain resets the cursor).
    chain_id: int | None = None
    genesis_hash: str | None = None
    # Hashes of recently scanned blocks, to notice a reorg (the newest `KEPT_BLOCK_HASHES`).
    block_hashes: dict[int, str] = Field(default_factory=dict)
    global_faults: FaultConfig | None = None
    orders: dict[str, SimOrder] = Field(default_factory=dict)


class OrderStore:
    def __init__(self, data_file: Path | None = None) -> None:
        self.data_file = data_file
        self.state = StoreState()
        if data_file is not None and data_file.exists():
            self.state = StoreState.model_validate_json(data_file.read_bytes())
            log.info("loaded %d orders from %s", len(self.state.orders), data_file)

    @property
    def orders(self) -> dict[str, SimOrder]:
        return self.state.orders

    def get(self, order_id: str) -> SimOrder | None:
        return self.state.orders.get(order_id)

    def add(self, order: SimOrder) -> None:
        self.state.orders[order.id] = order
        self.save()

    def watched_addresses(self) -> dict[str, list[SimOrder]]:
        """Lower-case deposit address → orders still interested in deposits to it."""
        watched: dict[str, list[SimOrder]] = {}
        for order in self.state.orders.values():
            if order.watching:
                watched.setdefault(order.deposit_address.lower(), []).append(order)
        return watched

    def save(self) -> None:
        if self.data_file is None:
            return
        self.data_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.data_file.with_name(self.data_file.name + ".tmp")
        tmp.write_text(self.state.model_dump_json(indent=1))
        os.replace(tmp, self.data_file)
