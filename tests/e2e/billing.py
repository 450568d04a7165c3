"""Temporal Cloud billable actions of one workflow run, counted from its history
(../shared/reference/temporal.md, "What Temporal Cloud bills").

Every activity *attempt* is billed, and a poll-by-retry wait shows only its last attempt: the
attempts come from `ActivityTaskStartedEventAttributes.attempt`. Not visible in a history, so not
counted here: queries, rejected updates, attempts of a wait cancelled between attempts (counted
as 1), heartbeats (this engine sends none).
"""

from __future__ import annotations

from collections import Counter

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

E = EventType
# Event type -> actions it bills (an activity's attempts are counted apart).
_BILLED: dict[int, int] = {
    E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED: 1,
    E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED: 1,
    E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED: 1,
    E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES: 1,
    E.EVENT_TYPE_TIMER_STARTED: 1,
    E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED: 2,
    E.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED: 1,
    E.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED: 1,
    E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: 1,
}


def billed_actions(history: WorkflowHistory) -> Counter[str]:
    """Actions by kind ("activity_attempt", "signal", "upsert", ...); `sum(...values())` is the
    run's bill."""
    names = {
        E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED: "start",
        E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED: "signal",
        E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED: "update",
        E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES: "upsert",
        E.EVENT_TYPE_TIMER_STARTED: "timer",
        E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED: "child_start",
        E.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED: "signal_sent",
        E.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED: "cancel_sent",
        E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "continue_as_new",
    }
    actions: Counter[str] = Counter()
    scheduled: set[int] = set()
    started: set[int] = set()
    local_marker_tasks: set[int] = set()
    last_task_completed = 0
    for event in history.events:
        kind = event.event_type
        if kind == E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES and _patch_marker_only(event):
            continue  # the TemporalChangeVersion upsert of a patch marker is exempt
        if kind in _BILLED:
            actions[names[kind]] += _BILLED[kind]
        elif kind == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled.add(event.event_id)
        elif kind == E.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs = event.activity_task_started_event_attributes
            started.add(attrs.scheduled_event_id)
            actions["activity_attempt"] += max(attrs.attempt, 1)
        elif kind == E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            last_task_completed = event.event_id
        elif (
            kind == E.EVENT_TYPE_MARKER_RECORDED
            and event.marker_recorded_event_attributes.marker_name == "core_local_activity"
        ):
            # Local activities of one workflow task bill 1; patch markers are exempt.
            local_marker_tasks.add(last_task_completed)
    # Scheduled but never started in history (cancelled between attempts): at least 1.
    actions["activity_attempt"] += len(scheduled - started)
    actions["local_activities"] += len(local_marker_tasks)
    return +actions


def _patch_marker_only(event: HistoryEvent) -> bool:
    fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
    return set(fields.indexed_fields) == {"TemporalChangeVersion"}


def event_counts(history: WorkflowHistory) -> Counter[str]:
    return Counter(EventType.Name(e.event_type) for e in history.events)
