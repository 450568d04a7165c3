"""The adapter protocol every provider implements, and its error kinds.

An adapter is pure (no I/O at import): workflows ask it for activity names, result types, error
types and the normalised snapshot of an order; the worker asks it for a client. Imports no I/O
library.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from offramp.providers.snapshot import FieldLabels, OrderSnapshot


class Capability(StrEnum):
    PAYS_DEPOSIT = "pays_deposit"  # the engine sends the provider's deposit instruction
    TRACK_ONLY = "track_only"  # the engine only follows the order (and verifies delivery)
    WEBHOOKS = "webhooks"  # the provider pushes status events


class ErrorKind(StrEnum):
    """How a provider call failed, in the engine's terms (each adapter names them its own way as
    the ApplicationError type, which committed histories hold)."""

    NOT_FOUND = "not_found"
    REQUEST_REJECTED = "request_rejected"
    MALFORMED = "malformed"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    TRANSPORT = "transport"
    INVALID_ORDER_ID = "invalid_order_id"
    NOT_CHANGED = "not_changed"  # the wait's "no change yet" (a BENIGN retry, not a failure)


class ProviderError(Exception):
    """Base of every adapter's client failures. `error_type` is the stable ApplicationError type."""

    kind: ClassVar[ErrorKind]
    error_type: ClassVar[str] = "ProviderError"
    retryable: ClassVar[bool] = False
    # Being told to wait is expected: logged without a traceback.
    benign: ClassVar[bool] = False
    # Seconds the provider asked us to wait, when it said.
    retry_after: float | None = None

    def __init__(self, message: str, *, order_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.order_id = order_id

    def details(self) -> dict[str, Any]:
        """What the ApplicationError carries besides the message (never a secret)."""
        return {"order_id": self.order_id}


class ActivityNames(BaseModel):
    """The names an adapter's activities are registered under (committed histories hold them)."""

    model_config = ConfigDict(frozen=True)

    fetch_order: str
    wait_for_order_change: str


class WaitInput(Protocol):
    """What the wait activity needs of its (adapter-specific) input."""

    @property
    def order_id(self) -> str: ...
    @property
    def await_ready(self) -> bool: ...
    @property
    def retry_malformed(self) -> bool: ...
    @property
    def attempt_seconds(self) -> float: ...
    def changed(self, order: Any) -> bool: ...
    def delay_seconds(self, attempt: int) -> float: ...


class ProviderClient(Protocol):
    async def get_order(self, order_id: str) -> BaseModel: ...
    async def aclose(self) -> None: ...


class ProviderAdapter(Protocol):
    """One provider, as the engine sees it. Read-only: adapters are constants."""

    @property
    def name(self) -> str: ...
    @property
    def title(self) -> str:
        """How people see its name ("Kado"): summaries, details."""
        ...

    @property
    def capabilities(self) -> frozenset[Capability]: ...
    @property
    def activities(self) -> ActivityNames: ...
    @property
    def order_model(self) -> type[BaseModel]:
        """The provider's order as its activities return it."""
        ...

    @property
    def fetch_input_model(self) -> type[BaseModel]: ...
    @property
    def wait_input_model(self) -> type[BaseModel]: ...
    @property
    def error_types(self) -> Mapping[ErrorKind, str]:
        """The ApplicationError type of each error kind (committed histories hold them)."""
        ...

    @property
    def labels(self) -> FieldLabels:
        """Its own names of the fields the engine talks about (rejections, malformed answers)."""
        ...

    def snapshot(self, order: Any) -> OrderSnapshot:
        """The pure mapping of the provider's order to the engine's view."""
        ...

    def fetch_input(self, order_id: str) -> BaseModel: ...

    def wait_input(
        self,
        *,
        order_id: str,
        await_ready: bool,
        last_status: str | None,
        retry_malformed: bool,
        initial_interval_seconds: float,
        max_interval_seconds: float,
        attempt_seconds: float = 0.0,
        until_final: bool = False,
    ) -> BaseModel:
        """`until_final`: end the wait only for an ending (or a status a person must be called
        for), not for the provider's steps in between."""
        ...

    def client_from_settings(self, settings: Any) -> ProviderClient:
        """The provider's HTTP client (imported lazily: adapters are imported by workflows)."""
        ...
