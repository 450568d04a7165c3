"""Fault injection for the public route: latency, 5xx, 429 bursts (Retry-After), malformed bodies.

Deterministic: every scope (global, or one order) has its own seeded RNG and request counter, so a
test sees the same sequence of faults on every run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class MalformedKind(StrEnum):
    HTML = "html"  # an HTML error page with status 200
    TRUNCATED = "truncated"  # the JSON body cut in half
    NOT_OBJECT = "not_object"  # valid JSON, but not the wrapper object
    BAD_AMOUNT = "bad_amount"  # the wrapper, with payAmount.amount as a string


class FaultConfig(BaseModel):
    """Faults for one scope. A 429 burst pattern repeats every `rate_limit_burst +
    rate_limit_every` requests: first `rate_limit_burst` answers are 429, then `rate_limit_every`
    go through (to the 5xx and malformed dice)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    latency_seconds: float = Field(default=0.0, ge=0, le=120)
    error_rate: float = Field(default=0.0, ge=0, le=1)
    error_status: int = Field(default=503, ge=500, le=599)
    rate_limit_burst: int = Field(default=0, ge=0, le=1000)
    rate_limit_every: int = Field(default=0, ge=0, le=100_000)
    retry_after_seconds: float = Field(default=1.0, ge=0, le=3600)
    malformed_rate: float = Field(default=0.0, ge=0, le=1)
    malformed_kind: MalformedKind = MalformedKind.HTML
    seed: int = 0

    @property
    def active(self) -> bool:
        return bool(
            self.latency_seconds or self.error_rate or self.rate_limit_burst or self.malformed_rate
        )


@dataclass(frozen=True)
class FaultDecision:
    latency_seconds: float = 0.0
    status: int | None = None  # 429 or 5xx instead of the real answer
    retry_after_seconds: float | None = None
    malformed: MalformedKind | None = None


@dataclass
class _ScopeState:
    config: FaultConfig
    rng: random.Random
    requests: int = 0


@dataclass
class FaultInjector:
    """Keeps per-scope counters; `decide` is called once per public request."""

    _scopes: dict[str, _ScopeState] = field(default_factory=dict)

    def decide(self, scope: str, config: FaultConfig | None) -> FaultDecision:
        if config is None or not config.active:
            return FaultDecision()
        state = self._scopes.get(scope)
        if state is None or state.config != config:
            state = _ScopeState(config=config, rng=random.Random(config.seed))
            self._scopes[scope] = state
        index = state.requests
        state.requests += 1
        latency = config.latency_seconds
        if config.rate_limit_burst:
            cycle = config.rate_limit_burst + config.rate_limit_every
            if index % cycle < config.rate_limit_burst:
                return FaultDecision(latency, 429, config.retry_after_seconds)
        if config.error_rate and state.rng.random() < config.error_rate:
            return FaultDecision(latency, config.error_status)
        if config.malformed_rate and state.rng.random() < config.malformed_rate:
            return FaultDecision(latency, malformed=config.malformed_kind)
        return FaultDecision(latency)

    def reset(self, scope: str | None = None) -> None:
        if scope is None:
            self._scopes.clear()
        else:
            self._scopes.pop(scope, None)
