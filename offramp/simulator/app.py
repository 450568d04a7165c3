"""The simulator: HTTP app (public order-status route + admin API), its chain loop, and runner.

Public (Kado's shape):
    GET  /v2/public/orders/{orderId}      → 200 {success: true, message, data}
                                          | 404 {success: false, message, data: null}

Admin (ours, snake_case JSON; see `admin.SimulatorAdmin` for a typed client):
    GET    /admin/health                  → {"ok": true, "chain_id", "head"}
    POST   /admin/orders                  CreateOrderRequest → {"order_id", "deposit_address",
                                          "expected_base_units", "state", "data"}
    GET    /admin/orders                  → {"orders": [{"id", "phase"}]}
    GET    /admin/orders/{id}             → {"state": ..., "data": <served order data>}
    PATCH  /admin/orders/{id}             PatchOrderRequest → same as GET
    PUT    /admin/orders/{id}/faults      FaultConfig; DELETE clears (order falls back to global)
    PUT    /admin/faults                  FaultConfig (global); DELETE clears
    GET    /admin/stats                   → {"requests_total", "by_order", "by_status", "webhooks"}
    POST   /admin/stats/reset
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import uvicorn
from eth_account import Account
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from offramp.chain.addresses import validate_address
from offramp.devstack.chain import LOCAL_CHAIN_ID, LOCAL_CHAIN_NAME
from offramp.providers.kado.models import loads_exact
from offramp.simulator.faults import FaultConfig, FaultInjector, MalformedKind
from offramp.simulator.jsonx import deep_merge, dumps_exact
from offramp.simulator.orders import (
    Phase,
    Scenario,
    SimOrder,
    expiry_after,
    new_order_id,
    utcnow,
)
from offramp.simulator.store import OrderStore
from offramp.simulator.watcher import ChainWatcher
from offramp.simulator.webhooks import DEFAULT_SIGNATURE_HEADER, WebhookSender

log = logging.getLogger("offramp.simulator")

READY_MESSAGE: Final = "kado simulator ready"
MAX_ADMIN_BODY: Final = 1_000_000


class SimulatorConfig(BaseModel):
    """Everything the simulator needs; `python -m offramp.simulator --help` maps onto it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8787, ge=0, le=65535)
    rpc_url: str | None = None  # None: no chain watching (orders only expire)
    chain_name: str = LOCAL_CHAIN_NAME
    chain_id: int | None = LOCAL_CHAIN_ID  # served as cryptoCurrency.officialChainId
    token_symbol: str = "USDC"
    token_address: str | None = None
    token_decimals: int = 6
    native_symbol: str = "ETH"
    native_decimals: int = 18
    data_file: Path | None = None
    poll_interval_seconds: float = Field(default=0.2, gt=0)
    default_expiry_seconds: float = Field(default=1800.0, gt=0)
    default_settlement_delay_seconds: float = Field(default=2.0, ge=0)
    default_confirmations: int = Field(default=1, ge=1)
    slow_settlement_seconds: float = Field(default=600.0, ge=0)
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_header: str = DEFAULT_SIGNATURE_HEADER


class CreateOrderRequest(BaseModel):
    """POST /admin/orders. Everything has a default: `{}` creates a ready 10 USDC SELL order on
    the configured chain. `overrides` is deep-merged into the served order data (any field, any
    value, e.g. `{"payAmount": {"amount": "oops"}}`); `raw_body` replaces the body verbatim."""

    model_config = ConfigDict(extra="forbid")

    order_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,128}$")
    order_type: str = "sell"
    blockchain: str | None = None  # default: the configured chain name ("anvil")
    asset: str | None = None  # default: the configured token symbol ("USDC")
    amount: Decimal | None = Decimal("10")  # whole units; null: an order without an amount
    decimals: int | None = Field(default=None, ge=0, le=77)
    token_address: str | None = None  # default: the configured token for its symbol
    native: bool | None = None  # default: asset == native symbol
    user_ref: str | None = None
    wallet_address: str | None = None
    expires_in_seconds: float | None = None
    ready_after_seconds: float = Field(default=0.0, ge=0)
    confirmations: int | None = Field(default=None, ge=1)
    settlement_delay_seconds: float | None = Field(default=None, ge=0)
    slow_settlement_seconds: float | None = Field(default=None, ge=0)
    scenario: Scenario = Scenario.NORMAL
    faults: FaultConfig | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)
    raw_body: str | None = None
    webhook_url: str | None = None


