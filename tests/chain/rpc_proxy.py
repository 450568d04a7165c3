"""A JSON-RPC proxy between a worker and anvil that can act the moment a raw transaction has been
broadcast, before the worker sees the answer (used to SIGKILL the worker at exactly that point)."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class RpcProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.on_broadcast: Callable[[str], None] | None = None
        self.broadcasts: list[str] = []  # hashes anvil accepted, in order
        self.fired = threading.Event()
        self.url = ""

    def forward(self, body: bytes) -> bytes:
        request = urllib.request.Request(
            self.upstream, data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            data: bytes = response.read()
            return data

    def handle(self, body: bytes) -> bytes:
        answer = self.forward(body)
        try:
            call: Any = json.loads(body)
            result: Any = json.loads(answer)
        except ValueError:
            return answer
        if isinstance(call, dict) and call.get("method") == "eth_sendRawTransaction":
            tx_hash = result.get("result") if isinstance(result, dict) else None
            if isinstance(tx_hash, str):
                self.broadcasts.append(tx_hash)
                hook, self.on_broadcast = self.on_broadcast, None  # one shot
                if hook is not None:
                    hook(tx_hash)  # the transaction is in anvil; the worker has not heard back
                    self.fired.set()
        return answer


@contextmanager
def rpc_proxy(upstream: str) -> Iterator[RpcProxy]:
    proxy = RpcProxy(upstream)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                answer = proxy.handle(body)
            except Exception:
                self.send_error(502)
                return
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except OSError:
                pass  # the worker is gone

        def log_message(self, format: str, *args: Any) -> None:
            del format, args

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="rpc-proxy", daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
