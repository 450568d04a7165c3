"""Worker roles: what one worker process hosts, and whether it is able to.

Activity tasks on a task queue go to any worker polling it, so a worker that polls a queue must be
able to run every activity scheduled there. Two queues split the work by trust
(offramp.task_queues): the main queue (workflow tasks, provider calls, checks, chain reads) and
the signer queue (signing and re-sending signed bytes), polled only by workers that hold a key.

- `all`: both queues, everything (chains and the signer needed: one process for development).
- `workflows`: workflow tasks only; workflow code needs no configuration (it is deterministic
  and decides nothing from the environment), so no chain, key or provider settings.
- `keyless`: workflow tasks and every activity but signing, on the main queue. Needs the chains
  (balances, nonces, fee quotes, waits) and refuses to start with a key configured.
- `signer`: the signer queue's activities only: chains and the key, nothing else.
"""

from __future__ import annotations

from offramp.chain.rpc import ChainRuntime
from offramp.config import ConfigError, EngineSettings, WorkerRole

ALL: WorkerRole = "all"
WORKFLOWS: WorkerRole = "workflows"
KEYLESS: WorkerRole = "keyless"
SIGNER: WorkerRole = "signer"


def runs_activities(role: WorkerRole) -> bool:
    return role != WORKFLOWS


def runs_workflows(role: WorkerRole) -> bool:
    return role != SIGNER


def polls_main_queue(role: WorkerRole) -> bool:
    return role != SIGNER


def polls_signer_queue(role: WorkerRole) -> bool:
    return role in (ALL, SIGNER)


def holds_key(role: WorkerRole) -> bool:
    return role in (ALL, SIGNER)


def _signer_sources(settings: EngineSettings) -> list[object]:
    sources = (
        settings.hot_wallet_private_key,
        settings.hot_wallet_private_keys,
        settings.hot_wallet_keystore_file,
        settings.hot_wallet_keystore_files,
    )
    return [source for source in sources if source is not None]


def check_configuration(settings: EngineSettings) -> None:
    """Raise ConfigError, one line naming what is missing or misplaced, if this worker could not
    do its role's work (or would hold a key it must not)."""
    role = settings.worker_role
    if not runs_activities(role):
        return
    missing = []
    if not settings.chains:
        missing.append("no chain configured (OFFRAMP_CHAINS or OFFRAMP_CHAINS_FILE)")
    if holds_key(role) and not _signer_sources(settings):
        missing.append(
            "no hot-wallet signer (OFFRAMP_HOT_WALLET_PRIVATE_KEY, "
            "OFFRAMP_HOT_WALLET_PRIVATE_KEYS or OFFRAMP_HOT_WALLET_KEYSTORE_FILE(S))"
        )
    if missing:
        raise ConfigError(
            f"cannot {'pay' if holds_key(role) else 'run activities'}: {'; '.join(missing)}. "
            f"Set them, or start with OFFRAMP_WORKER_ROLE={WORKFLOWS} for a worker that runs "
            "workflow tasks only"
        )
    if not holds_key(role) and _signer_sources(settings):
        raise ConfigError(
            f"OFFRAMP_WORKER_ROLE={role} must not hold a hot-wallet key: unset "
            "OFFRAMP_HOT_WALLET_PRIVATE_KEY(S) / OFFRAMP_HOT_WALLET_KEYSTORE_FILE(S), or use "
            f"the role {SIGNER} or {ALL}"
        )


def check_serves_a_chain(runtime: ChainRuntime) -> None:
    """Raise ConfigError if every configured chain was refused (signer or chain id mismatch). A
    chain whose RPC is unreachable at start is not refused: it is checked again on first use."""
    refusals = [c.refusal for c in runtime.clients.values() if c.refusal]
    if refusals and len(refusals) == len(runtime.clients):
        raise ConfigError(f"cannot pay on any configured chain: {'; '.join(refusals)}")
