"""Every `offramp` command, run as a subprocess the way operators and backends run it, against the
session's local dev server and real workflows (the whole engine in-process on the test's task
queue, a private chain and the Kado simulator). Failures are one `error: ...` line and a non-zero
exit. `offramp dev` is covered by tests/devstack/test_stack.py; `python -m worker` (what
`offramp worker` runs) by tests/worker/test_worker_process.py."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from offramp.config import EngineSettings
from offramp.devstack.binaries import PROJECT_ROOT
from offramp.devstack.chain import (
    HOT_WALLET_KEY,
    LOCAL_CHAIN_NAME,
    TOKEN_SYMBOL,
    anvil_process,
    expected_token_address,
    token_contract,
    web3_for,
)
from offramp.devstack.processes import free_port
from offramp.orders.contract import CONTRACT_DIR
from offramp.orders.models import (
    RejectReason,
    SellOrderResult,
    SellOrderState,
    Stage,
    workflow_id_for,
)
from offramp.orders.render import list_query
from offramp.simulator.admin import SimulatorAdmin
from tests.cli.conftest import Cli, base_env, temporal_env
from tests.e2e.support import (
    SellChain,
    create_sim_order,
    engine_settings,
    engine_worker,
    new_order_id,
    start_order,
)

HISTORIES = Path(__file__).parents[1] / "histories"
STARTED = re.compile(r"^workflow (kado-sell-\S+) \(run ([0-9a-f-]{36})\)$")
WAIT_SECONDS = 60.0


async def wait_for(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll `check` until it holds, at most WAIT_SECONDS."""
    try:
        async with asyncio.timeout(WAIT_SECONDS):
            while True:
                if await check():
                    return
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"no {what} within {WAIT_SECONDS:.0f} s") from None


async def wait_stage(handle: WorkflowHandle[Any, Any], *stages: Stage) -> SellOrderState:
    async def reached() -> bool:
        state = await handle.query("state", result_type=SellOrderState)
        return state.stage in stages

    await wait_for(reached, f"stage {'/'.join(stages)}")
    state: SellOrderState = await handle.query("state", result_type=SellOrderState)
    return state


async def wait_listed(client: Client, query: str, order_id: str) -> None:
    """Visibility is eventually consistent: wait until `query` finds the order."""

    async def listed() -> bool:
        found = [wf.id async for wf in client.list_workflows(f"{query} AND OrderId = '{order_id}'")]
        return found == [workflow_id_for(order_id)]

    await wait_for(listed, f"{order_id} in `{query}`")


async def result_of(client: Client, order_id: str) -> SellOrderResult:
    handle = client.get_workflow_handle(workflow_id_for(order_id), result_type=SellOrderResult)
    async with asyncio.timeout(WAIT_SECONDS):
        result: SellOrderResult = await handle.result()
    return result


async def not_started(client: Client, order_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id_for(order_id)).describe()
    except RPCError as exc:
        return exc.status is RPCStatusCode.NOT_FOUND
    return False


# ---- start, status, list -------------------------------------------------------------------


