"""A cached chunk as it sits in Redis: a small header, then its bars as Polygon JSON.

A hit is mostly a copy: when a chunk lies wholly inside the asked range and
the order is ascending, its bars' JSON is spliced into the answer as stored,
never decoded nor re-encoded.  Only the chunks at the edges of the range,
descending answers and the chunk where ``limit`` cuts are decoded.

Stored form: ``[fetched_ms, status, count, first_t, last_t]\\n[{bar}, ...]``.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from ratesvc.stocks.models import Bar

_encode = msgspec.json.Encoder().encode
_decode_header = msgspec.json.Decoder(tuple[int, str, int, int, int]).decode
_decode_bars = msgspec.json.Decoder(list[Bar]).decode


class CachedChunk:
    __slots__ = (
        "_bars",
        "count",
        "fetched_ms",
        "first_t",
        "last_t",
        "raw_bars",
        "status",
        "version",
    )

    def __init__(
        self,
        *,
        fetched_ms: int,
        status: str,
        count: int,
        first_t: int,
        last_t: int,
        raw_bars: bytes,
        bars: list[Bar] | None = None,
    ) -> None:
        self.fetched_ms = fetched_ms
        self.status = status
        self.count = count
        self.first_t = first_t
        self.last_t = last_t
        self.raw_bars = raw_bars
        self._bars = bars
        self.version: bytes | None = None
        """The token of the write that stored it (cache.py), once read or written."""

    @classmethod
    def from_bars(cls, fetched_ms: int, status: str, bars: list[Bar]) -> CachedChunk:
        """``bars`` sorted by time."""
        return cls(
            fetched_ms=fetched_ms,
            status=status,
            count=len(bars),
            first_t=bars[0].t if bars else 0,
            last_t=bars[-1].t if bars else 0,
            raw_bars=_encode(bars),
            bars=bars,
        )

    @classmethod
    def decode(cls, value: bytes) -> CachedChunk:
        """Raises msgspec.DecodeError (or ValueError) for a value of another format."""
        header, newline, raw_bars = value.partition(b"\n")
        if not newline or not raw_bars.startswith(b"["):
            raise msgspec.DecodeError("not a cached chunk")
        fetched_ms, status, count, first_t, last_t = _decode_header(header)
        return cls(
            fetched_ms=fetched_ms,
            status=status,
            count=count,
            first_t=first_t,
            last_t=last_t,
            raw_bars=raw_bars,
        )

    def encode(self) -> bytes:
        header = (self.fetched_ms, self.status, self.count, self.first_t, self.last_t)
        return _encode(header) + b"\n" + self.raw_bars

    def bars(self) -> list[Bar]:
        if self._bars is None:
            self._bars = _decode_bars(self.raw_bars)
        return self._bars

    def take(
        self, from_ms: int, to_ms: int, sort: Literal["asc", "desc"], room: int
    ) -> tuple[bytes | memoryview, int, int | None]:
        """At most ``room`` bars with ``from_ms <= t <= to_ms`` in ``sort`` order.

        Returns their JSON (comma-separated objects, no brackets), how many, and
        the time of the first bar left out for lack of room (None if none was).
        """
        if self.count == 0:
            return b"", 0, None
        inside = from_ms <= self.first_t and self.last_t <= to_ms
        if inside and sort == "asc" and self.count <= room:
            return memoryview(self.raw_bars)[1:-1], self.count, None  # no copy
        chosen = [bar for bar in self.bars() if from_ms <= bar.t <= to_ms]
        if sort == "desc":
            chosen.reverse()
        left_out = chosen[room].t if len(chosen) > room else None
        chosen = chosen[:room]
        return (_encode(chosen)[1:-1] if chosen else b""), len(chosen), left_out
