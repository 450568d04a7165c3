"""Keep RPC URLs out of every message: they often carry an API key in the path, query or
user-info (`https://host/v3/<key>`, `?apikey=<key>`). Errors from the HTTP layer are described by
kind (timeout, refused, HTTP status) and every text that leaves the chain layer is scrubbed."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlsplit

import aiohttp

REDACTED = "<redacted>"
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>()\[\]{},]+")
_MIN_SEGMENT = 6  # path segments shorter than this ("v3", "rpc") are not worth hiding


def secret_fragments(urls: Iterable[str]) -> list[str]:
    """Every part of the URLs that could be a key: the URL itself, its host part (user-info),
    long path segments, the query and each query value. Longest first, for replacement."""
    found: set[str] = set()
    for url in urls:
        found.add(url)
        parts = urlsplit(url)
        if parts.netloc:
            found.add(parts.netloc)
        if len(parts.path) > 1:
            found.add(parts.path)
        found.update(seg for seg in parts.path.split("/") if len(seg) >= _MIN_SEGMENT)
        if parts.query:
            found.add(parts.query)
            found.update(value for _, value in parse_qsl(parts.query) if len(value) >= 4)
    return sorted(found, key=len, reverse=True)


def scrub(text: str, fragments: Iterable[str] = ()) -> str:
    """`text` with every known secret fragment and any URL replaced."""
    for fragment in fragments:
        if fragment:
            text = text.replace(fragment, REDACTED)
    return _URL.sub(REDACTED, text)


def describe_http_error(exc: BaseException) -> str:
    """What went wrong talking to a node, without anything of its URL or headers (aiohttp's
    messages name the URL or host: never used)."""
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"HTTP {exc.status}"
    if isinstance(exc, TimeoutError):  # also aiohttp's ServerTimeoutError
        return "timed out"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "cannot connect"
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return "connection closed"
    if isinstance(exc, ValueError):
        return "not a JSON-RPC answer"
    return type(exc).__name__
