"""The codec server: the Web UI's /encode and /decode format, bearer token, CORS for the UI."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from offramp.cli.codec import READY_MESSAGE
from offramp.codec import AesGcmCodec, parse_key_ring
from offramp.codec.server import build_codec_app
from offramp.converter import DATA_CONVERTER
from offramp.devstack.binaries import PROJECT_ROOT
from offramp.devstack.processes import ManagedProcess, free_port

TOKEN = "test-token-0123456789"
UI = "http://localhost:8233"
KEYS = f"k1:{base64.b64encode(os.urandom(32)).decode()}"


def payloads_json(*values: object) -> str:
    payloads = DATA_CONVERTER.payload_converter.to_payloads(list(values))
    return json_format.MessageToJson(Payloads(payloads=payloads))


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    app = build_codec_app(AesGcmCodec(parse_key_ring(KEYS, "X")), TOKEN, [UI])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://codec") as client:
        yield client


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


async def test_encode_then_decode_round_trips_in_the_ui_format(http: httpx.AsyncClient) -> None:
    body = payloads_json({"user_ref": "user-42", "amount": "123.45"})
    encoded = await http.post("/encode", content=body, headers=auth())
    assert encoded.status_code == 200, encoded.text
    [sealed] = encoded.json()["payloads"]
    assert base64.b64decode(sealed["metadata"]["encoding"]) == b"binary/encrypted"
    assert "user-42" not in encoded.text
    decoded = await http.post("/decode", content=encoded.text, headers=auth())
    assert decoded.status_code == 200, decoded.text
    assert json.loads(decoded.text) == json.loads(body)


async def test_requests_without_or_with_a_wrong_token_are_refused(http: httpx.AsyncClient) -> None:
    body = payloads_json("x")
    missing = await http.post("/decode", content=body)
    wrong = await http.post("/decode", content=body, headers=auth("not-the-token-at-all"))
    assert (missing.status_code, wrong.status_code) == (401, 403)
    assert (await http.post(f"/wrong{TOKEN}/encode", content=body)).status_code == 403
    # A UI that cannot send a header of its choosing puts the token in the path.
    assert (await http.post(f"/{TOKEN}/encode", content=body)).status_code == 200


async def test_cors_preflight_answers_the_ui_origin_only(http: httpx.AsyncClient) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
    }
    ok = await http.options("/decode", headers={"Origin": UI, **preflight})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == UI
    assert "POST" in ok.headers["access-control-allow-methods"]
    assert "x-namespace" in ok.headers["access-control-allow-headers"]
    other = await http.options("/decode", headers={"Origin": "http://evil.example", **preflight})
    assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
    # The actual POST from the UI carries the CORS header too.
    post = await http.post("/encode", content=payloads_json(1), headers={**auth(), "Origin": UI})
    assert post.headers["access-control-allow-origin"] == UI


async def test_a_body_that_is_not_payloads_is_a_400(http: httpx.AsyncClient) -> None:
    response = await http.post("/decode", content=b"{not json", headers=auth())
    assert response.status_code == 400 and "Payloads" in response.json()["error"]


def test_the_cli_command_serves_over_http_and_logs_no_token(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OFFRAMP_", "TEMPORAL_"))}
    env |= {"OFFRAMP_CODEC_KEYS": KEYS, "OFFRAMP_CODEC_SERVER_TOKEN": TOKEN}
    env |= {"OFFRAMP_LOG_LEVEL": "DEBUG", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "offramp", "codec-server", "--port", str(port)]
    proc = ManagedProcess(
        "codec", [*command, "--cors-origin", UI], tmp_path / "codec.log", env, PROJECT_ROOT
    ).start()
    try:
        proc.wait_for_log(READY_MESSAGE, 60)
        url = f"http://127.0.0.1:{port}"
        body = payloads_json("user-42")
        assert httpx.post(f"{url}/decode", content=body).status_code == 401
        encoded = httpx.post(f"{url}/{TOKEN}/encode", content=body)
        assert encoded.status_code == 200 and "user-42" not in encoded.text
        decoded = httpx.post(f"{url}/decode", content=encoded.text, headers=auth())
        assert json.loads(decoded.text) == json.loads(body)
    finally:
        rc = proc.stop(timeout=30)
    log = proc.log_since_start().decode()
    # uvicorn shuts down cleanly, then re-raises the SIGTERM it caught: -15 is that clean stop.
    assert rc in (0, -signal.SIGTERM) and "Finished server process" in log, log
    assert TOKEN not in log and KEYS.split(":")[1] not in log


def test_the_cli_command_refuses_to_start_without_keys() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OFFRAMP_", "TEMPORAL_"))}
    done = subprocess.run(
        [sys.executable, "-m", "offramp", "codec-server", "--token", TOKEN],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "encryption is off: set OFFRAMP_CODEC_KEYS" in done.stderr
