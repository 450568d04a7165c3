"""Provider adapters: one sub-package per provider (`kado/` first), each a typed client and wire
models, a pure mapping to the engine's `OrderSnapshot`, its error kinds and its activity names.
`adapter(name)` looks one up; nothing outside an adapter names a provider.

Imports no I/O library: workflows import it.
"""

from __future__ import annotations

from typing import Final

from offramp.providers.base import (
    ActivityNames,
    Capability,
    ErrorKind,
    ProviderAdapter,
    ProviderClient,
    ProviderError,
)
from offramp.providers.kado.adapter import ADAPTER as KADO
from offramp.providers.snapshot import OrderSnapshot, Phase

ADAPTERS: Final[dict[str, ProviderAdapter]] = {KADO.name: KADO}
# Orders started without a provider (every order before providers existed) are Kado's.
DEFAULT_PROVIDER: Final = KADO.name


class UnknownProvider(ValueError):
    pass


def adapter(name: str) -> ProviderAdapter:
    try:
        return ADAPTERS[name]
    except KeyError:
        known = ", ".join(sorted(ADAPTERS))
        raise UnknownProvider(f"unknown provider {name!r} (known: {known})") from None


__all__ = [
    "ADAPTERS",
    "DEFAULT_PROVIDER",
    "ActivityNames",
    "Capability",
    "ErrorKind",
    "OrderSnapshot",
    "Phase",
    "ProviderAdapter",
    "ProviderClient",
    "ProviderError",
    "UnknownProvider",
    "adapter",
]
