"""Task queues by trust: a keyless worker (workflows, provider calls, checks, chain reads) and a
signer worker (the key; signing only) serve an order together. The histories say which worker
ran each activity: a signing activity never ran on the keyless one."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from offramp.config import ConfigError, EngineSettings, WorkerRole
from offramp.devstack.chain import HOT_WALLET_KEY
from offramp.orders.models import Stage
from offramp.simulator.admin import SimulatorAdmin
from offramp.task_queues import KEY_ACTIVITIES, SIGNER_QUEUE_ACTIVITIES, signer_task_queue
from tests.e2e.support import SellChain, create_sim_order, engine_settings, sell_chain, start_order
from tests.worker.support import activity_workers, child_ids, history_events, worker_process
from worker import registry, roles
from worker.main import build_workers, create_resources


@pytest.fixture(scope="module")
def sc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SellChain]:
    with sell_chain(Path(tmp_path_factory.mktemp("signer-queue"))) as chain:
        yield chain


def role(settings: EngineSettings, name: str, *, key: bool) -> EngineSettings:
    return settings.model_copy(
        update={
            "worker_role": name,
            "hot_wallet_private_key": SecretStr(HOT_WALLET_KEY) if key else None,
        }
    )


async def test_signing_runs_only_on_the_worker_that_holds_the_key(
    dev_env: WorkflowEnvironment, sc: SellChain, task_queue: str
) -> None:
    client = dev_env.client
    settings = engine_settings(sc, task_queue)
    async with SimulatorAdmin(sc.simulator_url) as admin:
        order_id = await create_sim_order(admin, amount=Decimal("7"))
    async with (
        worker_process(client, role(settings, roles.KEYLESS, key=False)),
        worker_process(client, role(settings, roles.SIGNER, key=True)),
    ):
        handle = await start_order(client, task_queue, order_id)
        assert (await handle.result()).outcome is Stage.SETTLED

    [payment_id] = child_ids(await history_events(handle))
    ran = activity_workers(await history_events(handle))
    ran += activity_workers(await history_events(client.get_workflow_handle(payment_id)))
    signing = [identity for name, identity in ran if name in KEY_ACTIVITIES]
    others = [identity for name, identity in ran if name not in SIGNER_QUEUE_ACTIVITIES]
    assert signing and all(" signer/signer " in identity for identity in signing), ran
    # Everything else (provider calls, checks, preflight, nonce requests) ran keyless.
    assert others and all(" keyless/main " in identity for identity in others), ran
    assert not any(" keyless/" in identity for identity in signing)


async def test_a_keyless_worker_refuses_a_key(sc: SellChain, task_queue: str) -> None:
    settings = role(engine_settings(sc, task_queue), roles.KEYLESS, key=True)
    with pytest.raises(ConfigError, match="OFFRAMP_WORKER_ROLE=keyless must not hold"):
        await create_resources(settings)


@pytest.mark.parametrize("name", [roles.ALL, roles.KEYLESS, roles.SIGNER, roles.WORKFLOWS])
async def test_each_role_polls_the_queues_it_may(
    dev_env: WorkflowEnvironment, sc: SellChain, task_queue: str, name: WorkerRole
) -> None:
    configured = role(engine_settings(sc, task_queue), name, key=roles.holds_key(name))
    signer_queue = signer_task_queue(task_queue)
    expected = {
        roles.ALL: {task_queue, signer_queue},
        roles.KEYLESS: {task_queue},
        roles.SIGNER: {signer_queue},
        roles.WORKFLOWS: {task_queue},
    }
    resources = await create_resources(configured)
    try:
        workers = build_workers(dev_env.client, configured, resources)
        assert {w.task_queue for w in workers} == expected[name]
        registered = registry.activities(resources) if roles.runs_activities(name) else []
        main = {
            registry.activity_name(fn) for fn in registry.main_queue_activities(name, registered)
        }
        signer = {
            registry.activity_name(fn) for fn in registry.signer_queue_activities(name, registered)
        }
        assert signer == (SIGNER_QUEUE_ACTIVITIES if roles.holds_key(name) else set())
        if name == roles.KEYLESS:
            assert main and not main & KEY_ACTIVITIES
        if name == roles.ALL:
            assert main >= KEY_ACTIVITIES  # signing tasks old runs scheduled on the main queue
    finally:
        await resources.aclose()
