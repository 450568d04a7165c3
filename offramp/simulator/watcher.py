"""Watches the chain for deposits to the simulator's deposit addresses.

Each scan reads new blocks up to the head: ERC-20 `Transfer` logs to a watched address (from any
token contract, so a wrong token is seen too) and native value transfers in the blocks'
transactions (successful ones only). Internal native transfers made by contracts are not seen.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, cast

from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.types import FilterParams

from offramp.simulator.orders import Deposit, SimOrder
from offramp.simulator.store import OrderStore

log = logging.getLogger(__name__)

TRANSFER_TOPIC = "0x" + bytes(AsyncWeb3.keccak(text="Transfer(address,address,uint256)")).hex()
MAX_BLOCKS_PER_SCAN = 200
KEPT_BLOCK_HASHES = 256


def _address_topic(address: str) -> str:
    return "0x" + "00" * 12 + address.lower().removeprefix("0x")


def _hex(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    text = str(value)
    return text if text.startswith("0x") else "0x" + text


@dataclass(frozen=True)
class ScanResult:
    deposits: list[tuple[SimOrder, Deposit]]
    cursor: int  # last block scanned
    # Set when blocks after this one were replaced (reorg) or removed: deposits seen in them
    # must be forgotten before `deposits` (from the new blocks) are applied.
    reorg_to: int | None = None


class ChainWatcher:
    def __init__(self, rpc_url: str, store: OrderStore, timeout_seconds: float = 10.0) -> None:
        self.rpc_url = rpc_url
        self.store = store
        self.w3 = AsyncWeb3(AsyncHTTPProvider(rpc_url, request_kwargs={"timeout": timeout_seconds}))
        self.chain_id: int | None = None
        self.head: int | None = None
        self._checked_identity = False

    async def _check_identity(self) -> None:
        """A fresh chain (other chain id or genesis) invalidates the persisted cursor."""
        chain_id = await self.w3.eth.chain_id
        genesis = _hex((await self.w3.eth.get_block(0))["hash"])
        state = self.store.state
        if state.cursor is not None and (
            state.chain_id != chain_id or state.genesis_hash != genesis
        ):
            log.warning(
                "chain changed (id %s, genesis %s): rescanning from head", chain_id, genesis
            )
            state.cursor = None
            state.block_hashes = {}
        state.chain_id, state.genesis_hash = chain_id, genesis
        self.chain_id = chain_id
        self._checked_identity = True

    async def scan(self) -> ScanResult:
        if not self._checked_identity:
            await self._check_identity()
        head = await self.w3.eth.block_number
        self.head = head
        state = self.store.state
        cursor = state.cursor
        if cursor is None:
            state.block_hashes = {head: await self._hash(head)}
            return ScanResult([], head)
        reorg_to = await self._fork_point(head)
        if reorg_to is not None:
            log.warning("reorg: blocks after %d changed; rescanning from there", reorg_to)
            cursor = min(cursor, reorg_to)
            state.block_hashes = {n: h for n, h in state.block_hashes.items() if n <= cursor}
        found: list[tuple[SimOrder, Deposit]] = []
        while cursor < head:
            start, end = cursor + 1, min(head, cursor + MAX_BLOCKS_PER_SCAN)
            watched = self.store.watched_addresses()
            if watched:
                found += await self._scan_range(start, end, watched)
            cursor = end
        if cursor not in state.block_hashes:
            state.block_hashes[cursor] = await self._hash(cursor)
        for number in sorted(state.block_hashes)[:-KEPT_BLOCK_HASHES]:
            del state.block_hashes[number]
        return ScanResult(found, cursor, reorg_to)

    async def _hash(self, block_number: int) -> str:
        return _hex((await self.w3.eth.get_block(block_number))["hash"])

    async def _fork_point(self, head: int) -> int | None:
        """None when the newest remembered block is still on the chain (one RPC call); otherwise
        the newest remembered block that still is (the chain forked after it)."""
        known = sorted(self.store.state.block_hashes, reverse=True)
        for index, number in enumerate(known):
            if number <= head and await self._hash(number) == self.store.state.block_hashes[number]:
                return None if index == 0 else number
        # Forked below everything remembered: rescan from just before the oldest.
        return max(known[-1] - 1, 0) if known else None

    async def _scan_range(
        self, start: int, end: int, watched: dict[str, list[SimOrder]]
    ) -> list[tuple[SimOrder, Deposit]]:
        events: list[tuple[tuple[int, int, int], str, Deposit]] = []
        timestamps: dict[int, int] = {}

        async def timestamp(block_number: int) -> int:
            if block_number not in timestamps:
                block = await self.w3.eth.get_block(block_number)
                timestamps[block_number] = int(block["timestamp"])
            return timestamps[block_number]

        params: FilterParams = {
            "fromBlock": start,
            "toBlock": end,
            "topics": [TRANSFER_TOPIC, None, [_address_topic(a) for a in watched]],
        }
        for entry in await self.w3.eth.get_logs(params):
            topics = entry["topics"]
            if len(topics) != 3:  # ERC-721 Transfer has the token id as a 4th topic
                continue
            to = "0x" + _hex(topics[2])[-40:]
            block_number = int(entry["blockNumber"])
            deposit = Deposit(
                tx_hash=_hex(entry["transactionHash"]),
                log_index=int(entry["logIndex"]),
                block_number=block_number,
                block_timestamp=await timestamp(block_number),
                token=AsyncWeb3.to_checksum_address(entry["address"]),
                amount=int.from_bytes(bytes(entry["data"])[:32] or b"\0", "big"),
            )
            order_key = (block_number, int(entry["transactionIndex"]), int(entry["logIndex"]))
            events.append((order_key, to.lower(), deposit))

        for block_number in range(start, end + 1):
            block = await self.w3.eth.get_block(block_number, full_transactions=True)
            timestamps[block_number] = int(block["timestamp"])
            self.store.state.block_hashes[block_number] = _hex(block["hash"])
            for item in block["transactions"]:
                if isinstance(item, bytes):  # a hash: not a full transaction
                    continue
                tx = cast(dict[str, Any], item)
                recipient = str(tx.get("to") or "").lower()
                if recipient not in watched or int(tx.get("value", 0)) <= 0:
                    continue
                receipt = await self.w3.eth.get_transaction_receipt(tx["hash"])
                if receipt["status"] != 1:
                    continue
                deposit = Deposit(
                    tx_hash=_hex(tx["hash"]),
                    block_number=block_number,
                    block_timestamp=timestamps[block_number],
                    token=None,
                    amount=int(tx["value"]),
                )
                order_key = (block_number, int(tx["transactionIndex"]), -1)
                events.append((order_key, recipient, deposit))

        events.sort(key=lambda event: event[0])
        found: list[tuple[SimOrder, Deposit]] = []
        for _, to, deposit in events:
            for order in watched.get(to, []):
                found.append((order, deposit))
        return found
