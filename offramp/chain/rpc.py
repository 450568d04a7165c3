"""Per-chain async web3 clients and the worker's chain runtime (clients + signer).

At start every configured chain's `eth_chainId` is compared with its configuration; a chain that
differs (or whose hot wallet the signer cannot sign for) is refused: never served, with a reason
naming the chain. A chain whose RPC is unreachable at start is checked again on first use.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from web3 import AsyncWeb3
from web3.providers import AsyncHTTPProvider

from offramp.chain.signer import Signer
from offramp.config import ChainConfig, EngineSettings

log = logging.getLogger("offramp.chain")

TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
TRANSFER_SELECTOR = "a9059cbb"
BALANCE_OF_SELECTOR = "70a08231"


def encode_transfer(recipient: str, amount: int) -> str:
    """ABI-encoded `transfer(address,uint256)` call data."""
    return "0x" + TRANSFER_SELECTOR + recipient[2:].lower().rjust(64, "0") + f"{amount:064x}"


def encode_balance_of(owner: str) -> str:
    return "0x" + BALANCE_OF_SELECTOR + owner[2:].lower().rjust(64, "0")


class ChainUnavailable(RuntimeError):
    """Transient: the chain's RPC cannot be reached (retry later)."""


@dataclass
class ChainClient:
    name: str
    config: ChainConfig
    w3: AsyncWeb3[AsyncHTTPProvider]
    verified: bool = False
    refusal: str | None = None


def make_web3(config: ChainConfig) -> AsyncWeb3[AsyncHTTPProvider]:
    # No provider-level retry: a resent eth_sendRawTransaction would come back as "already known";
    # retries are Temporal's, with the same bytes.
    provider = AsyncHTTPProvider(
        config.rpc_url,
        # Below the activity's own time limit, so a slow node fails the call, not the attempt.
        request_kwargs={"timeout": max(1.0, min(config.rpc_timeout_seconds * 0.8, 30.0))},
        exception_retry_configuration=None,
    )
    return AsyncWeb3(provider)


@dataclass
class ChainRuntime:
    settings: EngineSettings
    signer: Signer | None
    clients: dict[str, ChainClient] = field(default_factory=dict)

    @classmethod
    async def create(cls, settings: EngineSettings) -> ChainRuntime:
        runtime = cls(settings=settings, signer=Signer.from_settings(settings))
        for name, config in settings.chains.items():
            runtime.clients[name] = ChainClient(name=name, config=config, w3=make_web3(config))
        await asyncio.gather(*(runtime.verify(c) for c in runtime.clients.values()))
        return runtime

    async def verify(self, client: ChainClient) -> None:
        """Check the chain id and the signer; record a refusal (and log it) if they differ."""
        if client.verified or client.refusal:
            return
        config = client.config
        if self.signer is None:
            client.refusal = (
                f"chain {client.name!r}: no hot wallet signer is configured "
                "(OFFRAMP_HOT_WALLET_PRIVATE_KEY or a keystore): refusing to serve it"
            )
        elif self.signer.address.lower() != config.hot_wallet.lower():
            client.refusal = (
                f"chain {client.name!r}: the signer's address {self.signer.address} is not the "
                f"configured hot wallet {config.hot_wallet}: refusing to serve it"
            )
        else:
            try:
                actual = await asyncio.wait_for(
                    client.w3.eth.chain_id, min(config.rpc_timeout_seconds, 5.0)
                )
            except Exception as exc:  # unreachable: check again on first use
                log.warning(
                    "chain %r: cannot read eth_chainId yet (%s); will check on first use",
                    client.name,
                    type(exc).__name__,
                )
                return
            if actual != config.chain_id:
                client.refusal = (
                    f"chain {client.name!r}: the RPC's eth_chainId is {actual}, the configuration "
                    f"says {config.chain_id}: refusing to serve it"
                )
            else:
                client.verified = True
                log.info("chain %r: eth_chainId %s verified", client.name, actual)
                return
        log.error("%s", client.refusal)

    async def served(self, name: str) -> ChainClient | str:
        """The client of a chain this worker serves, or the reason it does not."""
        client = self.clients.get(name.strip().lower())
        if client is None:
            return f"chain {name!r} is not configured"
        await self.verify(client)
        if client.refusal:
            return client.refusal
        if not client.verified:
            raise ChainUnavailable(f"chain {name!r}: RPC unreachable, eth_chainId not verified yet")
        return client

    async def aclose(self) -> None:
        for client in self.clients.values():
            provider = client.w3.provider
            if isinstance(provider, AsyncHTTPProvider):
                try:
                    await provider.disconnect()
                except Exception:  # closing is best effort
                    log.debug("closing the %s RPC session failed", client.name, exc_info=True)
