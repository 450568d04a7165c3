"""Per module: a private chain and Kado simulator (the e2e set-up), for a worker subprocess."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from offramp.simulator.admin import SimulatorAdmin
from tests.e2e.support import SellChain, sell_chain


@pytest.fixture(scope="module")
def sc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SellChain]:
    with sell_chain(Path(tmp_path_factory.mktemp("observability"))) as chain:
        yield chain


@pytest.fixture
async def admin(sc: SellChain) -> AsyncIterator[SimulatorAdmin]:
    async with SimulatorAdmin(sc.simulator_url) as client:
        yield client
