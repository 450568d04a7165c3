"""Misbehaving JSON-RPC nodes for failover and redaction tests: a small threaded HTTP server in
front of anvil whose behaviour a test switches at run time (forward, HTTP 500/429, hang past the
client's timeout, lag nonces, answer "already known", claim another chain id). Its URL carries
secrets in the path and query, as hosted RPC URLs do."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from offramp.devstack.processes import free_port

PATH_SECRET = "SECRETKEY123"
QUERY_SECRET = "SECRETKEY456"
SECRETS = (PATH_SECRET, QUERY_SECRET)


def secret_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/v3/{PATH_SECRET}?apikey={QUERY_SECRET}"


def refused_url() -> str:
    """A URL nothing listens on (connection refused), with the same secrets."""
    return secret_url(free_port())


@dataclass
class RpcNode:
    upstream: str
    mode: str = "forward"  # forward | 500 | 429 | hang | already_known | chain:<id>
    lag: int = 0  # eth_getTransactionCount answers this much lower
    url: str = ""
    calls: Counter[str] = field(default_factory=Counter)
    block_tags: Counter[str] = field(default_factory=Counter)  # eth_getBlockByNumber's first arg
    release: threading.Event = field(default_factory=threading.Event)

    def forward(self, body: bytes) -> bytes:
        request = urllib.request.Request(
            self.upstream, data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            data: bytes = response.read()
            return data

    def answer(self, body: bytes) -> tuple[int, bytes]:
        call: Any = json.loads(body)
        method = call.get("method", "") if isinstance(call, dict) else "batch"
        self.calls[method] += 1
        if method == "eth_getBlockByNumber":
            self.block_tags[str(call["params"][0])] += 1
        if self.mode in ("500", "429"):
            return int(self.mode), b'{"error": "node unhappy"}'
        if self.mode == "hang":
            self.release.wait(60)
            return 503, b""
        if self.mode.startswith("chain:") and method == "eth_chainId":
            return 200, _result(call, hex(int(self.mode.split(":")[1])))
        if self.mode == "already_known" and method == "eth_sendRawTransaction":
            error = {"code": -32000, "message": "already known"}
            return 200, json.dumps({"jsonrpc": "2.0", "id": call["id"], "error": error}).encode()
        data = self.forward(body)
        if self.lag and method == "eth_getTransactionCount":
            result = json.loads(data)
            lowered = max(0, int(result["result"], 16) - self.lag)
            return 200, _result(call, hex(lowered))
        return 200, data


def _result(call: dict[str, Any], value: Any) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": call["id"], "result": value}).encode()


@contextmanager
def rpc_node(upstream: str, mode: str = "forward", lag: int = 0) -> Iterator[RpcNode]:
    node = RpcNode(upstream, mode, lag)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                status, answer = node.answer(body)
            except Exception:
                status, answer = 502, b""
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except OSError:
                pass  # the client gave up

        def log_message(self, format: str, *args: Any) -> None:
            del format, args

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    node.url = secret_url(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, name="rpc-node", daemon=True)
    thread.start()
    try:
        yield node
    finally:
        node.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def faulty_url(stack: ExitStack, upstream: str, fault: str) -> str:
    """A node failing with `fault`: refused | 500 | 429 | hang (kept open by `stack`)."""
    if fault == "refused":
        return refused_url()
    return stack.enter_context(rpc_node(upstream, fault)).url


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"an RPC URL secret appears in {where}"
