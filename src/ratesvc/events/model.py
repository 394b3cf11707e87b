"""The event clients send, its validation, and its form inside the Redis stream."""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec

EVENT_TYPE_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
_EVENT_TYPE = re.compile(EVENT_TYPE_PATTERN)
_MAX_UNIX_S = 253_402_300_799  # 9999-12-31T23:59:59Z, the last second PostgreSQL can hold

EventType = Annotated[str, msgspec.Meta(pattern=EVENT_TYPE_PATTERN)]
UnixSeconds = Annotated[int, msgspec.Meta(ge=0, le=_MAX_UNIX_S)]
UserId = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]  # PostgreSQL bigint
EventId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class Event(msgspec.Struct, frozen=True, omit_defaults=True):
    """One user action, as the frontends already send it.

    Unknown fields are ignored (older and newer clients share the route).
    ``event_id`` is the client's idempotency key: retries with the same id count once.
    """

    user_id: UserId
    event_type: EventType
    timestamp: UnixSeconds
    payload: dict[str, Any] | None = None
    event_id: EventId | None = None


class BadEventError(ValueError):
    """The body is not a valid event (or list of events); the message names the field."""

    def __init__(self, detail: str, field: str | None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


# Reused decoders/encoders: building them is the expensive part (msgspec perf tips).
_body_decoder = msgspec.json.Decoder(Event | list[Event])
_entry_decoder = msgspec.json.Decoder(list[Event])
_encoder = msgspec.json.Encoder()
_FIELD_PATH = re.compile(r"at `\$((?:\[\d+\])?(?:\.\w+)*)`")
_MISSING_FIELD = re.compile(r"missing required field `(\w+)`")


def parse_body(body: bytes) -> list[Event]:
    """Decode a POST body: one event object or a JSON array of them.

    Raises BadEventError naming the offending field, e.g. ``[3].user_id``.
    """
    if not body:
        raise BadEventError("request body is empty; expected a JSON event or array", None)
    try:
        decoded = _body_decoder.decode(body)
    except msgspec.ValidationError as exc:
        message = str(exc)
        raise BadEventError(message, _field_of(message)) from None
    except msgspec.DecodeError as exc:
        raise BadEventError(f"body is not valid JSON: {exc}", None) from None
    events = [decoded] if isinstance(decoded, Event) else decoded
    if not events:
        raise BadEventError("the array holds no events", None)
    for index, event in enumerate(events):
        if event.payload and _has_nul(event.payload):
            where = "payload" if isinstance(decoded, Event) else f"[{index}].payload"
            # PostgreSQL jsonb cannot store U+0000; refusing it here keeps the drainer clean.
            raise BadEventError(f"NUL characters are not allowed - at `$.{where}`", where)
    return events


def _field_of(message: str) -> str | None:
    """``[3].user_id`` from msgspec's "... - at `$[3].user_id`" (or its missing-field form)."""
    at = _FIELD_PATH.search(message)
    path = at.group(1) if at else ""
    if missing := _MISSING_FIELD.search(message):
        path = f"{path}.{missing.group(1)}"
    return path.lstrip(".") or None


def _has_nul(value: object) -> bool:
    # Cheap pre-check on the encoded form; walk the structure only on a hit.
    if b"u0000" not in _encoder.encode(value):
        return False
    return _contains_nul(value)


def _contains_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(v) for v in value)
    return False


def is_event_type(text: str) -> bool:
    return _EVENT_TYPE.match(text) is not None


def encode_entry(events: list[Event]) -> bytes:
    """The stream entry's payload: the validated events, re-encoded canonically."""
    return _encoder.encode(events)


def decode_entry(data: bytes) -> list[Event]:
    return _entry_decoder.decode(data)


def encode_payload(payload: dict[str, Any] | None) -> str | None:
    return None if payload is None else _encoder.encode(payload).decode()
