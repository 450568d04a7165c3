"""Per-chain async web3 clients and the worker's chain runtime (clients + signer).

At start every configured chain's `eth_chainId` is compared with its configuration (on each of
its RPC nodes); a chain that differs (or with a pool wallet the signer holds no key for) is
refused: never served, with a reason naming the chain (and the node by label, the wallet by
address; never a URL or a key). A chain whose RPC is unreachable at start is checked again on
first use. Every chain talks to its nodes through `offramp.chain.failover.FailoverProvider`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from functools import cached_property

from web3 import AsyncWeb3

from offramp.chain.failover import FailoverProvider
from offramp.chain.redact import scrub, secret_fragments
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
    w3: AsyncWeb3[FailoverProvider]
    verified: bool = False
    refusal: str | None = None

    @property
    def provider(self) -> FailoverProvider:
        return self.w3.provider


def request_timeout(config: ChainConfig) -> float:
    """One HTTP request to one node: by default the nodes share 80% of the activity's limit, so a
    slow node fails over (and a slow chain fails the call, not the attempt)."""
    if config.rpc_request_timeout_seconds is not None:
        return config.rpc_request_timeout_seconds
    share = config.rpc_timeout_seconds * 0.8 / len(config.rpc_urls)
    return max(1.0, min(share, 30.0))


def make_web3(config: ChainConfig) -> AsyncWeb3[FailoverProvider]:
    provider = FailoverProvider(
        list(config.rpc_urls),
        [config.rpc_label(i) for i in range(len(config.rpc_urls))],
        chain_id=config.chain_id,
        request_timeout=request_timeout(config),
        cooldown=config.rpc_cooldown_seconds,
    )
    return AsyncWeb3(provider)


@dataclass
class ChainRuntime:
    settings: EngineSettings
    signer: Signer | None
    clients: dict[str, ChainClient] = field(default_factory=dict)
    # False for a keyless worker (role `keyless`): it reads chains and never signs.
    require_signer: bool = True

    @classmethod
    async def create(cls, settings: EngineSettings, require_signer: bool = True) -> ChainRuntime:
        runtime = cls(
            settings=settings,
            signer=Signer.from_settings(settings),
            require_signer=require_signer,
        )
        for name, config in settings.chains.items():
            runtime.clients[name] = ChainClient(name=name, config=config, w3=make_web3(config))
        await asyncio.gather(*(runtime.verify(c) for c in runtime.clients.values()))
        return runtime

    def _signer_refusal(self, name: str, config: ChainConfig) -> str | None:
        if self.signer is None and not self.require_signer:
            return None
        if self.signer is None:
            return (
                f"chain {name!r}: no hot wallet signer is configured "
                "(OFFRAMP_HOT_WALLET_PRIVATE_KEY(S) or a keystore): refusing to serve it"
            )
        missing = [w for w in config.hot_wallets if not self.signer.holds(w)]
        if missing:
            return (
                f"chain {name!r}: the signer holds no key for hot wallet {missing[0]} "
                f"(not the configured hot wallet's key; {len(missing)} of "
                f"{len(config.hot_wallets)} pool wallets without a key): refusing to serve it"
            )
        return None

    async def verify(self, client: ChainClient) -> None:
        """Check the signer and each node's chain id; record a refusal (and log it) if they
        differ. Nodes that do not answer yet are checked before their first use."""
        if client.verified or client.refusal:
            return
        config = client.config
        client.refusal = self._signer_refusal(client.name, config)
        if client.refusal is None:
            ids = await client.provider.chain_ids()
            wrong = {label: i for label, i in ids.items() if i not in (None, config.chain_id)}
            if wrong:
                label, actual = next(iter(wrong.items()))
                client.refusal = (
                    f"chain {client.name!r}: the RPC's eth_chainId is {actual} ({label}), the "
                    f"configuration says {config.chain_id}: refusing to serve it"
                )
            elif config.chain_id in ids.values():
                client.verified = True
                log.info("chain %r: eth_chainId %s verified", client.name, config.chain_id)
                return
            else:  # unreachable: check again on first use
                log.warning(
                    "chain %r: cannot read eth_chainId yet; will check on first use", client.name
                )
                return
        log.error("%s", client.refusal)

    def redact(self, text: str) -> str:
        """`text` without any part of any configured RPC URL (or any URL at all)."""
        return scrub(text, self._fragments)

    @cached_property
    def _fragments(self) -> list[str]:
        return secret_fragments(u for c in self.settings.chains.values() for u in c.rpc_urls)

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
            try:
                await client.provider.disconnect()
            except Exception:  # closing is best effort
                log.debug("closing the %s RPC session failed", client.name, exc_info=True)
