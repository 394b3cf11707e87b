"""What a ``/v1/courses/stream?direction=...`` client is sent when the default answer changes.

Each process holds one Redis subscription (``broadcast.py``) carrying the
default answer.  A client that asked for some directions gets that answer
cut down to them, exactly as ``/v1/courses?direction=...`` renders it, and
only when its own part changed.  The cut needs no Redis read; only when the
default answer is a 503 (it names the missing directions but has no rows), or
the client also chose an exchanger, is its answer taken from the answer
cache instead.
"""

from __future__ import annotations

import msgspec

from ratesvc.courses.query import CoursesQuery
from ratesvc.courses.render import MIXED, Courses, Unavailable
from ratesvc.courses.state import CoursesState

_decode_courses = msgspec.json.Decoder(Courses).decode
_encoder = msgspec.json.Encoder(decimal_format="number")


def cut(default_body: bytes, directions: tuple[str, ...], partial: str) -> bytes | None:
    """The default answer restricted to ``directions``; None when it cannot tell (a 503)."""
    if default_body.startswith(b'{"error"'):
        return None  # a 503: it lists what is missing, not the rows that are not
    answer = _decode_courses(default_body)
    wanted = set(directions)
    rows = [row for row in answer.courses if row.direction in wanted]
    missing = [d for d in directions if d in set(answer.missing)]
    if not rows or (missing and partial == "fail"):
        detail = "no fresh rate for " + ", ".join(missing)
        return _encoder.encode(Unavailable("service_unavailable", detail, missing))
    sources = {row.source for row in rows}
    top = sources.pop() if len(sources) == 1 else MIXED
    return _encoder.encode(Courses(exchanger=top, courses=rows, missing=missing))


async def filtered(default_body: bytes, query: CoursesQuery, state: CoursesState) -> bytes:
    """The body a client streaming ``query`` is due after the default answer became this."""
    if query.exchanger is None:
        mine = cut(default_body, query.directions, state.partial)
        if mine is not None:
            return mine
    return (await state.answers.answer(query)).reply.body