async def test_start_twice_status_and_list_filters(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str, cli: Cli
) -> None:
    client = dev_env.client
    order_id = await create_sim_order(admin, amount=Decimal("12.5"))
    failing_id = await create_sim_order(admin, scenario="provider_failure")
    deposit = (await admin.order(order_id)).data["depositAddress"]
    async with engine_worker(client, engine_settings(sc, task_queue)):
        failing = await start_order(client, task_queue, failing_id)
        start = ("start", order_id, "--max-amount", "100", "--user-ref", "user-42")
        # Two starts of the same order at once: one workflow.
        first, second = await asyncio.gather(cli(*start), cli(*start))
        assert first.code == 0 and second.code == 0, first.err + second.err
        started = [STARTED.match(r.out.strip()) for r in (first, second)]
        assert started[0] and started[1], first.out + second.out
        assert started[0].groups() == started[1].groups()
        assert started[0].group(1) == workflow_id_for(order_id)

        result = await result_of(client, order_id)
        assert (await failing.result()).outcome is Stage.PROVIDER_FAILED
        # Started again once it ended: the same (closed) workflow, no new run.
        again = await cli(*start)
        assert again.code == 0 and again.out.strip() == first.out.strip(), again.out + again.err
        # A closed workflow's state query is answered by a worker: status while it runs.
        text, as_json = await asyncio.gather(
            cli("status", order_id), cli("status", order_id, "--json")
        )

    assert result.outcome is Stage.SETTLED, result.reason
    assert sc.token_transfers_to(deposit) == [12_500_000]
    assert text.code == 0, text.err
    assert "source       worker (state query answered by a worker)" in text.out
    assert f"order        {order_id}" in text.out
    assert "stage        SETTLED" in text.out
    assert f"payment      12.5 {TOKEN_SYMBOL} on {LOCAL_CHAIN_NAME} to {deposit}" in text.out
    assert f"confirmed    {result.confirmed_tx_hash} in block {result.block_number}" in text.out
    assert as_json.code == 0, as_json.err
    view = json.loads(as_json.out)
    assert view["source"] == "worker"
    state = SellOrderState.model_validate(view["state"])
    assert state.stage is Stage.SETTLED
    assert state.confirmed_tx_hash == result.confirmed_tx_hash
    assert state.tx_hashes == result.tx_hashes

    settled_filter = ("--stage", "settled", "--chain", LOCAL_CHAIN_NAME, "--asset", "usdc")
    await wait_listed(
        client, list_query(stage="SETTLED", chain=LOCAL_CHAIN_NAME, asset="USDC"), order_id
    )
    await wait_listed(client, list_query(needs_attention=True), failing_id)
    # The provider is a search attribute from the start (set by the starter, never upserted).
    await wait_listed(client, "Provider = 'kado'", order_id)
    settled, attention, other_chain = await asyncio.gather(
        cli("list", *settled_filter, "--limit", "1000"),
        # An 80-column terminal: the order ids stay whole.
        cli("list", "--needs-attention", "--limit", "1000", env={"COLUMNS": "80"}),
        cli("list", "--chain", "polygon", "--limit", "1000"),
    )
    for listed in (settled, attention, other_chain):
        assert listed.code == 0, listed.err
    assert order_id in settled.out and failing_id not in settled.out
    assert result.confirmed_tx_hash is not None
    assert f"{result.confirmed_tx_hash[:10]}…{result.confirmed_tx_hash[-4:]}" in settled.out
    assert "Stage = 'SETTLED' AND Chain = 'anvil' AND Asset = 'USDC'" in settled.out
    assert failing_id in attention.out and order_id not in attention.out
    assert order_id not in other_chain.out and failing_id not in other_chain.out
    assert "0 order(s) matching" in other_chain.out


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--max-amount", "ten", "--user-ref", "user-42"), "max_amount"),
        (("--max-amount", "0", "--user-ref", "user-42"), "max_amount"),
        (("--max-amount", "10"), "user_ref and/or wallet_address"),
        (("--max-amount", "10", "--wallet-address", "0x1234"), "wallet_address"),
        (("--user-ref", "user-42"), "--max-amount"),
    ],
    ids=["amount-not-decimal", "amount-zero", "unbound", "bad-wallet", "no-amount"],
)
async def test_start_with_bad_input_fails_naming_the_field(
    dev_env: WorkflowEnvironment, cli: Cli, args: tuple[str, ...], named: str
) -> None:
    order_id = new_order_id()
    result = await cli("start", order_id, *args)
    assert result.code == 2
    assert named in result.error_line
    assert await not_started(dev_env.client, order_id)


async def test_start_with_a_bad_order_id_starts_nothing(cli: Cli) -> None:
    result = await cli("start", "no spaces!", "--max-amount", "10", "--user-ref", "u")
    assert result.code == 2
    assert "order_id" in result.error_line


# ---- approve, reject, cancel, poll-now -----------------------------------------------------


