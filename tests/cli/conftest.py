"""The CLI as users run it: `python -m offramp ...` subprocesses against the session's dev server,
with the whole engine in-process on the test's task queue (the e2e chain and simulator)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from offramp.devstack.binaries import PROJECT_ROOT
from offramp.simulator.admin import SimulatorAdmin
from tests.e2e.support import SellChain, sell_chain

CLI_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str

    @property
    def error_line(self) -> str:
        """The one line a failing command prints (asserting it is exactly one line)."""
        lines = self.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), self.err
        assert "Traceback" not in self.out + self.err
        return lines[0]


@dataclass(frozen=True)
class Cli:
    """Runs `python -m offramp` with only this environment (nothing leaks from the shell)."""

    env: Mapping[str, str]

    async def __call__(
        self, *args: str, env: Mapping[str, str] | None = None, within: float = CLI_TIMEOUT_SECONDS
    ) -> CliResult:
        return await run_command(
            [sys.executable, "-m", "offramp", *args], {**self.env, **(env or {})}, within
        )


async def run_command(argv: list[str], env: Mapping[str, str], within: float) -> CliResult:
    """Run a process without blocking the event loop (the in-process worker keeps working);
    it is killed if it takes longer than `within` seconds."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=dict(env),
        cwd=PROJECT_ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        async with asyncio.timeout(within):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return CliResult(proc.returncode, out.decode(), err.decode())


def base_env() -> dict[str, str]:
    # Wide output, so tables and status lines are not wrapped at 80 columns.
    return {"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "COLUMNS": "250"}


def temporal_env(env: WorkflowEnvironment) -> dict[str, str]:
    return {
        "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": env.client.namespace,
    }


@pytest.fixture
def cli(dev_env: WorkflowEnvironment, task_queue: str) -> Cli:
    return Cli({**base_env(), **temporal_env(dev_env), "OFFRAMP_TASK_QUEUE": task_queue})


@pytest.fixture(scope="module")
def sc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SellChain]:
    with sell_chain(Path(tmp_path_factory.mktemp("cli"))) as chain:
        yield chain


@pytest.fixture
async def admin(sc: SellChain) -> AsyncIterator[SimulatorAdmin]:
    async with SimulatorAdmin(sc.simulator_url) as client:
        yield client
