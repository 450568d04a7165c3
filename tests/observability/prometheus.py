"""Reading the worker's Prometheus endpoint in tests."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import httpx

_SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$"
)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def sample(text: str, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels` (0 when there is none)."""
    total = 0.0
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None or match["name"] != name:
            continue
        have = dict(_LABEL.findall(match["labels"] or ""))
        if all(have.get(key) == value for key, value in labels.items()):
            total += float(match["value"])
    return total


def scrape(url: str) -> str:
    try:
        return httpx.get(url, timeout=5).text
    except httpx.TransportError:
        return ""


def scrape_until(url: str, ready: Callable[[str], bool], what: str, limit: float = 90.0) -> str:
    """The metrics text once `ready` holds for it (bounded; the runtime publishes lazily)."""
    deadline = time.monotonic() + limit
    text = ""
    while time.monotonic() < deadline:
        text = scrape(url)
        if ready(text):
            return text
        time.sleep(0.5)
    offramp = "\n".join(line for line in text.splitlines() if line.startswith("offramp_"))
    raise AssertionError(f"{what}: not seen on {url} within {limit}s:\n{offramp}")
