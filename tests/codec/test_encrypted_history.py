"""With encryption on, an order's stored histories carry no user ref, address or amount in
plaintext; the same order read through the codec shows them (README "Encrypted payloads")."""

from __future__ import annotations

import base64
import os
import sys
import uuid
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path

import pytest
from google.protobuf.json_format import MessageToJson
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from offramp.codec import parse_key_ring
from offramp.converter import encrypting_converter
from offramp.orders.models import SellOrderResult, Stage
from offramp.simulator.admin import SimulatorAdmin
from tests.cli.conftest import CLI_TIMEOUT_SECONDS, run_command
from tests.e2e.support import (
    SellChain,
    create_sim_order,
    engine_settings,
    engine_worker,
    sell_chain,
    start_order,
)

# Search attributes are indexed by the server, so never encrypted (README): checked on their own.
_SEARCH_ATTRIBUTE_EVENTS = {EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES}
README_VISIBLE_SEARCH_ATTRIBUTES = {
    "OrderId",
    "Provider",
    "Stage",
    "TransferStatus",
    "Chain",
    "Asset",
    "Amount",
    "TxHash",
    "HotWallet",
    "NeedsAttention",
    "TemporalChangeVersion",  # the SDK's: names of workflow.patched markers
}


@pytest.fixture(scope="module")
def sc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SellChain]:
    with sell_chain(Path(tmp_path_factory.mktemp("codec"))) as chain:
        yield chain


KEYS = f"test-key:{base64.b64encode(os.urandom(32)).decode()}"


def encrypted_client(plain: Client) -> Client:
    converter = encrypting_converter(parse_key_ring(KEYS, "OFFRAMP_CODEC_KEYS"))
    return Client(plain.service_client, namespace=plain.namespace, data_converter=converter)


def visible_text(event: HistoryEvent) -> str:
    """Everything the server stores for the event except search attributes, as text (payload
    bytes are base64 in JSON: also decode every payload's data, in case it is plain)."""
    copy = HistoryEvent()
    copy.CopyFrom(event)
    for attr in (
        "workflow_execution_started_event_attributes",
        "start_child_workflow_execution_initiated_event_attributes",
    ):
        if copy.HasField(attr):
            getattr(copy, attr).ClearField("search_attributes")
    raw = copy.SerializeToString()
    return MessageToJson(copy) + raw.decode("latin-1")


async def task_queue_histories(client: Client, task_queue: str) -> dict[str, list[HistoryEvent]]:
    """Every history of the test's task queue: the order, its payment, the hot-wallet entity."""
    histories = {}
    async for wf in client.list_workflows(f"TaskQueue = '{task_queue}'"):
        history = await client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        histories[wf.id] = list(history.events)
    return histories


@pytest.mark.parametrize("encrypted", [True, False], ids=["encrypted", "plain-control"])
async def test_stored_histories_hold_no_order_data_in_plaintext(
    dev_env: WorkflowEnvironment, sc: SellChain, task_queue: str, encrypted: bool
) -> None:
    user_ref = f"user-{uuid.uuid4().hex[:12]}"
    amount = Decimal("271.828182")
    async with SimulatorAdmin(sc.simulator_url) as admin:
        order_id = await create_sim_order(admin, asset="USDC", amount=amount, user_ref=user_ref)
        deposit = (await admin.order(order_id)).data["depositAddress"]
    client = encrypted_client(dev_env.client) if encrypted else dev_env.client
    async with engine_worker(client, engine_settings(sc, task_queue)):
        handle = await start_order(client, task_queue, order_id, user_ref=user_ref)
        result: SellOrderResult = await handle.result()
    assert result.outcome is Stage.SETTLED, result.reason
    assert result.amount == amount and result.confirmed_tx_hash is not None  # decoded fine

    # The server's record, read without the codec (as the Web UI or a database dump sees it).
    histories = await task_queue_histories(dev_env.client, task_queue)
    assert len(histories) >= 3, f"expected order, payment and hot wallet: {list(histories)}"
    needles = {
        "user ref": user_ref,
        "deposit address": deposit.lower().removeprefix("0x"),
        "amount": "271.828182",
        "amount in base units": str(271_828_182),
        "tx hash": result.confirmed_tx_hash.lower().removeprefix("0x"),
    }
    leaks = [
        f"{what} in {wf_id} event {e.event_id} {EventType.Name(e.event_type)}"
        for wf_id, events in histories.items()
        for e in events
        if e.event_type not in _SEARCH_ATTRIBUTE_EVENTS
        for what, needle in needles.items()
        if needle in visible_text(e).lower()
    ]
    if encrypted:
        assert not leaks, "\n".join(leaks)
        await replay_needs_the_keys(dev_env, handle.id)
    else:  # the control: the same check finds each of them without the codec
        found = {leak.split(" in ")[0] for leak in leaks}
        assert {"user ref", "deposit address", "amount", "tx hash"} <= found, found

    # What stays visible by design: search attributes (the server indexes them; README lists
    # them). A new one must be added to the README's list, and must not be the user or address;
    # with encryption on not the amount either (no `Amount`: the starter turns it off).
    visible = {
        name: value.data.decode()  # the JSON text the server indexes
        for events in histories.values()
        for e in events
        for name, value in _search_attributes(e).items()
    }
    assert set(visible) <= README_VISIBLE_SEARCH_ATTRIBUTES, set(visible)
    assert not any(user_ref in v or deposit.lower() in v.lower() for v in visible.values())
    amount_shown = any(needles["amount"] in v for v in visible.values())
    assert amount_shown is not encrypted, visible


def _search_attributes(event: HistoryEvent) -> Mapping[str, Payload]:
    """The search attributes an event stores: an upsert, or a (child) workflow's start."""
    for attr in (
        "upsert_workflow_search_attributes_event_attributes",
        "workflow_execution_started_event_attributes",
        "start_child_workflow_execution_initiated_event_attributes",
    ):
        if event.HasField(attr):
            fields: Mapping[str, Payload] = getattr(event, attr).search_attributes.indexed_fields
            return fields
    return {}


async def replay_needs_the_keys(dev_env: WorkflowEnvironment, workflow_id: str) -> None:
    """`offramp replay` decodes the encrypted history with OFFRAMP_CODEC_KEYS, and cannot
    without them."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": dev_env.client.namespace,
    }
    with_keys = await run_command(
        [sys.executable, "-m", "offramp", "replay", "--workflow-id", workflow_id],
        {**env, "OFFRAMP_CODEC_KEYS": KEYS},
        CLI_TIMEOUT_SECONDS,
    )
    assert with_keys.code == 0, with_keys.err
    assert "compatible with the current code" in with_keys.out
    without = await run_command(
        [sys.executable, "-m", "offramp", "replay", "--workflow-id", workflow_id],
        env,
        CLI_TIMEOUT_SECONDS,
    )
    assert without.code == 1 and "NOT compatible" in without.error_line, without.err
