"""Worker roles: what one worker process hosts, and whether it is able to.

Activity tasks on a task queue go to any worker polling it, so a worker that polls for activities
must be able to run every activity scheduled there: the payment and check activities need chains
and the hot-wallet signer. A worker without them either refuses to start (role `all`) or is
started in the explicit role `workflows`, which polls no activity at all (workflow code needs no
configuration: it is deterministic and decides nothing from the environment).
"""

from __future__ import annotations

from offramp.chain.rpc import ChainRuntime
from offramp.config import ConfigError, EngineSettings, WorkerRole

ALL: WorkerRole = "all"
WORKFLOWS: WorkerRole = "workflows"


def runs_activities(role: WorkerRole) -> bool:
    return role == ALL


def check_can_pay(settings: EngineSettings) -> None:
    """Raise ConfigError, one line naming what is missing, if this worker could not pay."""
    missing = []
    if not settings.chains:
        missing.append("no chain configured (OFFRAMP_CHAINS or OFFRAMP_CHAINS_FILE)")
    signer_sources = (
        settings.hot_wallet_private_key,
        settings.hot_wallet_private_keys,
        settings.hot_wallet_keystore_file,
        settings.hot_wallet_keystore_files,
    )
    if all(source is None for source in signer_sources):
        missing.append(
            "no hot-wallet signer (OFFRAMP_HOT_WALLET_PRIVATE_KEY, "
            "OFFRAMP_HOT_WALLET_PRIVATE_KEYS or OFFRAMP_HOT_WALLET_KEYSTORE_FILE(S))"
        )
    if missing:
        raise ConfigError(
            f"cannot pay: {'; '.join(missing)}. Set them, or start with "
            f"OFFRAMP_WORKER_ROLE={WORKFLOWS} for a worker that runs workflow tasks only"
        )


def check_serves_a_chain(runtime: ChainRuntime) -> None:
    """Raise ConfigError if every configured chain was refused (signer or chain id mismatch). A
    chain whose RPC is unreachable at start is not refused: it is checked again on first use."""
    refusals = [c.refusal for c in runtime.clients.values() if c.refusal]
    if refusals and len(refusals) == len(runtime.clients):
        raise ConfigError(f"cannot pay on any configured chain: {'; '.join(refusals)}")
