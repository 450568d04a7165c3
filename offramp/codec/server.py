"""The codec server for the Temporal Web UI and CLI: `/encode` and `/decode` over HTTP.

The UI POSTs `{"payloads": [...]}` (protobuf JSON of `temporal.api.common.v1.Payloads`) and shows
what comes back; this server holds the key ring, the UI never does. Every POST needs the bearer
token (401 without one, 403 with a wrong one), in the `Authorization` header or, for a UI that
cannot send a header of its choosing (no SSO), as the first path segment: `/<token>/decode`.
CORS preflights from the configured UI origins are answered without a token (browsers send none).
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payloads

from offramp.codec.aes import AesGcmCodec, PayloadDecryptError

MAX_BODY_BYTES = 8 * 1024 * 1024  # a history page of payloads; bigger is not a UI request


def build_codec_app(codec: AesGcmCodec, token: str, cors_origins: Sequence[str]) -> Starlette:
    if not token:
        raise ValueError("the codec server needs a token")

    def authorized(request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        given = header[7:] if header.lower().startswith("bearer ") else None
        given = request.path_params.get("token", given)
        if not given:
            return JSONResponse({"error": "bearer token required"}, status_code=401)
        if not hmac.compare_digest(given.encode(), token.encode()):
            return JSONResponse({"error": "wrong token"}, status_code=403)
        return None

    async def apply(request: Request, encode: bool) -> Response:
        refused = authorized(request)
        if refused is not None:
            return refused
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return JSONResponse({"error": "body too large"}, status_code=413)
        try:
            payloads = json_format.Parse(body, Payloads())
        except json_format.ParseError as exc:
            return JSONResponse({"error": f"not a Payloads JSON body: {exc}"}, status_code=400)
        try:
            if encode:
                out = await codec.encode(payloads.payloads)
            else:
                out = await codec.decode(payloads.payloads)
        except PayloadDecryptError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        return Response(
            json_format.MessageToJson(Payloads(payloads=out)), media_type="application/json"
        )

    async def encode(request: Request) -> Response:
        return await apply(request, encode=True)

    async def decode(request: Request) -> Response:
        return await apply(request, encode=False)

    routes = [
        Route("/encode", encode, methods=["POST"]),
        Route("/decode", decode, methods=["POST"]),
        Route("/{token}/encode", encode, methods=["POST"]),
        Route("/{token}/decode", decode, methods=["POST"]),
    ]
    cors = Middleware(
        CORSMiddleware,
        allow_origins=list(cors_origins),
        allow_methods=["POST"],
        allow_headers=["authorization", "content-type", "x-namespace"],
        allow_credentials=True,  # the UI's "include cross-origin credentials" setting
        max_age=600,
    )
    return Starlette(routes=routes, middleware=[cors])
