"""What the worker hosts. Every workflow and activity the engine uses is listed here, once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from activities.chain import ChainActivities
from activities.hot_wallet import HotWalletActivities
from activities.orders import OrderActivities
from activities.provider import ProviderActivities
from offramp.config import WorkerRole
from offramp.providers import adapter
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


def activities_for(role: WorkerRole, resources: WorkerResources) -> Sequence[Callable[..., Any]]:
    """The activities a worker of `role` polls for: none at all unless it can run every one."""
    return activities(resources) if roles.runs_activities(role) else []