class PatchOrderRequest(BaseModel):
    """PATCH /admin/orders/{id}: only the fields present change (null clears where allowed)."""

    model_config = ConfigDict(extra="forbid")

    overrides: dict[str, Any] | None = None  # deep-merged into the current overrides
    replace_overrides: bool = False  # replace instead of merging
    raw_body: str | None = None
    scenario: Scenario | None = None
    faults: FaultConfig | None = None
    amount: Decimal | None = None
    expires_in_seconds: float | None = None
    ready_after_seconds: float | None = Field(default=None, ge=0)
    confirmations: int | None = Field(default=None, ge=1)
    settlement_delay_seconds: float | None = Field(default=None, ge=0)


class AdminError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Stats:
    def __init__(self) -> None:
        self.requests_total = 0
        self.by_order: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()
        self.by_order_status: dict[str, Counter[int]] = {}

    def reset(self) -> None:
        self.requests_total = 0
        self.by_order.clear()
        self.by_status.clear()
        self.by_order_status.clear()


class Simulator:
    """Orders, faults, webhooks and the chain loop; `build_app` serves it over HTTP."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.store = OrderStore(config.data_file)
        self.faults = FaultInjector()
        self.stats = Stats()
        self.webhooks = WebhookSender(
            config.webhook_url, config.webhook_secret, config.webhook_header
        )
        self.watcher = ChainWatcher(config.rpc_url, self.store) if config.rpc_url else None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._failing_since: str | None = None
        self.ticks = 0

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self.tick_safely()
        self._task = asyncio.create_task(self._run(), name="simulator-loop")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.webhooks.aclose()
        self.store.save()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.poll_interval_seconds)
            self._wake.clear()
            await self.tick_safely()

    async def tick_safely(self) -> None:
        try:
            await self.tick()
        except Exception as exc:  # the RPC is down or flaky: report once, keep trying
            problem = f"{type(exc).__name__}: {exc}"[:300]
            if self._failing_since != problem:
                log.warning("chain scan failed (will retry): %s", problem)
                self._failing_since = problem
            return
        if self._failing_since is not None:
            log.info("chain scan recovered")
            self._failing_since = None

    async def tick(self) -> None:
        # `now` is read before the chain is scanned: an order never expires ahead of the chain.
        now = utcnow()
        changed: dict[str, SimOrder] = {}
        head: int | None = None
        state = self.store.state
        cursor_before = state.cursor
        if self.watcher is not None:
            result = await self.watcher.scan()
            if result.reorg_to is not None:
                for order in state.orders.values():
                    if order.forget_deposits_after(result.reorg_to):
                        log.info(
                            "order %s: deposits after block %d reorged out",
                            order.id,
                            result.reorg_to,
                        )
                        changed[order.id] = order
            for order, deposit in result.deposits:
                log.info(
                    "order %s: deposit of %d %s in block %d",
                    order.id,
                    deposit.amount,
                    deposit.token or "native",
                    deposit.block_number,
                )
                if order.add_deposit(deposit):
                    changed[order.id] = order
            state.cursor = head = result.cursor
        for order in state.orders.values():
            if order.advance(now, head):
                changed[order.id] = order
        if changed or state.cursor != cursor_before:
            self.store.save()
        for order in changed.values():
            log.info("order %s: %s %s", order.id, order.phase.value, order.failure or "")
            self.webhooks.notify(order.webhook_url, "order.updated", order.served_data(now))
        self.ticks += 1

    # ---- admin operations --------------------------------------------------------------------

    def create_order(self, request: CreateOrderRequest) -> SimOrder:
        config = self.config
        order_id = request.order_id or new_order_id()
        if order_id in self.store.orders:
            raise AdminError(409, f"order {order_id} exists")
        asset = (request.asset or config.token_symbol).upper()
        native = request.native if request.native is not None else asset == config.native_symbol
        token_address: str | None = None
        if not native:
            token_address = request.token_address
            if token_address is None and asset == config.token_symbol.upper():
                token_address = config.token_address
            if token_address is None:
                raise AdminError(400, f"no token address for {asset}: give token_address")
            try:
                token_address = validate_address(token_address)
            except ValueError as exc:
                raise AdminError(400, f"token_address {exc}") from None
        decimals = request.decimals
        if decimals is None:
            decimals = config.native_decimals if native else config.token_decimals
        now = utcnow()
        expiry = request.expires_in_seconds or config.default_expiry_seconds
        order = SimOrder(
            id=order_id,
            order_type=request.order_type,
            blockchain=request.blockchain or config.chain_name,
            asset=asset,
            amount=request.amount,
            decimals=decimals,
            token_address=token_address,
            deposit_address=Account.create().address,
            user_ref=request.user_ref,
            wallet_address=request.wallet_address,
            chain_id=self.watcher.chain_id
            if self.watcher and self.watcher.chain_id
            else (config.chain_id),
            created_at=now,
            expires_at=expiry_after(now, expiry),
            ready_at=now + timedelta(seconds=request.ready_after_seconds),
            confirmations=request.confirmations or config.default_confirmations,
            settlement_delay_seconds=(
                request.settlement_delay_seconds
                if request.settlement_delay_seconds is not None
                else config.default_settlement_delay_seconds
            ),
            slow_settlement_seconds=(
                request.slow_settlement_seconds
                if request.slow_settlement_seconds is not None
                else config.slow_settlement_seconds
            ),
            scenario=request.scenario,
            faults=request.faults,
            overrides_json=dumps_exact(request.overrides),
            raw_body=request.raw_body,
            webhook_url=request.webhook_url,
            ready_announced=request.ready_after_seconds <= 0,
        )
        self.store.add(order)
        log.info(
            "order %s created (%s %s → %s)", order.id, order.amount, asset, order.deposit_address
        )
        self.webhooks.notify(order.webhook_url, "order.created", order.served_data(now))
        return order

    def patch_order(self, order: SimOrder, request: PatchOrderRequest) -> None:
        fields = request.model_fields_set
        now = utcnow()
        if "overrides" in fields:
            base = {} if request.replace_overrides else order.overrides
            order.overrides_json = dumps_exact(deep_merge(base, request.overrides or {}))
        if "raw_body" in fields:
            order.raw_body = request.raw_body
        if request.scenario is not None:
            order.scenario = request.scenario
        if "faults" in fields:
            order.faults = request.faults
            self.faults.reset(order.id)
        if "amount" in fields:
            order.amount = request.amount
        if request.expires_in_seconds is not None:
            order.expires_at = expiry_after(now, request.expires_in_seconds)
        if request.ready_after_seconds is not None:
            order.ready_at = now + timedelta(seconds=request.ready_after_seconds)
            order.ready_announced = request.ready_after_seconds <= 0
        if request.confirmations is not None:
            order.confirmations = request.confirmations
        if request.settlement_delay_seconds is not None:
            order.settlement_delay_seconds = request.settlement_delay_seconds
        order.version += 1
        self.store.save()
        self.webhooks.notify(order.webhook_url, "order.updated", order.served_data(now))
        self._wake.set()

    def order_view(self, order: SimOrder) -> dict[str, Any]:
        now = utcnow()
        return {
            "state": order.admin_view(now),
            "data": order.served_data(now),
            "requests": self.stats.by_order.get(order.id, 0),
            "responses": {
                str(status): count
                for status, count in sorted(self.stats.by_order_status.get(order.id, {}).items())
            },
        }

    # ---- the public route --------------------------------------------------------------------

    async def serve_order(self, order_id: str) -> Response:
        order = self.store.get(order_id)
        if order is not None and order.faults is not None:
            decision = self.faults.decide(order.id, order.faults)
        else:
            decision = self.faults.decide("global", self.store.state.global_faults)
        self.stats.requests_total += 1
        self.stats.by_order[order_id] += 1
        if decision.latency_seconds:
            await asyncio.sleep(decision.latency_seconds)
        response = self._answer(order_id, order, decision.status, decision.retry_after_seconds)
        if decision.malformed is not None and decision.status is None and order is not None:
            response = _malformed(decision.malformed, bytes(response.body))
        self.stats.by_status[response.status_code] += 1
        self.stats.by_order_status.setdefault(order_id, Counter())[response.status_code] += 1
        return response

    def _answer(
        self,
        order_id: str,
        order: SimOrder | None,
        fault_status: int | None,
        retry_after: float | None,
    ) -> Response:
        if fault_status == 429:
            after = f"{retry_after:g}" if retry_after is not None else "1"
            return _json(
                429,
                {"success": False, "message": "Too many requests", "data": None},
                headers={"Retry-After": after},
            )
        if fault_status is not None:
            return Response("upstream unavailable", fault_status, media_type="text/plain")
        if order is None:
            return _json(404, {"success": False, "message": "Order not found", "data": None})
        if order.raw_body is not None:
            return Response(order.raw_body, 200, media_type="application/json")
        data = order.served_data(utcnow())
        return _json(200, {"success": True, "message": "Order found", "data": data})


def _json(status: int, value: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps_exact(value), status, headers=headers, media_type="application/json")


def _malformed(kind: MalformedKind, body: bytes) -> Response:
    if kind is MalformedKind.HTML:
        html = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
        return Response(html, 200, media_type="text/html")
    if kind is MalformedKind.TRUNCATED:
        return Response(body[: len(body) // 2], 200, media_type="application/json")
    if kind is MalformedKind.NOT_OBJECT:
        return Response("[]", 200, media_type="application/json")
    value = loads_exact(body)
    value = deep_merge(value, {"data": {"payAmount": {"amount": "not-a-number"}}})
    return _json(200, value)


# ---- HTTP ------------------------------------------------------------------------------------


async def _body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_ADMIN_BODY:
        raise AdminError(413, "body too large")
    if not raw.strip():
        return {}
    try:
        return loads_exact(raw)
    except ValueError:
        raise AdminError(400, "body is not JSON") from None


def build_app(simulator: Simulator) -> Starlette:
    """The ASGI app for `simulator`; its lifespan starts and stops the chain loop."""

    def order_or_404(request: Request) -> SimOrder:
        order = simulator.store.get(request.path_params["order_id"])
        if order is None:
            raise AdminError(404, "no such order")
        return order

    async def public_order(request: Request) -> Response:
        return await simulator.serve_order(request.path_params["order_id"])

    async def health(_: Request) -> Response:
        watcher = simulator.watcher
        return _json(
            200,
            {
                "ok": True,
                "chain_id": watcher.chain_id if watcher else None,
                "head": watcher.head if watcher else None,
                "ticks": simulator.ticks,
            },
        )

    async def create(request: Request) -> Response:
        order = simulator.create_order(CreateOrderRequest.model_validate(await _body(request)))
        view = simulator.order_view(order)
        view.update(
            order_id=order.id,
            deposit_address=order.deposit_address,
            expected_base_units=order.expected_base_units,
        )
        return _json(201, view)

    async def list_orders(_: Request) -> Response:
        orders = [{"id": o.id, "phase": o.phase.value} for o in simulator.store.orders.values()]
        return _json(200, {"orders": orders})

    async def get_order(request: Request) -> Response:
        return _json(200, simulator.order_view(order_or_404(request)))

    async def patch_order(request: Request) -> Response:
        order = order_or_404(request)
        simulator.patch_order(order, PatchOrderRequest.model_validate(await _body(request)))
        return _json(200, simulator.order_view(order))

    async def order_faults(request: Request) -> Response:
        order = order_or_404(request)
        if request.method == "DELETE":
            patch = PatchOrderRequest(faults=None)
        else:
            patch = PatchOrderRequest(faults=FaultConfig.model_validate(await _body(request)))
        simulator.patch_order(order, patch)
        return _json(200, {"faults": order.faults.model_dump() if order.faults else None})

    async def global_faults(request: Request) -> Response:
        faults = None
        if request.method == "PUT":
            faults = FaultConfig.model_validate(await _body(request))
        simulator.store.state.global_faults = faults
        simulator.faults.reset("global")
        simulator.store.save()
        return _json(200, {"faults": faults.model_dump() if faults else None})

    async def stats(request: Request) -> Response:
        if request.method == "POST":
            simulator.stats.reset()
        s = simulator.stats
        return _json(
            200,
            {
                "requests_total": s.requests_total,
                "by_order": dict(s.by_order),
                "by_status": {str(k): v for k, v in s.by_status.items()},
                "webhooks": {"sent": simulator.webhooks.sent, "failed": simulator.webhooks.failed},
            },
        )

    async def on_admin_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, AdminError)
        return _json(exc.status, {"error": exc.message})

    async def on_validation_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ValidationError)
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
            for e in exc.errors(include_input=False, include_url=False)
        ]
        return _json(422, {"error": "invalid request", "errors": errors})

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await simulator.start()
        try:
            yield
        finally:
            await simulator.stop()

    routes = [
        Route("/v2/public/orders/{order_id}", public_order, methods=["GET"]),
        Route("/admin/health", health, methods=["GET"]),
        Route("/admin/orders", create, methods=["POST"]),
        Route("/admin/orders", list_orders, methods=["GET"]),
        Route("/admin/orders/{order_id}", get_order, methods=["GET"]),
        Route("/admin/orders/{order_id}", patch_order, methods=["PATCH"]),
        Route("/admin/orders/{order_id}/faults", order_faults, methods=["PUT", "DELETE"]),
        Route("/admin/faults", global_faults, methods=["PUT", "DELETE"]),
        Route("/admin/stats", stats, methods=["GET"]),
        Route("/admin/stats/reset", stats, methods=["POST"]),
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={AdminError: on_admin_error, ValidationError: on_validation_error},
    )


def create_app(config: SimulatorConfig) -> Starlette:
    return build_app(Simulator(config))


async def run_simulator(
    config: SimulatorConfig,
    *,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM (uvicorn's handlers) or until `stop` is set. Prints
    `READY_MESSAGE on <url>` once listening (the port may be 0: the real one is printed)."""
    simulator = Simulator(config)
    server = uvicorn.Server(
        uvicorn.Config(
            build_app(simulator),
            host=config.host,
            port=config.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
        )
    )

    async def announce() -> None:
        # uvicorn exposes "listening" only as a flag (lifespan startup runs before the bind).
        while not server.started:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        url = f"http://{config.host}:{port}"
        print(f"{READY_MESSAGE} on {url}", flush=True)
        if on_ready is not None:
            on_ready(url)

    async def stop_on_event() -> None:
        assert stop is not None
        await stop.wait()
        server.should_exit = True

    helpers = [asyncio.create_task(announce())]
    if stop is not None:
        helpers.append(asyncio.create_task(stop_on_event()))
    try:
        await server.serve()
    finally:
        for task in helpers:
            task.cancel()
        for task in helpers:
            with contextlib.suppress(asyncio.CancelledError):
                await task


__all__ = [
    "READY_MESSAGE",
    "CreateOrderRequest",
    "PatchOrderRequest",
    "Phase",
    "Scenario",
    "Simulator",
    "SimulatorConfig",
    "build_app",
    "create_app",
    "run_simulator",
]
