"""Long-lived things activities share inside one worker process (created once, closed on exit)."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from offramp.chain.rpc import ChainRuntime
from offramp.config import EngineSettings
from offramp.providers import ADAPTERS, ProviderClient
from worker import roles


@dataclass
class WorkerResources:
    settings: EngineSettings
    exit_stack: AsyncExitStack = field(default_factory=AsyncExitStack)
    # Per-chain web3 clients and the hot wallet signer; each chain's eth_chainId is checked at
    # start and a chain that differs from its configuration is refused (logged, never served).
    chains: ChainRuntime | None = None
    # Each provider's order-status client, by provider name (one connection pool per provider,
    # shared by its activities).
    providers: dict[str, ProviderClient] = field(default_factory=dict)

    @classmethod
    async def create(cls, settings: EngineSettings) -> WorkerResources:
        resources = cls(settings=settings)
        # A keyless worker reads chains without a signer (worker/roles.py).
        resources.chains = await ChainRuntime.create(
            settings, require_signer=roles.holds_key(settings.worker_role)
        )
        resources.exit_stack.push_async_callback(resources.chains.aclose)
        for name, provider in ADAPTERS.items():
            client = provider.client_from_settings(settings)
            resources.providers[name] = client
            resources.exit_stack.push_async_callback(client.aclose)
        return resources

    async def aclose(self) -> None:
        await self.exit_stack.aclose()
