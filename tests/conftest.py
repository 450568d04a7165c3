"""Session fixtures: one per server (time-skipping Temporal, local dev server, anvil), each on a
free port and always stopped, plus a fresh task queue per test."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from offramp import search_attributes
from offramp.converter import DATA_CONVERTER
from offramp.devstack import binaries
from offramp.devstack.chain import LocalChain, anvil_process, prepare_chain, web3_for
from offramp.devstack.processes import ManagedProcess, free_port


def pytest_sessionstart(session: pytest.Session) -> None:
    # A SIGTERM to the test run (CI cancel, `kill`) unwinds like Ctrl-C, so every fixture's
    # teardown still stops its servers. Children also die with us (PR_SET_PDEATHSIG).
    signal.signal(signal.SIGTERM, signal.default_int_handler)


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
    env = await WorkflowEnvironment.start_local(
        data_converter=DATA_CONVERTER,
        dev_server_existing_path=str(binaries.temporal_cli()),
        search_attributes=search_attributes.ALL,
        port=free_port(),
        dev_server_log_level="error",
    )
    try:
        yield env
    finally:
        await env.shutdown()


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
