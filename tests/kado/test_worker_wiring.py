"""The worker creates one KadoClient from settings, registers the Kado activities, closes it."""

from __future__ import annotations

from temporalio import activity

from offramp.config import load_settings
from offramp.providers.kado.client import KadoClient
from offramp.providers.kado.models import FETCH_ORDER_ACTIVITY, WAIT_FOR_ORDER_CHANGE_ACTIVITY
from worker import registry
from worker.resources import WorkerResources


async def test_worker_registers_kado_activities(clean_env: None) -> None:
    settings = load_settings(kado_base_url="http://127.0.0.1:9", kado_widget_id="w-secret")
    resources = await WorkerResources.create(settings)
    try:
        kado = resources.providers["kado"]
        assert isinstance(kado, KadoClient)
        assert kado.base_url == "http://127.0.0.1:9"
        names = set()
        for fn in registry.activities(resources):
            defn = activity._Definition.from_callable(fn)
            if defn is not None and defn.name:
                names.add(defn.name)
        assert {FETCH_ORDER_ACTIVITY, WAIT_FOR_ORDER_CHANGE_ACTIVITY} <= names
    finally:
        await resources.aclose()
    assert kado._http.is_closed
