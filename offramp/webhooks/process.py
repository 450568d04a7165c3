"""The receiver as a child process (`python -m offramp.webhooks`): local stack, benchmark, tests."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Mapping
from pathlib import Path

from offramp.devstack.binaries import PROJECT_ROOT
from offramp.devstack.processes import ManagedProcess
from offramp.webhooks.config import ENV_PREFIX
from offramp.webhooks.server import READY_MESSAGE


def dev_secret_file(path: Path) -> Path:
    """A random shared secret for the local simulator and receiver, made once (owner-only) and
    kept, so a redelivery after a restart still verifies."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    return path


def webhooks_process(
    port: int,
    log_path: Path,
    *,
    kado_secret_file: Path,
    env: Mapping[str, str],
    name: str = "webhooks",
) -> ManagedProcess:
    """`env`: TEMPORAL_* and other settings, added to this process's environment without any
    OFFRAMP_* or TEMPORAL_* of the caller's shell (an internet-facing process must not inherit
    a hot-wallet key or a Cloud API key from the operator's shell)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OFFRAMP_", "TEMPORAL_"))}
    full_env.update(env)
    full_env.update(
        {
            f"{ENV_PREFIX}PORT": str(port),
            f"{ENV_PREFIX}KADO_SECRET_FILE": str(kado_secret_file),
            "PYTHONUNBUFFERED": "1",
        }
    )
    argv = [sys.executable, "-m", "offramp.webhooks"]
    return ManagedProcess(name, argv, log_path, full_env, PROJECT_ROOT)


def wait_webhooks_ready(proc: ManagedProcess, timeout: float = 60.0) -> None:
    proc.wait_for_log(READY_MESSAGE, timeout)
