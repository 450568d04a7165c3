"""What the worker hosts. Every workflow and activity the engine uses is listed here, once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from temporalio import activity

from activities.chain import ChainActivities
from activities.hot_wallet import HotWalletActivities
from activities.orders import OrderActivities
from activities.provider import ProviderActivities
from offramp.config import WorkerRole
from offramp.providers import adapter
from offramp.task_queues import KEY_ACTIVITIES, SIGNER_QUEUE_ACTIVITIES
from worker import roles
from worker.resources import WorkerResources
from workflows.hot_wallet import HotWalletWorkflow
from workflows.order.workflow import SellOrderWorkflow
from workflows.payment import NonceFillWorkflow, PaymentWorkflow


def workflows() -> Sequence[type]:
    """Workflow classes the worker runs."""
    registered: list[type] = [
        SellOrderWorkflow,
        PaymentWorkflow,
        NonceFillWorkflow,
        HotWalletWorkflow,
    ]
    return registered


def activities(resources: WorkerResources) -> Sequence[Callable[..., Any]]:
    """Activity callables, bound to the worker's shared resources (HTTP clients, chains, signer)."""
    registered: list[Callable[..., Any]] = OrderActivities(resources.settings.chains).all()
    if resources.chains is not None:
        registered += ChainActivities(resources.chains).all()
        registered += HotWalletActivities(resources.chains).all()
    for name, client in resources.providers.items():
        registered += ProviderActivities(adapter(name), client).all()
    return registered


def activity_name(fn: Callable[..., Any]) -> str:
    name = activity._Definition.must_from_callable(fn).name
    assert name is not None, "every engine activity has a name (no dynamic activity)"
    return name


def main_queue_activities(
    role: WorkerRole, registered: Sequence[Callable[..., Any]]
) -> list[Callable[..., Any]]:
    """What `role` runs on the main queue: everything (`all`: also the signing activities old
    runs scheduled there before the signer queue), all but signing (`keyless`), or nothing."""
    if not (roles.runs_activities(role) and roles.polls_main_queue(role)):
        return []
    if roles.holds_key(role):
        return list(registered)
    return [fn for fn in registered if activity_name(fn) not in KEY_ACTIVITIES]


def signer_queue_activities(
    role: WorkerRole, registered: Sequence[Callable[..., Any]]
) -> list[Callable[..., Any]]:
    """What `role` runs on the signer queue (only a role that holds the key polls it)."""
    if not roles.polls_signer_queue(role):
        return []
    return [fn for fn in registered if activity_name(fn) in SIGNER_QUEUE_ACTIVITIES]
