"""The worker as a child process (`python -m worker`), for the local stack and crash
tests."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from offramp.devstack.binaries import PROJECT_ROOT
from offramp.devstack.processes import ManagedProcess
from worker.main import READY_MESSAGE


def worker_process(
    env: Mapping[str, str], log_path: Path, name: str = "worker", module: str = "worker"
) -> ManagedProcess:
    """`python -m <module>` (the worker, or `worker.set_current`). `env` adds to (and
    overrides) this process's environment: TEMPORAL_*, OFFRAMP_*."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OFFRAMP_", "TEMPORAL_"))}
    full_env.update(env)
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    return ManagedProcess(name, [sys.executable, "-m", module], log_path, full_env, PROJECT_ROOT)


def wait_worker_ready(proc: ManagedProcess, timeout: float = 60.0) -> None:
    proc.wait_for_log(READY_MESSAGE, timeout)
