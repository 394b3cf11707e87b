"""Polygon.io (Massive) aggregates simulator."""

from __future__ import annotations

from typing import Any


class PolygonSimulator:
    def __init__(self, *, seed: int = 1) -> None:
        self.seed = seed

    def routes(self) -> list[Any]:
        return []
