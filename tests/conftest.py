"""Session fixtures: one per server (time-skipping Temporal, local dev server, anvil), each on a
free port and always stopped, plus a fresh task queue per test."""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from offramp import search_attributes
from offramp.converter import DATA_CONVERTER
from offramp.devstack import binaries
from offramp.devstack.chain import LocalChain, anvil_process, prepare_chain, web3_for
from offramp.devstack.processes import ManagedProcess, free_port
from offramp.simulator.admin import SimulatorAdmin
from offramp.simulator.process import simulator_process, wait_simulator_ready
from tests.chain.support import PayChain, pay_chain
from tests.dev_server import dev_server


def pytest_sessionstart(session: pytest.Session) -> None:
    # A SIGTERM to the test run (CI cancel, `kill`) unwinds like Ctrl-C, so every fixture's
    # teardown still stops its servers. Children also die with us (PR_SET_PDEATHSIG).
    signal.signal(signal.SIGTERM, signal.default_int_handler)


class _Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # "<Future> exception was never retrieved" and the "future: <...>" line, not the traceback.
        self.lines.append(" / ".join(record.getMessage().splitlines()[:2])[:300])


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """A failed test can leave futures nobody awaits (a gather of workflow results, cancelled when
    the session loop closes). pytest keeps the last failure's frames in sys.last_* until exit,
    where asyncio would print a traceback for each *after* the summary line. Free and collect them
    now, and list them in one line each above the summary."""
    collected = _Collected()
    asyncio_logger = logging.getLogger("asyncio")
    asyncio_logger.addHandler(collected)
    try:
        for name in ("last_type", "last_value", "last_traceback", "last_exc"):
            if hasattr(sys, name):
                delattr(sys, name)
        gc.collect()
    finally:
        asyncio_logger.removeHandler(collected)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if collected.lines and reporter is not None:
        reporter.ensure_newline()
        reporter.write_sep("-", "asyncio: exceptions never retrieved (left by failed tests)")
        for line in collected.lines:
            reporter.write_line(line)


@pytest.fixture(scope="session")
def artifacts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=DATA_CONVERTER,
        test_server_existing_path=str(binaries.temporal_test_server()),
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """Local dev server with the engine's search attributes registered."""
    async with dev_server(search_attributes=search_attributes.ALL) as env:
        yield env


@pytest.fixture
def dev_client(dev_env: WorkflowEnvironment) -> Client:
    return dev_env.client


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4()}"


@pytest.fixture(scope="session")
def anvil(artifacts_dir: Path) -> Iterator[tuple[ManagedProcess, LocalChain]]:
    """anvil with auto-mining, the test token deployed and the hot wallet funded."""
    port = free_port()
    proc = anvil_process(port, artifacts_dir / f"anvil-{port}.log").start()
    try:
        rpc_url = f"http://127.0.0.1:{port}"
        proc.wait_until(lambda: web3_for(rpc_url).eth.chain_id > 0, 30, "JSON-RPC")
        yield proc, prepare_chain(rpc_url)
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def local_chain(anvil: tuple[ManagedProcess, LocalChain]) -> LocalChain:
    return anvil[1]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OFFRAMP_/TEMPORAL_ variable from the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith(("OFFRAMP_", "TEMPORAL_")):
            monkeypatch.delenv(name)


# ---- Kado simulator ---------------------------------------------------------------------------
# One simulator for the session: a real HTTP subprocess (`python -m offramp.simulator`) on a free
# port, watching the `anvil` chain, always stopped. Tests use their own orders (and per-order
# faults); `sim_admin` clears any global faults a test set.

# Short delays so chain-driven tests finish quickly; orders may override them.
SIMULATOR_TEST_ARGS = ("--poll-interval", "0.1", "--settlement-delay", "0.5")


@dataclass(frozen=True)
class KadoSimulator:
    base_url: str
    process: ManagedProcess
    data_file: Path


@pytest.fixture(scope="session")
def kado_simulator(artifacts_dir: Path, local_chain: LocalChain) -> Iterator[KadoSimulator]:
    port = free_port()
    data_file = artifacts_dir / f"simulator-{port}.json"
    proc = simulator_process(
        port,
        artifacts_dir / f"simulator-{port}.log",
        rpc_url=local_chain.rpc_url,
        token_address=local_chain.token_address,
        data_file=data_file,
        extra_args=SIMULATOR_TEST_ARGS,
    ).start()
    try:
        wait_simulator_ready(proc)
        yield KadoSimulator(f"http://127.0.0.1:{port}", proc, data_file)
    finally:
        proc.stop()


@pytest.fixture
async def sim_admin(kado_simulator: KadoSimulator) -> AsyncIterator[SimulatorAdmin]:
    async with SimulatorAdmin(kado_simulator.base_url) as admin:
        try:
            yield admin
        finally:
            await admin.set_global_faults(None)


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[PayChain]:
    """A private anvil with the test token and a funded hot wallet (tests/chain/support.py), for
    the payment tests; a module that needs another chain defines its own `chain`."""
    with pay_chain(tmp_path) as chain:
        yield chain
