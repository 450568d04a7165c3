"""The operator's stumbles of issue 12, each as a subprocess of `python -m offramp` against the
session's dev server: `status` with no worker (from the server's record), `--json` on every
command that prints data, order id or workflow id everywhere, stage names as the UI shows them,
a second `start` with different input, `replay` of a history saved under any name, the Web UI's
update payloads and saved views."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHistory, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from offramp.chain.models import hot_wallet_workflow_id
from offramp.cli.views import VIEWS
from offramp.devstack import binaries
from offramp.orders.models import (
    SellOrderResult,
    SellOrderState,
    Stage,
    workflow_id_for,
)
from offramp.orders.render import list_query
from offramp.orders.replay import load_history, replay
from offramp.simulator.admin import SimulatorAdmin
from tests.cli.conftest import CLI_TIMEOUT_SECONDS, Cli, base_env, run_command
from tests.cli.test_commands import HISTORIES, wait_listed, wait_stage
from tests.e2e.support import (
    SellChain,
    create_sim_order,
    engine_settings,
    engine_worker,
    new_order_id,
    start_order,
)

RECORD = "source       server record ("


def parsed(result: Any) -> Any:
    assert result.code == 0, result.err
    return json.loads(result.out)


# ---- status without a worker ----------------------------------------------------------------


async def test_status_of_a_closed_order_with_no_worker_comes_from_the_record(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str, cli: Cli
) -> None:
    client = dev_env.client
    order_id = await create_sim_order(admin, scenario="provider_failure")
    async with engine_worker(client, engine_settings(sc, task_queue)):
        handle = await start_order(client, task_queue, order_id)
        result: SellOrderResult = await handle.result()
    assert result.outcome is Stage.PROVIDER_FAILED
    # No worker for this queue any more: the record answers, naming where it came from.
    text, as_json = await asyncio.gather(
        cli("status", workflow_id_for(order_id)), cli("status", order_id, "--json")
    )
    assert text.code == 0, text.err
    assert RECORD in text.out, text.out
    assert f"workflow     {workflow_id_for(order_id)} run " in text.out
    assert " COMPLETED, closed " in text.out
    assert "stage        PROVIDER_FAILED   ** NEEDS ATTENTION" in text.out
    assert result.confirmed_tx_hash and f"confirmed    {result.confirmed_tx_hash}" in text.out
    assert "Stage=PROVIDER_FAILED" in text.out
    assert "TemporalChangeVersion" not in text.out  # Temporal's own attributes: --json only
    view = parsed(as_json)
    assert view["source"] == "server record" and view["state"] is None
    assert view["status"] == "COMPLETED"
    assert view["order_id"] == order_id
    assert SellOrderResult.model_validate(view["result"]) == result
    assert view["search_attributes"]["Stage"] == "PROVIDER_FAILED"
    assert view["search_attributes"]["NeedsAttention"] is True

    # The saved view of orders that did not settle finds it (the query the README documents).
    not_settled = next(v for v in VIEWS if v.name == "Orders that did not settle")
    await wait_listed(client, not_settled.query, order_id)


async def test_status_of_a_running_order_with_no_worker(
    dev_env: WorkflowEnvironment, cli: Cli
) -> None:
    order_id = new_order_id()
    # A task queue no worker polls: the order waits in RECEIVED.
    started = await cli(
        "start",
        order_id,
        "--max-amount",
        "10",
        "--user-ref",
        "u-1",
        env={"OFFRAMP_TASK_QUEUE": "nobody-polls"},
    )
    assert started.code == 0, started.err
    handle = dev_env.client.get_workflow_handle(workflow_id_for(order_id))
    try:
        text, as_json = await asyncio.gather(
            cli("status", order_id), cli("status", workflow_id_for(order_id), "--json")
        )
        assert text.code == 0, text.err
        assert f"{RECORD}no worker is polling task queue nobody-polls)" in text.out, text.out
        assert "stage        RECEIVED" in text.out
        assert f"OrderId={order_id}" in text.out
        view = parsed(as_json)
        assert (view["source"], view["status"], view["result"]) == (
            "server record",
            "RUNNING",
            None,
        )
        assert view["summary"] == f"Kado SELL {order_id}"
    finally:
        await handle.terminate("test done")


# ---- --json, ids and stages on a real approval -------------------------------------------------


async def test_json_ids_and_stage_names_through_an_approval(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str, cli: Cli
) -> None:
    client = dev_env.client
    created = parsed(
        await cli("sim", "create-order", "--url", sc.simulator_url, "--amount", "6000", "--json")
    )
    order_id, wf_id = created["order_id"], workflow_id_for(created["order_id"])
    assert created["deposit_address"].startswith("0x")
    async with engine_worker(client, engine_settings(sc, task_queue)):
        handle = await start_order(client, task_queue, order_id)
        await wait_stage(handle, Stage.AWAITING_APPROVAL)
        await update_payloads_are_validated(client, wf_id)
        await wait_listed(client, list_query(stage="AWAITING_APPROVAL"), order_id)
        dashed, spaced, status, poked = await asyncio.gather(
            cli("list", "--stage", "AWAITING-APPROVAL", "--json", "--limit", "1000"),
            cli("list", "--stage", "awaiting approval", "--limit", "1000"),
            cli("status", wf_id, "--json"),
            cli("poll-now", wf_id, "--json"),
        )
        listed = parsed(dashed)
        assert listed["query"] == list_query(stage="AWAITING_APPROVAL")
        mine = [o for o in listed["orders"] if o["OrderId"] == order_id]
        assert [(o["workflow_id"], o["Stage"], o["status"]) for o in mine] == [
            (wf_id, "AWAITING_APPROVAL", "RUNNING")
        ]
        assert spaced.code == 0 and order_id in spaced.out, spaced.err
        view = parsed(status)
        assert view["source"] == "worker"
        assert SellOrderState.model_validate(view["state"]).stage is Stage.AWAITING_APPROVAL
        assert parsed(poked) == {"workflow_id": wf_id, "signal": "poll_now"}

        approved = parsed(await cli("approve", wf_id, "--operator", "ops@example.com", "--json"))
        assert approved == {
            "workflow_id": wf_id,
            "update": "approve",
            "result": "approved by ops@example.com",
        }
        result = await handle.result()
        state = await handle.query("state", result_type=SellOrderState)
        assert state.plan is not None
        wallet_id = hot_wallet_workflow_id(state.plan.chain_id, state.plan.hot_wallet, task_queue)
        wallet = parsed(await cli("wallet", "status", wallet_id, "--json"))
    assert result.outcome is Stage.SETTLED, result.reason
    assert wallet["next_nonce"] >= 1
    replayed = parsed(await cli("replay", "--workflow-id", order_id, "--json"))
    assert replayed == {
        "history": wf_id,
        "workflow_id": wf_id,
        "workflow_type": "SellOrderWorkflow",
        "compatible": True,
        "error": None,
    }


async def update_payloads_are_validated(client: Client, workflow_id: str) -> None:
    """What the Web UI's update form may send: no payload, `{}`, a payload without the operator.
    Each is refused naming the missing field and the payload to send; the order still waits."""
    handle = client.get_workflow_handle(workflow_id)
    for update in ("approve", "reject", "cancel"):
        payloads: list[list[Any]] = [[], [{}], [{"note": "looks fine"}]]
        for args in payloads:
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await handle.execute_update(update, args=args, result_type=str)
            message = str(getattr(refused.value.cause, "message", refused.value.cause))
            assert message.startswith(f"{update}: operator is required (payload {{"), message
            assert '"operator": "<who decides>"' in message
    # The same through the `temporal` CLI, which sends JSON as the Web UI does.
    temporal = [str(binaries.temporal_cli()), "workflow", "update", "execute"]
    target = ["--address", client.service_client.config.target_host, "--namespace", "default"]
    for extra in ([], ["--input", "{}"], ["--input", '{"note": "x"}']):
        argv = [*temporal, *target, "--workflow-id", workflow_id, "--name", "approve", *extra]
        refused_json = await run_command(argv, base_env(), CLI_TIMEOUT_SECONDS)
        assert refused_json.code != 0, refused_json
        assert "approve: operator is required" in refused_json.out + refused_json.err, extra
    state = await handle.query("state", result_type=SellOrderState)
    assert state.stage is Stage.AWAITING_APPROVAL and state.approved_by is None


# ---- usage errors: stages, ids --------------------------------------------------------------


async def test_an_unknown_stage_exits_2_naming_the_valid_ones(cli: Cli) -> None:
    result = await cli("list", "--stage", "AWAITING-APROVAL")
    assert result.code == 2
    line = result.error_line
    assert "unknown stage 'AWAITING-APROVAL'" in line
    assert all(stage.value in line for stage in Stage), line


async def test_ids_are_order_ids_or_workflow_ids_everywhere(cli: Cli) -> None:
    unknown = new_order_id()
    commands = [
        ("status", workflow_id_for(unknown)),
        ("approve", workflow_id_for(unknown), "--operator", "ops"),
        ("poll-now", workflow_id_for(unknown)),
        ("replay", "--workflow-id", unknown),
    ]
    results = await asyncio.gather(*(cli(*command) for command in commands))
    for command, result in zip(commands, results, strict=True):
        assert result.code == 1, (command, result)
        assert "not found" in result.error_line.lower(), (command, result.err)
        assert "kado-sell-kado-sell" not in result.err, command
    bad = await cli("status", "kado-sell-no spaces!")
    assert bad.code == 2 and "not an order id" in bad.error_line


# ---- start twice -------------------------------------------------------------------------------


async def test_a_second_start_with_different_input_is_refused_naming_the_fields(
    dev_env: WorkflowEnvironment, cli: Cli
) -> None:
    order_id = new_order_id()
    nobody = {"OFFRAMP_TASK_QUEUE": "nobody-polls"}
    base = ("--max-amount", "100", "--user-ref", "user-1")
    first = parsed(await cli("start", order_id, *base, "--json", env=nobody))
    assert first["workflow_id"] == workflow_id_for(order_id)
    wallet = "0x" + "ab" * 20
    handle = dev_env.client.get_workflow_handle(workflow_id_for(order_id))
    try:
        for closed in (False, True):
            same, by_wf_id, differ, other_wallet = await asyncio.gather(
                cli("start", order_id, *base, "--json", env=nobody),
                cli(
                    "start",
                    workflow_id_for(order_id),
                    "--max-amount",
                    "100.00",
                    "--user-ref",
                    "user-1",
                    env=nobody,
                ),
                cli("start", order_id, "--max-amount", "200", "--user-ref", "user-2", env=nobody),
                cli("start", order_id, *base, "--wallet-address", wallet, env=nobody),
            )
            assert parsed(same) == first, closed
            assert by_wf_id.code == 0, by_wf_id.err
            assert (
                by_wf_id.out.strip() == f"workflow {first['workflow_id']} (run {first['run_id']})"
            )
            assert differ.code == 1, differ
            line = differ.error_line
            assert f"order {order_id} was already started" in line and first["run_id"] in line
            assert "different user_ref, max_amount:" in line, line
            assert other_wallet.code == 1
            assert "different wallet_address:" in other_wallet.error_line
            if not closed:
                await handle.terminate("closed: a start must still compare")
        assert (await handle.describe()).run_id == first["run_id"]  # never a second run
    finally:
        if (await handle.describe()).close_time is None:
            await handle.terminate("test done")


# ---- replay a history saved under another name -------------------------------------------------


async def test_replay_takes_the_workflow_id_from_the_history(cli: Cli, tmp_path: Path) -> None:
    recorded = HISTORIES / "payments" / "hot_wallet.json"
    saved = tmp_path / "saved-under-any-name.json"
    shutil.copy(recorded, saved)
    recorded_id = load_history(recorded).workflow_id
    assert recorded_id.startswith("hot-wallet-")
    # Named after the file, the wallet's nonce-fill child ids would not match its history.
    renamed = WorkflowHistory(saved.stem, load_history(saved).events)
    assert await replay(renamed) is not None

    text, as_json = await asyncio.gather(
        cli("replay", "--history-file", str(saved)),
        cli("replay", "--history-file", str(saved), "--json"),
    )
    assert text.code == 0, text.err
    assert (
        text.out.strip() == f"{saved} ({recorded_id}, HotWallet): compatible with the current code"
    )
    assert parsed(as_json) == {
        "history": str(saved),
        "workflow_id": recorded_id,
        "workflow_type": "HotWallet",
        "compatible": True,
        "error": None,
    }


# ---- saved views ---------------------------------------------------------------------------


async def test_views_print_queries_the_server_accepts(
    dev_env: WorkflowEnvironment, cli: Cli
) -> None:
    text, as_json = await asyncio.gather(
        cli("views", "--web-ui-url", "http://127.0.0.1:8233"), cli("views", "--json")
    )
    assert text.code == 0, text.err
    listed = parsed(as_json)
    assert listed["columns"][:3] == ["OrderId", "Stage", "NeedsAttention"]
    for view in listed["views"]:
        assert view["query"].startswith('WorkflowType = "SellOrderWorkflow"')
        assert view["query"] in text.out
        assert view["url"].startswith("http://localhost:8233/namespaces/default/workflows?query=")
        # A query naming an unknown attribute or bad syntax is refused by the server.
        await dev_env.client.count_workflows(view["query"])
    assert (
        "http://127.0.0.1:8233/namespaces/default/workflows?query=WorkflowType%20%3D%20" in text.out
    )
