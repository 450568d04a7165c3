"""Every committed Payment, NonceFill and HotWallet history replays against the current code
(recorded by record.py next to this file from real runs), and none holds the private key."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory

from offramp.devstack.chain import HOT_WALLET_KEY
from offramp.orders.replay import replay
from tests.chain.support import history_holds_key

HISTORIES = sorted(Path(__file__).parent.glob("*.json"))
SCENARIOS = {p.stem for p in HISTORIES}


def load(path: Path) -> WorkflowHistory:
    """The workflow id is the one recorded in the history (child ids derive from it: a hot-wallet
    fill's id is the wallet's id + "-fill-<nonce>"), not the file's name."""
    history = WorkflowHistory.from_json("unknown", path.read_text())
    started = history.events[0].workflow_execution_started_event_attributes
    assert started.workflow_id, f"{path.name}: no workflow id in WorkflowExecutionStarted"
    return WorkflowHistory(started.workflow_id, history.events)


def test_the_required_scenarios_are_recorded() -> None:
    assert {
        "payment_token_happy",
        "payment_native_happy",
        "payment_fee_bumped",
        "payment_dropped_rebroadcast",
        "payment_dropped_past_bound",
        "payment_rejected_preflight",
        "nonce_fill",
        "hot_wallet",
        "hot_wallet_continued",
        "hot_wallet_carry_answers",  # record_stream.py: the hot-wallet-carry-answers patch
        "hot_wallet_carried",
        "hot_wallet_call_back",  # record_call_back.py: payments waitlisted and called back
        "payment_called_back",
        "payment_quiet_progress",  # tests/histories/record.py: a child of a happy order
    } <= SCENARIOS


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_history_replays(path: Path) -> None:
    assert await replay(load(path)) is None


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
def test_history_holds_no_private_key(path: Path) -> None:
    assert HOT_WALLET_KEY[2:] not in path.read_text().lower()
    assert not history_holds_key(path.read_text())


def test_the_wallet_history_handed_out_nonces_filled_one_and_continued_as_new() -> None:
    kinds = [
        e.WhichOneof("attributes") for e in load(Path(__file__).parent / "hot_wallet.json").events
    ]
    assert kinds.count("workflow_execution_update_accepted_event_attributes") >= 3
    assert "start_child_workflow_execution_initiated_event_attributes" in kinds
    assert kinds[-1] == "workflow_execution_continued_as_new_event_attributes"


def test_the_bounded_history_took_the_patched_branch() -> None:
    from workflows.payment import PATCH_BOUNDED_SEND_ROUNDS

    history = load(Path(__file__).parent / "payment_dropped_past_bound.json")
    markers = [
        e.marker_recorded_event_attributes
        for e in history.events
        if e.HasField("marker_recorded_event_attributes")
    ]
    assert any(PATCH_BOUNDED_SEND_ROUNDS.encode() in m.SerializeToString() for m in markers)


@pytest.mark.parametrize(
    ("name", "patch"),
    [
        ("hot_wallet_call_back", "hot-wallet-call-back"),
        ("payment_called_back", "payment-call-back"),
        ("payment_quiet_progress", "quiet-progress"),
    ],
)
def test_the_call_back_histories_took_their_patch(name: str, patch: str) -> None:
    history = load(Path(__file__).parent / f"{name}.json")
    markers = [
        e.marker_recorded_event_attributes.SerializeToString()
        for e in history.events
        if e.HasField("marker_recorded_event_attributes")
    ]
    assert any(patch.encode() in m for m in markers)
    # The called-back payment asked the wallet more than once (waitlisted, then called back).
    if name == "payment_called_back":
        asks = [
            e
            for e in history.events
            if e.HasField("activity_task_scheduled_event_attributes")
            and e.activity_task_scheduled_event_attributes.activity_type.name == "request_nonce"
        ]
        assert len(asks) >= 2, len(asks)


def test_a_quiet_payment_signalled_only_its_wallet() -> None:
    """quiet-progress: a happy child payment sends its order nothing; its signals go to the
    hot-wallet entity only."""
    history = load(Path(__file__).parent / "payment_quiet_progress.json")
    targets = [
        e.signal_external_workflow_execution_initiated_event_attributes.workflow_execution.workflow_id
        for e in history.events
        if e.HasField("signal_external_workflow_execution_initiated_event_attributes")
    ]
    started = history.events[0].workflow_execution_started_event_attributes
    assert started.parent_workflow_execution.workflow_id  # it ran as a child of an order
    assert targets and all(t.startswith("hot-wallet") for t in targets), targets
