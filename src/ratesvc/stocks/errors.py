"""Upstream trouble as one exception with a kind, and how each kind is answered.

A failure is a msgspec Struct so the request that made the upstream call can
hand it, through Redis, to the requests that waited for that call.
"""

from __future__ import annotations

import math
from typing import Literal

import msgspec

FailureKind = Literal[
    "unavailable", "timeout", "rate_limited", "budget", "key_refused", "not_entitled", "rejected"
]

# What the client is told for each kind.  Polygon's 429 and our own budget both
# mean "try later", hence 503 with Retry-After; a refused key is the service's
# fault, not the client's, hence 502.
STATUS_OF: dict[FailureKind, int] = {
    "unavailable": 502,
    "timeout": 504,
    "rate_limited": 503,
    "budget": 503,
    "key_refused": 502,
    "not_entitled": 502,
    "rejected": 400,
}


class UpstreamFailure(msgspec.Struct, frozen=True, kw_only=True):
    kind: FailureKind
    detail: str
    retry_after_s: float | None = None

    @property
    def status(self) -> int:
        return STATUS_OF[self.kind]

    def headers(self) -> dict[str, str]:
        if self.retry_after_s is None:
            return {}
        return {"Retry-After": str(max(1, math.ceil(self.retry_after_s)))}


class UpstreamError(Exception):
    def __init__(self, failure: UpstreamFailure) -> None:
        super().__init__(failure.detail)
        self.failure = failure