async def test_approve_and_reject(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str, cli: Cli
) -> None:
    client = dev_env.client
    approved_id = await create_sim_order(admin, amount=Decimal("6000"))
    rejected_id = await create_sim_order(admin, amount=Decimal("5000"))
    deposit = (await admin.order(approved_id)).data["depositAddress"]
    async with engine_worker(client, engine_settings(sc, task_queue)):
        approved = await start_order(client, task_queue, approved_id)
        rejected = await start_order(client, task_queue, rejected_id)
        await wait_stage(approved, Stage.AWAITING_APPROVAL)
        await wait_stage(rejected, Stage.AWAITING_APPROVAL)
        nonce = sc.hot_wallet_nonce()
        no = await cli("reject", rejected_id, "--operator", "ops@example.com")
        assert no.code == 0 and "rejected" in no.out, no.out + no.err
        assert (await rejected.result()).reject_reason is RejectReason.NOT_APPROVED
        assert sc.hot_wallet_nonce() == nonce  # the rejected order sent nothing
        ok = await cli("approve", approved_id, "--operator", "ops@example.com", "--note", "kyc")
        assert ok.code == 0 and "approved" in ok.out, ok.out + ok.err
        # Approved once: a second approval is refused, in one line (while the order still runs
        # or, on a slow machine, after it settled).
        twice = await cli("approve", approved_id, "--operator", "ops@example.com")
        assert twice.code == 1
        assert twice.error_line.startswith("error: approve refused: ")
        result = await approved.result()
        state = await approved.query("state", result_type=SellOrderState)
    assert result.outcome is Stage.SETTLED, result.reason
    assert state.approved_by == "ops@example.com"
    assert sc.token_transfers_to(deposit) == [6000 * 10**6]


async def test_poll_now_and_cancel_before_sending_then_refused_after(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str, cli: Cli
) -> None:
    client = dev_env.client
    waiting_id = await create_sim_order(admin, ready_after_seconds=3600)
    paid_id = await create_sim_order(
        admin, scenario="slow_settlement", slow_settlement_seconds=3600
    )
    async with engine_worker(client, engine_settings(sc, task_queue)):
        # Hour-long polls: only poll_now makes it ask the provider again.
        waiting = await start_order(
            client,
            task_queue,
            waiting_id,
            poll_initial_interval=timedelta(hours=1),
            poll_max_interval=timedelta(hours=1),
            ready_timeout=timedelta(hours=3),
        )
        paid = await start_order(client, task_queue, paid_id)
        await wait_stage(waiting, Stage.AWAITING_ORDER)
        paid_state = await wait_stage(paid, Stage.TRACKING)

        # poll_now is ignored within 2 s of a fresh poll: send it until the provider is asked.
        asked = await admin.requests_for(waiting_id)
        async with asyncio.timeout(WAIT_SECONDS):
            while await admin.requests_for(waiting_id) == asked:
                poke = await cli("poll-now", waiting_id)
                assert poke.code == 0, poke.err
                assert poke.out.strip() == f"poll_now sent to {workflow_id_for(waiting_id)}"
                for _ in range(15):
                    if await admin.requests_for(waiting_id) > asked:
                        break
                    await asyncio.sleep(0.2)

        nonce = sc.hot_wallet_nonce()
        cancelled, refused = await asyncio.gather(
            cli("cancel", waiting_id, "--operator", "ops@example.com", "--note", "user asked"),
            cli("cancel", paid_id, "--operator", "ops@example.com"),
        )
        assert cancelled.code == 0, cancelled.err
        assert "cancel" in cancelled.out
        result = await waiting.result()
        assert result.outcome is Stage.CANCELLED and result.tx_hashes == []
        assert sc.hot_wallet_nonce() == nonce

        assert refused.code == 1
        assert refused.error_line.startswith("error: cancel refused: ")
        assert "a transaction may exist" in refused.error_line
        assert (await wait_stage(paid, Stage.TRACKING)).tx_hashes == paid_state.tx_hashes
        await paid.terminate("test done")


# ---- errors: unknown orders, unreachable Temporal ------------------------------------------


