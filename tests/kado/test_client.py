"""KadoClient: status codes, bodies and transport failures become typed results or typed errors."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from pydantic import SecretStr

from offramp.config import load_settings
from offramp.devstack.processes import free_port
from offramp.providers.kado.client import WIDGET_ID_HEADER, KadoClient, parse_retry_after
from offramp.providers.kado.errors import (
    KadoError,
    KadoInvalidOrderId,
    KadoMalformedResponse,
    KadoOrderNotFound,
    KadoRateLimited,
    KadoRequestRejected,
    KadoServerError,
    KadoTransportError,
)
from tests.kado.test_models import DEPOSIT, body

ORDER_ID = "6408fd3e24c501549aaac9fd"
SECRET = "widget-secret-do-not-leak-123"

Handler = Callable[[httpx.Request], httpx.Response]


def client_for(handler: Handler, widget_id: str | None = SECRET) -> KadoClient:
    return KadoClient(
        "https://kado.test/",
        widget_id=SecretStr(widget_id) if widget_id else None,
        timeout_seconds=2,
        transport=httpx.MockTransport(handler),
    )


def answer(status: int, text: str, **headers: str) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, text=text, headers=headers)

    return handler


async def get(handler: Handler) -> KadoError:
    async with client_for(handler) as client:
        with pytest.raises(KadoError) as info:
            await client.get_order(ORDER_ID)
    error = info.value
    assert SECRET not in str(error) and SECRET not in repr(error)
    return error


async def test_documented_body_parses_and_widget_id_is_sent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text=body("100.25"))

    async with client_for(handler) as client:
        order = await client.get_order(ORDER_ID)
        assert SECRET not in repr(client)
    assert order.amount == Decimal("100.25") and order.deposit_address == DEPOSIT
    assert seen[0].url.path == f"/v2/public/orders/{ORDER_ID}"
    assert seen[0].headers[WIDGET_ID_HEADER] == SECRET
    assert client.requests_sent == 1


async def test_no_widget_id_header_when_not_configured() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text=body())

    async with client_for(handler, widget_id=None) as client:
        await client.get_order(ORDER_ID)
    assert WIDGET_ID_HEADER not in seen[0].headers


async def test_404_is_not_found_with_the_provider_message() -> None:
    error = await get(answer(404, '{"success": false, "message": "No such order", "data": null}'))
    assert isinstance(error, KadoOrderNotFound) and not error.retryable
    assert error.provider_message == "No such order"
    assert "No such order" in str(error)


async def test_404_with_html_is_still_not_found() -> None:
    error = await get(answer(404, "<html>Not Found</html>"))
    assert isinstance(error, KadoOrderNotFound)


async def test_success_false_with_200_is_not_found() -> None:
    error = await get(answer(200, '{"success": false, "message": "Order not found", "data": {}}'))
    assert isinstance(error, KadoOrderNotFound) and error.status_code == 200
    assert error.provider_message == "Order not found"


@pytest.mark.parametrize("status", [400, 401, 403, 409, 422])
async def test_other_4xx_are_rejected_not_retryable(status: int) -> None:
    text = '{"success": false, "message": "bad\\u0000 request\\n\\nhere", "data": null}'
    error = await get(answer(status, text))
    assert isinstance(error, KadoRequestRejected) and not error.retryable
    assert error.status_code == status
    assert error.provider_message == "bad request here"  # control characters flattened


async def test_provider_message_is_truncated() -> None:
    error = await get(answer(400, '{"success": false, "message": "%s"}' % ("x" * 5000)))
    assert isinstance(error, KadoRequestRejected)
    assert len(error.provider_message) <= 200


async def test_429_is_retryable_after_retry_after() -> None:
    error = await get(answer(429, "slow down", **{"Retry-After": "7"}))
    assert isinstance(error, KadoRateLimited) and error.retryable
    assert error.retry_after == 7


async def test_429_without_retry_after() -> None:
    error = await get(answer(429, ""))
    assert isinstance(error, KadoRateLimited) and error.retry_after is None


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
async def test_5xx_are_retryable(status: int) -> None:
    error = await get(answer(status, "<html>oops</html>"))
    assert isinstance(error, KadoServerError) and error.retryable


@pytest.mark.parametrize(
    "exception",
    [httpx.ReadTimeout("slow"), httpx.ConnectTimeout("slow"), httpx.PoolTimeout("busy")],
)
async def test_timeouts_are_retryable(exception: httpx.TimeoutException) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exception

    error = await get(handler)
    assert isinstance(error, KadoTransportError) and error.retryable
    assert "timeout" in str(error)


async def test_connection_refused_is_retryable() -> None:
    async with KadoClient(
        f"http://127.0.0.1:{free_port()}", widget_id=SecretStr(SECRET), timeout_seconds=2
    ) as client:
        with pytest.raises(KadoTransportError) as info:
            await client.get_order(ORDER_ID)
    assert info.value.retryable and SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("<!DOCTYPE html><html><body>Cloudflare</body></html>", "body"),
        ("", "body"),
        ('{"success": true, "message": "ok", "data": {"id": "x"', "body"),
        ('{"success": true, "message": "ok"}', "data"),
        ('{"success": true, "message": "ok", "data": "order"}', "data"),
        ('{"message": "ok", "data": {}}', "success"),
        (body('"100.25"'), "payAmount.amount"),
        (body("0.0"), "payAmount.amount"),
        (body("-5"), "payAmount.amount"),
        (body("NaN"), "payAmount.amount"),
        (body("1e999"), "payAmount.amount"),
        (body(deposit="0xnot-an-address"), "depositAddress"),
    ],
)
async def test_malformed_bodies_name_the_field(text: str, field: str) -> None:
    error = await get(answer(200, text))
    assert isinstance(error, KadoMalformedResponse) and not error.retryable
    assert error.field == field
    assert field in str(error)


async def test_huge_body_is_refused_without_reading_it_all() -> None:
    error = await get(answer(200, "[" + " " * 2_000_000 + "]"))
    assert isinstance(error, KadoMalformedResponse) and error.field == "body"


async def test_deeply_nested_body_does_not_crash() -> None:
    error = await get(answer(200, "[" * 200_000 + "]" * 200_000))
    assert isinstance(error, KadoMalformedResponse) and error.field == "body"


@pytest.mark.parametrize("order_id", ["../admin", "a/b", "", "x" * 300, "id?x=1", "id with space"])
async def test_order_ids_that_would_change_the_path(order_id: str) -> None:
    async with client_for(answer(200, body())) as client:
        with pytest.raises(KadoInvalidOrderId):
            await client.get_order(order_id)
        assert client.requests_sent == 0


async def test_secret_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for handler in (answer(200, "<html/>"), answer(500, ""), answer(200, body())):
        async with client_for(handler) as client:
            with contextlib.suppress(KadoError):
                await client.get_order(ORDER_ID)
    assert SECRET not in caplog.text


def test_from_settings_keeps_the_widget_id_secret(clean_env: None) -> None:
    settings = load_settings(kado_base_url="https://kado.test", kado_widget_id=SECRET)
    client = KadoClient.from_settings(settings)
    assert SECRET not in repr(client) and SECRET not in repr(settings)


def test_retry_after_forms() -> None:
    now = datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3") == 3
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after("-4") == 0
    assert parse_retry_after("99999999") == 3600
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now) == 30
    assert parse_retry_after("soon") is None
    assert parse_retry_after("nan") is None
    assert parse_retry_after(None) is None
