"""Our clients' retry policies: how a listener, speaker or arriving listener waits between
attempts (the framework's own; the reference stack has its own copy for its services).

``none`` gives up after the first failure, ``fixed`` waits ``base_s`` each time (0 means
immediate retries, like the incident's clients), ``exponential`` doubles from ``base_s`` up
to ``cap_s``, ``exponential_jitter`` is AWS-style full jitter: uniform(0, exponential).
A server's retry hint (Retry-After) overrides the computed delay when it is longer.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from chaos.core.errors import ConfigError

KINDS = ("none", "fixed", "exponential", "exponential_jitter")


@dataclass(frozen=True)
class RetryPolicy:
    kind: str = "exponential_jitter"
    base_s: float = 0.1
    cap_s: float = 2.0
    max_attempts: int | None = None  # None: retry until the caller's deadline

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"unknown retry policy {self.kind!r}; use one of {', '.join(KINDS)}")
        if self.base_s < 0 or self.cap_s < 0:
            raise ConfigError(f"retry delays must be >= 0 s, got base_s={self.base_s}, cap_s={self.cap_s}")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ConfigError(f"max_attempts must be >= 1, got {self.max_attempts}")

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """Delays before retry 1, 2, ...; ends when no more attempts are allowed."""
        rng = rng or random.Random()
        if self.kind == "none":
            return
        attempt = 0
        while self.max_attempts is None or attempt < self.max_attempts - 1:
            if self.kind == "fixed":
                delay = self.base_s
            else:
                delay = min(self.cap_s, self.base_s * (2 ** min(attempt, 30)))
                if self.kind == "exponential_jitter":
                    delay = rng.uniform(0.0, delay)
            attempt += 1
            yield delay

    def to_dict(self) -> dict:
        return {"kind": self.kind, "base_s": self.base_s, "cap_s": self.cap_s,
                "max_attempts": self.max_attempts}

    @classmethod
    def from_dict(cls, d: dict) -> RetryPolicy:
        return cls(**d)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form only)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
