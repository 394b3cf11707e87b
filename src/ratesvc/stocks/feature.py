"""The stocks feature: its routes and what it starts."""

from __future__ import annotations

from ratesvc.features import Feature

FEATURE = Feature(name="stocks")
