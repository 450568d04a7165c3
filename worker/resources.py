"""Long-lived things activities share inside one worker process (created once, closed on exit)."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from offramp.config import EngineSettings


@dataclass
class WorkerResources:
    settings: EngineSettings
    exit_stack: AsyncExitStack = field(default_factory=AsyncExitStack)

    @classmethod
    async def create(cls, settings: EngineSettings) -> WorkerResources:
        resources = cls(settings=settings)
        return resources

    async def aclose(self) -> None:
        await self.exit_stack.aclose()
