"""The local stack: Temporal dev server, anvil with the test token, webhook receiver, Kado simulator
(sending its signed webhooks to the receiver) and worker, as children of one supervisor. Ctrl-C /
SIGTERM stops them all; data under `data_dir` persists, so workflows (SQLite) and the chain (anvil
state file) survive a restart of the stack."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.common import WorkerDeploymentVersion

from offramp.config import DEFAULT_TASK_QUEUE, EngineSettings, WorkerRole
from offramp.devstack.binaries import PROJECT_ROOT
from offramp.devstack.chain import (
    HOT_WALLET,
    HOT_WALLET_KEY,
    LocalChain,
    anvil_process,
    prepare_chain,
    web3_for,
)
from offramp.devstack.processes import ManagedProcess, ProcessFailed
from offramp.devstack.temporal_server import dev_server_process
from offramp.devstack.worker_process import wait_worker_ready, worker_process
from offramp.simulator.process import simulator_process, wait_simulator_ready
from offramp.task_queues import signer_task_queue
from offramp.webhooks.app import route_path
from offramp.webhooks.process import dev_secret_file, wait_webhooks_ready, webhooks_process
from worker import versioning

READY_LINE = "local stack ready"


@dataclass(frozen=True)
class StackSettings:
    data_dir: Path = PROJECT_ROOT / "data"
    temporal_port: int = 7233
    ui_port: int = 8233
    anvil_port: int = 8545
    simulator_port: int = 8780
    webhooks_port: int = 8790
    # Interval mining so confirmations advance on an idle chain, as on a real one.
    block_time: float = 1.0
    task_queue: str = DEFAULT_TASK_QUEUE
    confirmations: int = 2
    with_simulator: bool = True
    with_worker: bool = True
    # The webhook receiver; with the simulator too, the simulator sends it its webhooks.
    with_webhooks: bool = True
    # Fee-bump a transaction not mined within this (None: the engine's default, 60 s).
    bump_after_seconds: float | None = None


@dataclass
class StackInfo:
    temporal_address: str
    web_ui_url: str
    rpc_url: str
    chain: LocalChain
    simulator_url: str | None
    task_queue: str
    hot_wallet: str
    chains_file: Path
    # The build the stack's workers run and make current (README "Deploying a workflow change").
    deployment: WorkerDeploymentVersion = field(
        default_factory=lambda: versioning.deployment_version(EngineSettings())
    )
    pids: dict[str, int] = field(default_factory=dict)
    webhooks_url: str | None = None

    def describe(self) -> list[tuple[str, str]]:
        rows = [
            ("Temporal", self.temporal_address),
            ("Web UI", self.web_ui_url),
            ("Chain RPC", f"{self.rpc_url} (chain id {self.chain.chain_id})"),
            ("Test token", f"USDC {self.chain.token_address}"),
            ("Hot wallet", self.hot_wallet),
            ("Task queue", f"{self.task_queue} (signing: {signer_task_queue(self.task_queue)})"),
            ("Current build", self.deployment.to_canonical_string()),
        ]
        if self.simulator_url:
            rows.append(("Kado simulator", self.simulator_url))
        if self.webhooks_url:
            rows.append(("Webhooks", f"{self.webhooks_url}{route_path('kado')}"))
        return rows

    def worker_env(self) -> dict[str, str]:
        env = {
            "TEMPORAL_ADDRESS": self.temporal_address,
            "TEMPORAL_NAMESPACE": "default",
            "OFFRAMP_TASK_QUEUE": self.task_queue,
            "OFFRAMP_CHAINS_FILE": str(self.chains_file),
            # anvil's published development key: fine for the local stack only.
            "OFFRAMP_HOT_WALLET_PRIVATE_KEY": HOT_WALLET_KEY,
        }
        if self.simulator_url:
            env["OFFRAMP_KADO_BASE_URL"] = self.simulator_url
        # The caller's log and encryption settings: the CLI beside the stack uses the same keys.
        for name in _PASSED_THROUGH:
            if os.environ.get(name):
                env[name] = os.environ[name]
        return env

    def role_env(self, role: WorkerRole) -> dict[str, str]:
        """A versioned worker of the stack's build in `role`: only `signer` gets the key."""
        env = {
            **self.worker_env(),
            "OFFRAMP_WORKER_ROLE": role,
            "OFFRAMP_WORKER_VERSIONING": "true",
            "OFFRAMP_DEPLOYMENT_NAME": self.deployment.deployment_name,
            "OFFRAMP_BUILD_ID": self.deployment.build_id,
        }
        if role != "signer":
            del env["OFFRAMP_HOT_WALLET_PRIVATE_KEY"]
        else:  # one host: the addresses passed through are the keyless worker's (no port clash)
            env.pop("OFFRAMP_METRICS_ADDRESS", None)
            env.pop("OFFRAMP_HEALTH_ADDRESS", None)
        return env


_PASSED_THROUGH = (
    "OFFRAMP_CODEC_KEYS",
    "OFFRAMP_CODEC_KEYS_FILE",
    "OFFRAMP_LOG_LEVEL",
    "OFFRAMP_LOG_FORMAT",
    "OFFRAMP_METRICS_ADDRESS",
    "OFFRAMP_METRICS_GAUGE_INTERVAL_SECONDS",
    "OFFRAMP_HEALTH_ADDRESS",
    "OFFRAMP_TRACING",
)


