"""The benchmark's own local stack: dev server (SQLite), anvil, Kado simulator, and worker
processes it can replace (another pool, replicas) or outlive (the server is killed on purpose).

Every port is free at run time and on 127.0.0.1; every process is a child in its own group,
killed with the benchmark (PR_SET_PDEATHSIG) and stopped by `close()`.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from offramp.bench import pool
from offramp.bench.skeleton_worker import READY_MESSAGE as SKELETON_READY
from offramp.bench.stats import Outage
from offramp.devstack.binaries import PROJECT_ROOT
from offramp.devstack.chain import LocalChain
from offramp.devstack.processes import ManagedProcess, ProcessFailed, free_port
from offramp.devstack.stack import LocalStack, StackInfo, StackSettings
from offramp.devstack.worker_process import wait_worker_ready, worker_process
from offramp.simulator.process import simulator_process, wait_simulator_ready
from offramp.webhooks.process import dev_secret_file


@dataclass(frozen=True)
class BenchSettings:
    data_dir: Path
    block_time: float = 1.0
    confirmations: int = 1
    settlement_delay: float = 2.0  # the simulator's, after the deposit is confirmed


class BenchStack:
    def __init__(self, settings: BenchSettings) -> None:
        self.settings = settings
        self.task_queue = f"bench-{int(time.time())}"
        # The simulator runs without a data file: it rewrites the whole file on every change,
        # which at thousands of orders would measure the simulator, not the engine.
        self.local = LocalStack(
            StackSettings(
                data_dir=settings.data_dir,
                temporal_port=free_port(),
                ui_port=free_port(),
                anvil_port=free_port(),
                block_time=settings.block_time,
                task_queue=self.task_queue,
                confirmations=settings.confirmations,
                with_simulator=False,
                with_worker=False,
                with_webhooks=False,  # the webhooks scenario starts its own receiver
            )
        )
        self.workers: list[ManagedProcess] = []
        self.simulator: ManagedProcess | None = None
        self.simulator_url = ""
        self._info: StackInfo | None = None
        self._worker_runs = 0
        self.temporal_down = False  # killed on purpose: not a failure while it is restarted

    @property
    def info(self) -> StackInfo:
        assert self._info is not None, "stack not started"
        return self._info

    @property
    def chain(self) -> LocalChain:
        return self.info.chain

    @property
    def logs(self) -> Path:
        return self.local.logs_dir

    @property
    def webhook_secret_file(self) -> Path:
        return dev_secret_file(self.settings.data_dir / "bench-webhook-secret")

    def start(self) -> None:
        try:
            self._info = self.local.start()
            port = free_port()
            self.simulator = simulator_process(
                port,
                self.logs / "simulator.log",
                rpc_url=self.info.rpc_url,
                token_address=self.chain.token_address,
                data_file=None,
                extra_args=(
                    "--confirmations",
                    str(self.settings.confirmations),
                    "--settlement-delay",
                    str(self.settings.settlement_delay),
                    # Signs the webhooks of orders that name a URL (no default URL: the others
                    # send none); the webhook scenarios' receivers share the secret.
                    "--webhook-secret-file",
                    str(self.webhook_secret_file),
                    "--log-level",
                    "WARNING",
                ),
            ).start()
            wait_simulator_ready(self.simulator)
            self.simulator_url = f"http://127.0.0.1:{port}"
        except BaseException:
            self.close()
            raise

    def start_engine_workers(
        self, wallets: list[pool.Wallet], replicas: int = 1, **chain_overrides: object
    ) -> None:
        """Replace the running workers by `replicas` engine workers paying from `wallets`."""
        self.stop_workers()
        self._worker_runs += 1
        config = pool.chain_config(self.chain, wallets, **chain_overrides)
        chains = pool.write_chains_file(
            self.settings.data_dir / f"chains-{self._worker_runs}.json", config
        )
        env = {
            **{k: v for k, v in self.info.worker_env().items() if "PRIVATE_KEY" not in k},
            "OFFRAMP_CHAINS_FILE": str(chains),
            "OFFRAMP_KADO_BASE_URL": self.simulator_url,
            **pool.signer_env(wallets),
        }
        for i in range(replicas):
            name = f"worker-{self._worker_runs}-{i + 1}"
            proc = worker_process(env, self.logs / f"{name}.log", name=name)
            self.workers.append(proc.start())
        for proc in self.workers:
            wait_worker_ready(proc, timeout=120)

    def start_skeleton_workers(self, task_queue: str, replicas: int = 1) -> None:
        self.stop_workers()
        for i in range(replicas):
            proc = ManagedProcess(
                f"skeleton-worker-{i + 1}",
                [
                    sys.executable,
                    "-m",
                    "offramp.bench.skeleton_worker",
                    self.info.temporal_address,
                    task_queue,
                ],
                self.logs / f"skeleton-worker-{i + 1}.log",
                cwd=PROJECT_ROOT,
            )
            self.workers.append(proc.start())
        for proc in self.workers:
            proc.wait_for_log(SKELETON_READY, timeout=120)

    def stop_workers(self) -> None:
        for proc in self.workers:
            proc.stop()
        self.workers = []

    def check(self) -> None:
        """Raise if a process died that should not have (the server may be down on purpose)."""
        procs = [p for n, p in self.local.processes.items() if n != "temporal"]
        if not self.temporal_down:
            procs.append(self.local.processes["temporal"])
        for proc in [*procs, *self.workers, *([self.simulator] if self.simulator else [])]:
            if not proc.running():
                raise ProcessFailed(f"{proc.name} exited unexpectedly:\n{proc.log_tail()}")

    def kill_temporal(self) -> datetime:
        """SIGKILL the dev server, as a crash would; its SQLite file stays."""
        self.temporal_down = True
        self.local.processes["temporal"].kill()
        return datetime.now(UTC)

    def restart_temporal(self, killed: datetime) -> Outage:
        """Start the dev server again on the same SQLite file and ports."""
        temporal = self.local.processes["temporal"]
        temporal.start()
        temporal.wait_for_port(self.local.settings.temporal_port, timeout=120)
        self.temporal_down = False
        return Outage(killed=killed, restarted=datetime.now(UTC))

    def close(self) -> None:
        self.stop_workers()
        if self.simulator is not None:
            self.simulator.stop()
        self.local.stop()
