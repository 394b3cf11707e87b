"""One JSON error shape everywhere: ``{"error": "<code>", "detail": "<text>", ...}``.

Covers the framework's own answers (404, 405, 413, validation) and any
unexpected exception, which becomes a 500 without a traceback in the body.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException

from ratesvc.log import get_logger

log = get_logger("http")


def error_code(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


def error_response(
    status: int, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {"error": error_code(status), "detail": detail, **extra}
    return Response(body, status_code=status, headers=headers, media_type=MediaType.JSON)


def http_exception_handler(_request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    extra: dict[str, Any] = {}
    if isinstance(exc, ValidationException) and exc.extra:
        extra["fields"] = exc.extra
    elif isinstance(exc.extra, dict):
        extra.update(exc.extra)
    detail = exc.detail or error_code(exc.status_code).replace("_", " ")
    return error_response(exc.status_code, detail, headers=exc.headers, **extra)


def store_unavailable_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Redis unreachable: a fast, clear 503 instead of a 500 (the client may retry)."""
    log.warning("store_unavailable", path=request.url.path, error=repr(exc))
    return error_response(503, "storage temporarily unavailable", headers={"Retry-After": "1"})


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.error("unhandled_error", path=request.url.path, error=repr(exc), exc_info=exc)
    return error_response(500, "internal server error")
