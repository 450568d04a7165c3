"""A typed async client for the simulator's admin API (tests, demos, the CLI)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from types import TracebackType
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from offramp.providers.kado.models import loads_exact
from offramp.simulator.faults import FaultConfig
from offramp.simulator.jsonx import dumps_exact


class SimulatorAdminError(RuntimeError):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"simulator admin HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


class CreatedOrder(BaseModel):
    model_config = ConfigDict(frozen=True)

    order_id: str
    deposit_address: str
    expected_base_units: int | None
    state: dict[str, Any]
    data: dict[str, Any]


class OrderView(BaseModel):
    model_config = ConfigDict(frozen=True)

    state: dict[str, Any]
    data: dict[str, Any]
    requests: int  # public GETs of this order so far
    responses: dict[str, int] = {}  # their HTTP statuses: {"200": 3, "429": 2, "503": 1}

    @property
    def phase(self) -> str:
        return str(self.state["phase"])


class SimulatorAdmin:
    def __init__(self, base_url: str, timeout_seconds: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout_seconds)

    async def __aenter__(self) -> SimulatorAdmin:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        content = None if body is None else dumps_exact(body).encode()
        response = await self._http.request(
            method, path, content=content, headers={"Content-Type": "application/json"}
        )
        if response.status_code >= 300:
            raise SimulatorAdminError(response.status_code, response.text)
        return loads_exact(response.content)

    async def health(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/admin/health")
        return result

    async def create_order(self, **fields: Any) -> CreatedOrder:
        """Fields of `app.CreateOrderRequest` (snake_case); `amount` may be a Decimal or str."""
        body = {k: _jsonable(v) for k, v in fields.items()}
        return CreatedOrder.model_validate(await self._call("POST", "/admin/orders", body))

    async def order(self, order_id: str) -> OrderView:
        return OrderView.model_validate(await self._call("GET", f"/admin/orders/{order_id}"))

    async def patch_order(self, order_id: str, **fields: Any) -> OrderView:
        """Fields of `app.PatchOrderRequest`: overrides, replace_overrides, raw_body, scenario,
        faults, amount, expires_in_seconds, ready_after_seconds, confirmations, ..."""
        body = {k: _jsonable(v) for k, v in fields.items()}
        return OrderView.model_validate(
            await self._call("PATCH", f"/admin/orders/{order_id}", body)
        )

    async def set_order_faults(self, order_id: str, faults: FaultConfig | None) -> None:
        if faults is None:
            await self._call("DELETE", f"/admin/orders/{order_id}/faults")
        else:
            await self._call("PUT", f"/admin/orders/{order_id}/faults", faults.model_dump())

    async def set_global_faults(self, faults: FaultConfig | None) -> None:
        if faults is None:
            await self._call("DELETE", "/admin/faults")
        else:
            await self._call("PUT", "/admin/faults", faults.model_dump())

    async def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/admin/stats")
        return result

    async def requests_for(self, order_id: str) -> int:
        by_order: dict[str, int] = (await self.stats())["by_order"]
        return int(by_order.get(order_id, 0))

    async def wait_for(
        self,
        order_id: str,
        condition: Callable[[OrderView], bool],
        timeout_seconds: float = 30.0,
        what: str = "condition",
    ) -> OrderView:
        """Poll the admin view until `condition` holds; TimeoutError with the last state."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            view = await self.order(order_id)
            if condition(view):
                return view
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"order {order_id}: no {what} in {timeout_seconds}s; last {view.state}"
                )
            await asyncio.sleep(0.05)

    async def wait_for_phase(
        self, order_id: str, phases: str | Iterable[str], timeout_seconds: float = 30.0
    ) -> OrderView:
        wanted = {phases} if isinstance(phases, str) else set(phases)
        return await self.wait_for(
            order_id, lambda v: v.phase in wanted, timeout_seconds, f"phase in {sorted(wanted)}"
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "value") and isinstance(getattr(value, "value", None), str):
        return value.value
    return value
