"""Every committed SellOrderWorkflow history replays against the current code; a deliberately
incompatible change fails replay, and the same change behind `workflow.patched` replays."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from offramp.converter import DATA_CONVERTER
from offramp.devstack.chain import HOT_WALLET_KEY
from offramp.orders.replay import load_history, replay
from tests.chain.support import history_holds_key
from tests.histories.variants import IncompatibleSellOrder, PatchedSellOrder

HISTORIES = sorted(Path(__file__).parent.glob("*.json"))
SCENARIOS = {p.stem for p in HISTORIES}


def test_the_required_scenarios_are_recorded() -> None:
    required = {
        "token_happy",
        "native_happy",
        "rejected_unknown_order",
        "rejected_buy_order",
        "rejected_over_max_amount",
        "approved",
        "cancelled_before_sending",
        "fee_bump",
        "provider_failure",
        "unresolved",
    }
    assert required <= SCENARIOS


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_history_replays(path: Path) -> None:
    assert await replay(load_history(path)) is None


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
def test_history_holds_no_private_key(path: Path) -> None:
    assert HOT_WALLET_KEY[2:] not in path.read_text().lower()
    assert not history_holds_key(path.read_text())


def history(name: str) -> WorkflowHistory:
    return load_history(Path(__file__).parent / f"{name}.json")


@pytest.mark.parametrize("name", ["token_happy", "rejected_buy_order"])
async def test_incompatible_change_fails_replay(name: str) -> None:
    replayer = Replayer(workflows=[IncompatibleSellOrder], data_converter=DATA_CONVERTER)
    result = await replayer.replay_workflow(history(name), raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()


@pytest.mark.parametrize("name", ["token_happy", "rejected_buy_order"])
async def test_patched_change_replays(name: str) -> None:
    replayer = Replayer(workflows=[PatchedSellOrder], data_converter=DATA_CONVERTER)
    result = await replayer.replay_workflow(history(name), raise_on_replay_failure=False)
    assert result.replay_failure is None


# Histories of the paths a patch changed, each holding its patch marker (so they guard the new
# path, and the old histories without it guard the old one).
PATCHED_PATHS = {
    "rejected_already_funded": "refuse-already-funded",
    "funded_while_waiting": "refuse-already-funded",
    "workflow_cancelled_during_fetch": "workflow-cancel-ends-cancelled",
    "workflow_cancelled_while_waiting": "workflow-cancel-ends-cancelled",
    "malformed_after_payment": "retry-malformed-after-payment",
    "malformed_until_deadline": "retry-malformed-after-payment",
    "sparse_upserts_happy": "sparse-upserts",
    "sparse_upserts_not_ready": "sparse-upserts",
    "quiet_progress_happy": "sparse-upserts",
    "continued_as_new_run1": "order-continue-as-new",
    "continued_as_new_run2": "order-continue-as-new",
}


def patch_ids(name: str) -> set[str]:
    ids = set()
    for event in history(name).events:
        if event.HasField("marker_recorded_event_attributes"):
            marker = event.marker_recorded_event_attributes
            for payload in marker.details["patch-data"].payloads:
                ids.add(json.loads(payload.data)["id"])
    return ids


@pytest.mark.parametrize("name", sorted(PATCHED_PATHS))
def test_new_path_history_holds_its_patch(name: str) -> None:
    assert PATCHED_PATHS[name] in patch_ids(name)


def test_old_histories_predate_the_issue_11_patches() -> None:
    new_ids = set(PATCHED_PATHS.values())
    for name in ("token_happy", "cancelled_before_sending", "unresolved"):
        assert not patch_ids(name) & new_ids


def test_the_continued_runs_hand_the_order_on() -> None:
    """Run 1 (waiting for the order) and run 2 (following the paid order) end in
    continue-as-new; run 3 starts with the carry of a paid order and ends it."""
    runs = [history(f"continued_as_new_run{n}") for n in (1, 2, 3)]
    for run in runs[:2]:
        assert run.events[-1].HasField("workflow_execution_continued_as_new_event_attributes")
    started = runs[2].events[0].workflow_execution_started_event_attributes
    [argument] = started.input.payloads
    carry = json.loads(argument.data)["carry"]
    assert carry["tracking"] is not None and carry["runs"] == 2
    assert runs[2].events[-1].HasField("workflow_execution_completed_event_attributes")