def make_current(env: dict[str, str], log_path: Path, timeout: float = 330.0) -> None:
    """`python -m worker.set_current` for the build in `env`, as compose's
    `worker-version` job does. A child process: a Temporal client in the supervisor would keep
    it from exiting."""
    proc = worker_process(env, log_path, name="set-current", module="worker.set_current")
    proc.start().wait_exit(timeout)


class LocalStack:
    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.processes: dict[str, ManagedProcess] = {}
        self.info: StackInfo | None = None

    @property
    def logs_dir(self) -> Path:
        return self.settings.data_dir / "logs"

    def start(self) -> StackInfo:
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            temporal = dev_server_process(
                s.temporal_port,
                s.ui_port,
                s.data_dir / "temporal.sqlite",
                self.logs_dir / "temporal.log",
            )
            self._start("temporal", temporal)
            anvil = anvil_process(
                s.anvil_port,
                self.logs_dir / "anvil.log",
                block_time=s.block_time,
                state_file=s.data_dir / "anvil-state.json",
            )
            self._start("anvil", anvil)
            rpc_url = f"http://127.0.0.1:{s.anvil_port}"
            anvil.wait_until(lambda: web3_for(rpc_url).eth.chain_id > 0, 30, "JSON-RPC")
            temporal.wait_for_port(s.temporal_port)
            temporal.wait_for_port(s.ui_port)
            chain = prepare_chain(rpc_url)
            chains_file = chain.write_chains_file(
                s.data_dir / "chains.json",
                confirmations=s.confirmations,
                bump_after_seconds=s.bump_after_seconds,
            )
            webhooks_url = self._start_webhooks() if s.with_webhooks else None
            simulator_url = None
            if s.with_simulator:
                hooks = self._simulator_webhook_args(webhooks_url)
                sim = simulator_process(
                    s.simulator_port,
                    self.logs_dir / "simulator.log",
                    rpc_url=rpc_url,
                    token_address=chain.token_address,
                    data_file=s.data_dir / "simulator-orders.json",
                    extra_args=("--confirmations", str(s.confirmations), *hooks),
                )
                self._start("simulator", sim)
                wait_simulator_ready(sim)
                simulator_url = f"http://127.0.0.1:{s.simulator_port}"
            info = StackInfo(
                temporal_address=f"127.0.0.1:{s.temporal_port}",
                web_ui_url=f"http://127.0.0.1:{s.ui_port}",
                rpc_url=rpc_url,
                chain=chain,
                simulator_url=simulator_url,
                task_queue=s.task_queue,
                hot_wallet=HOT_WALLET,
                chains_file=chains_file,
                webhooks_url=webhooks_url,
            )
            if s.with_worker:
                self._start_workers(info)
            info.pids = {name: p.pid for name, p in self.processes.items() if p.pid is not None}
            (s.data_dir / "stack.json").write_text(
                json.dumps({"pids": info.pids, **dict(info.describe())}, indent=2)
            )
            self.info = info
            return info
        except BaseException:
            self.stop()
            raise

    @property
    def webhook_secret_file(self) -> Path:
        return self.settings.data_dir / "webhook-secret"

    def _start_webhooks(self) -> str:
        s = self.settings
        env = {"TEMPORAL_ADDRESS": f"127.0.0.1:{s.temporal_port}", "TEMPORAL_NAMESPACE": "default"}
        env.update({name: os.environ[name] for name in _PASSED_THROUGH if os.environ.get(name)})
        hooks = webhooks_process(
            s.webhooks_port,
            self.logs_dir / "webhooks.log",
            kado_secret_file=dev_secret_file(self.webhook_secret_file),
            env=env,
        )
        self._start("webhooks", hooks)
        wait_webhooks_ready(hooks)
        return f"http://127.0.0.1:{s.webhooks_port}"

    def _simulator_webhook_args(self, webhooks_url: str | None) -> tuple[str, ...]:
        if webhooks_url is None:
            return ()
        return (
            "--webhook-url",
            f"{webhooks_url}{route_path('kado')}",
            "--webhook-secret-file",
            str(self.webhook_secret_file),
        )

    def _start_workers(self, info: StackInfo) -> None:
        """Both roles, as in production: a keyless worker (workflows, provider calls, checks)
        and a signer (the key; signing only). Then their build becomes the current version, so
        new workflows go to it (pinned there)."""
        workers = {
            "worker": worker_process(info.role_env("keyless"), self.logs_dir / "worker.log"),
            "signer": worker_process(
                info.role_env("signer"), self.logs_dir / "signer.log", name="signer"
            ),
        }
        for name, proc in workers.items():
            self._start(name, proc)
        for proc in workers.values():
            wait_worker_ready(proc)
        make_current(info.role_env("keyless"), self.logs_dir / "set-current.log")

    def _start(self, name: str, proc: ManagedProcess) -> None:
        self.processes[name] = proc
        proc.start()

    def check(self) -> None:
        """Raise if a child died: the supervisor then stops the rest rather than limp on."""
        for name, proc in self.processes.items():
            if not proc.running():
                raise ProcessFailed(f"{name} exited unexpectedly:\n{proc.log_tail()}")

    def supervise(self, poll_seconds: float = 0.5) -> None:
        while True:
            self.check()
            time.sleep(poll_seconds)

    def stop(self) -> None:
        # Reverse start order: the worker first, so it never runs against a stopped server.
        for _name, proc in reversed(list(self.processes.items())):
            proc.stop()
        stack_file = self.settings.data_dir / "stack.json"
        stack_file.unlink(missing_ok=True)