async def test_unknown_order_is_one_line_and_non_zero(cli: Cli) -> None:
    unknown = new_order_id()
    commands = [
        ("status", unknown),
        ("status", unknown, "--json"),
        ("approve", unknown, "--operator", "ops"),
        ("reject", unknown, "--operator", "ops"),
        ("cancel", unknown, "--operator", "ops"),
        ("poll-now", unknown),
    ]
    results = await asyncio.gather(*(cli(*command) for command in commands))
    for command, result in zip(commands, results, strict=True):
        assert result.code == 1, (command, result)
        assert unknown in result.error_line, command
        assert "not found" in result.error_line.lower(), (command, result.err)


async def test_unreachable_temporal_is_one_line_and_non_zero(cli: Cli) -> None:
    nowhere = {"TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}
    commands = [
        ("status", new_order_id()),
        ("list",),
        ("start", new_order_id(), "--max-amount", "1", "--user-ref", "u"),
        ("poll-now", new_order_id()),
        ("replay", "--workflow-id", "kado-sell-x"),
    ]
    results = await asyncio.gather(*(cli(*command, env=nowhere) for command in commands))
    for command, result in zip(commands, results, strict=True):
        assert result.code == 1, (command, result)
        assert result.error_line.startswith("error: cannot connect to Temporal: "), command


# ---- replay -------------------------------------------------------------------------------


async def test_replay_compatible_and_not(
    dev_env: WorkflowEnvironment,
    sc: SellChain,
    admin: SimulatorAdmin,
    task_queue: str,
    cli: Cli,
    tmp_path: Path,
) -> None:
    committed = HISTORIES / "rejected_buy_order.json"
    happy = HISTORIES / "token_happy.json"
    history = json.loads(committed.read_text())
    # The same history after a change that calls another activity: nondeterministic.
    changed = tmp_path / "changed.json"
    changed.write_text(committed.read_text().replace('"kado_fetch_order"', '"kado_fetch_v2"'))
    # A workflow type this code does not have.
    other = tmp_path / "other_type.json"
    other.write_text(committed.read_text().replace('"SellOrderWorkflow"', '"BuyOrderWorkflow"'))
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text(committed.read_text()[:2000])
    truncated = tmp_path / "started_only.json"
    truncated.write_text(json.dumps({**history, "events": history["events"][:1]}))

    # A live workflow: an order the engine rejects at once (not a sell order).
    live_id = await create_sim_order(admin, order_type="buy")
    async with engine_worker(dev_env.client, engine_settings(sc, task_queue)):
        await (await start_order(dev_env.client, task_queue, live_id)).result()

    runs = await asyncio.gather(
        cli("replay", "--history-file", str(happy)),
        cli("replay", "--workflow-id", workflow_id_for(live_id)),
        cli("replay", "--history-file", str(changed)),
        cli("replay", "--history-file", str(other)),
        cli("replay", "--history-file", str(corrupt)),
        cli("replay", "--history-file", str(truncated)),
        cli("replay", "--history-file", str(tmp_path / "missing.json")),
        cli("replay", "--workflow-id", workflow_id_for(new_order_id())),
        cli("replay"),
    )
    ok_file, ok_live, nondet, unknown_type, bad_json, no_task, missing, no_wf, neither = runs
    assert ok_file.code == 0, ok_file.err
    happy_id = json.loads(happy.read_text())["events"][0][
        "workflowExecutionStartedEventAttributes"
    ]["workflowId"]
    assert ok_file.out.strip() == (
        f"{happy} ({happy_id}, SellOrderWorkflow): compatible with the current code"
    )
    assert ok_live.code == 0, ok_live.err
    assert "compatible with the current code" in ok_live.out

    assert nondet.code == 1
    assert "NOT compatible" in nondet.error_line and "Nondeterminism" in nondet.error_line
    assert unknown_type.code == 1
    assert "NOT compatible" in unknown_type.error_line
    assert "BuyOrderWorkflow is not registered" in unknown_type.error_line
    for broken, why in [
        (bad_json, "not a JSON workflow history"),
        (no_task, "no workflow task"),
        (missing, "No such file"),
    ]:
        assert broken.code == 1
        assert "cannot replay" in broken.error_line and why in broken.error_line
    assert no_wf.code == 1 and "not found" in no_wf.error_line.lower()
    assert neither.code == 2 and "exactly one of" in neither.error_line


# ---- schema, worker, chain-setup ---------------------------------------------------------


async def test_schema_writes_the_committed_contract(cli: Cli, tmp_path: Path) -> None:
    result = await cli("schema", "--out", str(tmp_path))
    assert result.code == 0, result.err
    written = json_files(tmp_path)
    committed = json_files(CONTRACT_DIR)
    assert sorted(written) == sorted(set(committed) - {"example-input.json"})
    for name, text in written.items():
        assert text == committed[name], f"contract/{name} differs from `offramp schema`"
        assert f"wrote {tmp_path / name}" in result.out


def json_files(directory: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in directory.glob("*.json")}


async def test_worker_serves_its_task_queue_and_stops_on_sigterm(
    dev_env: WorkflowEnvironment, sc: SellChain, admin: SimulatorAdmin, task_queue: str
) -> None:
    settings: EngineSettings = engine_settings(sc, task_queue)
    env = {
        **base_env(),
        **temporal_env(dev_env),
        "PYTHONUNBUFFERED": "1",
        "OFFRAMP_TASK_QUEUE": task_queue,
        "OFFRAMP_CHAINS": json.dumps(
            {name: config.model_dump(mode="json") for name, config in settings.chains.items()}
        ),
        "OFFRAMP_HOT_WALLET_PRIVATE_KEY": HOT_WALLET_KEY,
        "OFFRAMP_KADO_BASE_URL": sc.simulator_url,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "offramp",
        "worker",
        env=env,
        cwd=PROJECT_ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(WAIT_SECONDS):
            while b"worker ready" not in (line := await proc.stdout.readline()):
                assert line, "the worker exited before it was ready"
        # It runs real orders: an unknown order is rejected by the worker's activities.
        handle = await start_order(dev_env.client, task_queue, new_order_id())
        async with asyncio.timeout(WAIT_SECONDS):
            result = await handle.result()
        assert result.reject_reason is RejectReason.ORDER_NOT_FOUND
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            rest = await proc.stdout.read()
            assert await proc.wait() == 0, rest.decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert HOT_WALLET_KEY[2:] not in rest.decode()


async def test_worker_with_bad_configuration_exits_2_naming_it(cli: Cli) -> None:
    result = await cli("worker", env={"OFFRAMP_CHAINS": "{not json"})
    assert result.code == 2
    assert "OFFRAMP_CHAINS" in result.err and "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) == 1


async def test_chain_setup_on_a_fresh_anvil(cli: Cli, tmp_path: Path) -> None:
    port = free_port()
    anvil = anvil_process(port, tmp_path / "anvil.log").start()
    try:
        rpc_url = f"http://127.0.0.1:{port}"
        anvil.wait_until(lambda: web3_for(rpc_url).eth.chain_id > 0, 30, "JSON-RPC")
        chains_file = tmp_path / "conf" / "chains.json"
        setup = ("chain-setup", "--rpc-url", rpc_url, "--chains-file", str(chains_file))
        first = await cli(*setup)
        assert first.code == 0, first.err
        token = expected_token_address()
        assert token in first.out
        w3 = web3_for(rpc_url)
        assert w3.eth.get_code(token)
        config = json.loads(chains_file.read_text())[LOCAL_CHAIN_NAME]
        assert config["chain_id"] == w3.eth.chain_id
        assert config["rpc_url"] == rpc_url
        assert config["assets"][TOKEN_SYMBOL]["address"] == token
        balance = token_contract(w3, token).functions.balanceOf(config["hot_wallet"]).call()
        assert balance > 0
        # Idempotent: the same token, nothing redeployed.
        again = await cli(*setup)
        assert again.code == 0 and again.out == first.out, again.err
    finally:
        anvil.stop()

    unreachable = await cli(*setup)
    assert unreachable.code == 1
    assert unreachable.error_line == f"error: cannot reach a JSON-RPC node at {rpc_url}"
