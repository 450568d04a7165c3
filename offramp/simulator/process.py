"""The simulator as a child process (`python -m offramp.simulator`): local stack and tests."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from offramp.devstack.binaries import PROJECT_ROOT
from offramp.devstack.processes import ManagedProcess

# Printed (with " on http://host:port") once the simulator listens; app.READY_MESSAGE.
READY_MESSAGE = "kado simulator ready"


def simulator_process(
    port: int,
    log_path: Path,
    *,
    rpc_url: str | None,
    token_address: str | None,
    data_file: Path | None,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> ManagedProcess:
    argv = [sys.executable, "-m", "offramp.simulator", "--port", str(port)]
    if rpc_url:
        argv += ["--rpc-url", rpc_url]
    if token_address:
        argv += ["--token-address", token_address]
    if data_file is not None:
        argv += ["--data-file", str(data_file)]
    argv += list(extra_args)
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return ManagedProcess("kado-simulator", argv, log_path, full_env, PROJECT_ROOT)


def wait_simulator_ready(proc: ManagedProcess, timeout: float = 60.0) -> None:
    proc.wait_for_log(READY_MESSAGE, timeout)
