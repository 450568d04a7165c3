"""A web3 provider over several RPC nodes of one chain: failover for reads, fan-out for
broadcasts and nonce reads.

Why our own: web3.py 8 has no fallback provider; `web3-ethereum-defi`'s FallbackProvider is
synchronous (time.sleep between retries), logs provider names derived from URLs and pulls in a
large dependency tree. web3's AsyncHTTPProvider logs its URL (debug on every request, INFO on
disconnect) and httpx logs every request URL at INFO, so the HTTP layer here is one aiohttp session
(which logs no requests) whose errors are described by kind only, never by their message. web3
still encodes requests and decodes responses.

- A node failing with a transport error, a timeout, HTTP 429/5xx (any non-2xx) or a rate-limit
  JSON-RPC error is marked failed for `cooldown` seconds (tried last meanwhile) and the next one
  is asked. A JSON-RPC error ("nonce too low", "execution reverted") is the node's answer: never
  a reason to fail over.
- Before its first use a node's eth_chainId is checked; a node on another chain is never used.
- Nodes are named by label ("rpc #2" or the configured one), never by URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, cast

import aiohttp
from web3.providers.async_base import AsyncJSONBaseProvider
from web3.types import RPCEndpoint, RPCResponse

from offramp.chain.redact import describe_http_error, scrub, secret_fragments

log = logging.getLogger("offramp.chain.failover")

_RATE_LIMIT_CODES = (-32005, 429)
_RATE_LIMIT_WORDS = ("rate limit", "too many requests", "limit exceeded")


class RpcUnavailable(ConnectionError):
    """No node gave an answer; the message names each node by label and what failed."""


class _NodeFailed(Exception):
    pass


@dataclass
class RpcNode:
    index: int
    label: str
    url: str = field(repr=False)
    failed_until: float = 0.0
    chain_id: int | None = None  # as the node reported it (checked before first use)
    failing: bool = False  # failed last time it was asked: its next failures log at DEBUG

    def healthy(self, now: float) -> bool:
        return now >= self.failed_until


@dataclass(frozen=True)
class NodeAnswer:
    """One node's answer to a fanned-out call: a JSON-RPC response, or why there is none."""

    label: str
    response: RPCResponse | None
    failure: str | None = None


def _rate_limited(response: RPCResponse) -> bool:
    error = response.get("error")
    if not isinstance(error, dict):
        return False
    message = str(error.get("message", "")).lower()
    return error.get("code") in _RATE_LIMIT_CODES or any(w in message for w in _RATE_LIMIT_WORDS)


class FailoverProvider(AsyncJSONBaseProvider):
    def __init__(
        self,
        urls: list[str],
        labels: list[str],
        *,
        chain_id: int,
        request_timeout: float,
        cooldown: float,
    ) -> None:
        super().__init__()
        self.nodes = [
            RpcNode(i, label, url) for i, (url, label) in enumerate(zip(urls, labels, strict=True))
        ]
        self.expected_chain_id = chain_id
        self.request_timeout = request_timeout
        self.cooldown = cooldown
        self.fragments = secret_fragments(urls)
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"FailoverProvider({[n.label for n in self.nodes]})"

    __str__ = __repr__

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # No retries of its own: a resent eth_sendRawTransaction would be "already known";
            # retries are Temporal's, with the same bytes. No environment (proxies, .netrc).
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.request_timeout),
                headers={"Content-Type": "application/json"},
                trust_env=False,
            )
        return self._session

    def _ordered(self) -> list[RpcNode]:
        """Usable nodes: healthy ones in configured order, then those cooling down."""
        now = time.monotonic()
        usable = [n for n in self.nodes if n.chain_id in (None, self.expected_chain_id)]
        return sorted(usable, key=lambda n: (not n.healthy(now), n.index))

    def _fail(self, node: RpcNode, why: str) -> _NodeFailed:
        node.failed_until = time.monotonic() + self.cooldown
        # One warning when a node starts failing, not one per request while it is down (the
        # activity attempt that gives up logs its own line).
        level = logging.DEBUG if node.failing else logging.WARNING
        log.log(level, "%s failed: %s", node.label, why)
        node.failing = True
        return _NodeFailed(why)

    async def _post(self, node: RpcNode, body: bytes) -> RPCResponse:
        try:
            async with self._http().post(
                node.url, data=body, allow_redirects=False, raise_for_status=True
            ) as answer:
                content = await answer.read()
            response = self.decode_rpc_response(content)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise self._fail(node, describe_http_error(exc)) from None
        if not isinstance(response, dict):
            raise self._fail(node, "not a JSON-RPC answer")
        if _rate_limited(response):
            raise self._fail(node, "rate limited")
        node.failed_until = 0.0
        if node.failing:
            node.failing = False
            log.info("%s answers again", node.label)
        return response

    async def _check_chain(self, node: RpcNode) -> None:
        if node.chain_id is not None:
            return
        response = await self._post(node, self.encode_rpc_request(RPCEndpoint("eth_chainId"), []))
        try:
            node.chain_id = int(str(response["result"]), 16)
        except (KeyError, ValueError):
            raise self._fail(node, "no chain id in its eth_chainId answer") from None
        if node.chain_id != self.expected_chain_id:
            log.error(
                "%s is on chain id %s, not %s: never used",
                node.label,
                node.chain_id,
                self.expected_chain_id,
            )
            raise _NodeFailed(f"on chain id {node.chain_id}")

    async def _ask(self, node: RpcNode, body: bytes) -> RPCResponse:
        await self._check_chain(node)
        return await self._post(node, body)

    async def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        body = self.encode_rpc_request(method, params)
        failures: list[str] = []
        for node in self._ordered():
            try:
                return await self._ask(node, body)
            except _NodeFailed as exc:
                failures.append(f"{node.label}: {exc}")
        raise RpcUnavailable(f"no RPC node answered {method}: " + "; ".join(failures or ["none"]))

    async def fan_out(self, method: str, params: list[Any]) -> list[NodeAnswer]:
        """The same call to every healthy node at once (every node when none is healthy)."""
        now = time.monotonic()
        nodes = self._ordered()
        healthy = [n for n in nodes if n.healthy(now)] or nodes
        body = self.encode_rpc_request(RPCEndpoint(method), params)

        async def one(node: RpcNode) -> NodeAnswer:
            try:
                return NodeAnswer(node.label, await self._ask(node, body))
            except _NodeFailed as exc:
                return NodeAnswer(node.label, None, str(exc))

        return list(await asyncio.gather(*(one(n) for n in healthy)))

    async def chain_ids(self) -> dict[str, int | None]:
        """Each node's eth_chainId (None: no answer), asked of all nodes at once (each bounded
        by the request timeout; a hanging node must not hide the others), once per node."""

        async def one(node: RpcNode) -> None:
            with contextlib.suppress(_NodeFailed):
                await self._check_chain(node)

        await asyncio.gather(*(one(n) for n in self.nodes))
        return {node.label: node.chain_id for node in self.nodes}

    def redact(self, text: str) -> str:
        return scrub(text, self.fragments)

    async def disconnect(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


def rpc_result(answer: NodeAnswer) -> Any:
    """The `result` of an answer, or None (a JSON-RPC error or no answer)."""
    if answer.response is None or "error" in answer.response:
        return None
    return cast(dict[str, Any], answer.response).get("result")


def rpc_error_message(answer: NodeAnswer) -> str | None:
    if answer.response is None:
        return None
    error = answer.response.get("error")
    if isinstance(error, dict):
        return str(error.get("message", ""))
    if error is not None:
        return json.dumps(error)
    return None
