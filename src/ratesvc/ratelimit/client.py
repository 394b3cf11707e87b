"""Which client a request counts against: its address, or the proxy's word for it."""

from __future__ import annotations

from litestar.types import Scope

UNKNOWN = "unknown"


def client_key(scope: Scope, trust_proxy: bool) -> str:
    """The peer's IP address, or the first X-Forwarded-For hop when behind a trusted proxy.

    Only trust the header behind a proxy that sets it: otherwise any client could
    name itself anything and escape its limit.
    """
    if trust_proxy:
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                first = value.split(b",", 1)[0].strip()
                if first:
                    return first.decode("latin-1")
                break
    client = scope.get("client")
    return client[0] if client else UNKNOWN
