"""Long-lived things activities share inside one worker process (created once, closed on exit)."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from offramp.chain.rpc import ChainRuntime
from offramp.config import EngineSettings
from offramp.providers.kado.client import KadoClient


@dataclass
class WorkerResources:
    settings: EngineSettings
    exit_stack: AsyncExitStack = field(default_factory=AsyncExitStack)
    # Per-chain web3 clients and the hot wallet signer; each chain's eth_chainId is checked at
    # start and a chain that differs from its configuration is refused (logged, never served).
    chains: ChainRuntime | None = None
    # Kado order-status client (connection pool shared by all Kado activities).
    kado: KadoClient | None = None

    @classmethod
    async def create(cls, settings: EngineSettings) -> WorkerResources:
        resources = cls(settings=settings)
        resources.chains = await ChainRuntime.create(settings)
        resources.exit_stack.push_async_callback(resources.chains.aclose)
        resources.kado = KadoClient.from_settings(settings)
        resources.exit_stack.push_async_callback(resources.kado.aclose)
        return resources

    async def aclose(self) -> None:
        await self.exit_stack.aclose()
