"""Logging: structlog, JSON lines unless on a TTY, secrets scrubbed from every line.

Every line carries ``component``: ratesvc's own loggers bind it through
``get_logger(component)``; lines from the standard library (uvicorn, asyncio)
get the stdlib logger's name.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import msgspec
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from ratesvc.redact import redact_url, scrub

_json_encoder = msgspec.json.Encoder()


class SecretScrubber:
    """Processor that masks configured secrets and URL passwords in every value."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = tuple(s for s in secrets if s)

    def __call__(self, _logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
        for key, value in event_dict.items():
            if isinstance(value, str):
                event_dict[key] = self._clean(value)
            elif value is not None and not isinstance(value, int | float | bool):
                event_dict[key] = self._clean(str(value)) if self.secrets else value
        return event_dict

    def _clean(self, text: str) -> str:
        if "://" in text:
            text = redact_url(text)
        return scrub(text, self.secrets)


def _add_component(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    record = event_dict.get("_record")
    if "component" not in event_dict and record is not None:
        event_dict["component"] = record.name
    return event_dict


def _serialize(obj: MutableMapping[str, Any], **_kw: Any) -> str:
    return _json_encoder.encode(obj).decode()


def configure_logging(
    level: str = "INFO",
    secrets: Iterable[str] = (),
    *,
    stream: TextIO | None = None,
    json: bool | None = None,
) -> None:
    """Configure structlog and the stdlib root logger to write one format to ``stream``."""
    stream = stream or sys.stderr
    as_json = not stream.isatty() if json is None else json
    numeric_level = logging.getLevelNamesMapping()[level]

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer(serializer=_serialize)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    # Tracebacks become text before the scrubber runs, so a secret inside an
    # exception message is masked too (hence no rich tracebacks on a TTY).
    scrubber = SecretScrubber(secrets)
    tail: list[Processor] = [structlog.processors.format_exc_info, scrubber, renderer]

    structlog.configure(
        processors=[*shared, *tail],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[_add_component, *shared[1:]],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    # pgserver narrates every command at INFO; its warnings still come through.
    logging.getLogger("pgserver").setLevel(max(numeric_level, logging.WARNING))
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # uvicorn switches its access log off (RATESVC_ACCESS_LOG=0) by stopping
    # propagation; keep that choice, or every request would be logged anyway.
    logging.getLogger("uvicorn.access").handlers[:] = []


def get_logger(component: str, **bound: Any) -> Any:
    """A logger whose every line says which part of ratesvc wrote it."""
    # Initial values stay lazy: a logger made at import time must still follow
    # the configuration that `configure_logging` installs later.
    return structlog.get_logger(component=component, **bound)
