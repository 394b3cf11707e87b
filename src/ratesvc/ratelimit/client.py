"""Which client a request counts against: its address, or the proxy's word for it.

An IPv4 address counts alone.  An IPv6 address counts as its /64: one
subscriber, one server or one cloud instance is routinely given a whole /64
(RFC 6177, RFC 7934), so counting each of its 2**64 addresses apart would let
one client choose a fresh identity for every request.  An IPv4-mapped IPv6
address (``::ffff:192.0.2.1``, from a dual-stack socket) counts as the IPv4
address it carries.

The key is always an address in its canonical text or a /64 network
(``2001:db8:1:2::/64``), or ``unknown``: never text a client chose, so it
cannot collide with the limiter's own overflow key.
"""

from __future__ import annotations

import functools
import socket

from litestar.types import Scope

UNKNOWN = "unknown"
IPV6_PREFIX = 64


def client_key(scope: Scope, trust_proxy: bool) -> str:
    """The peer's address (IPv6: its /64), or the first X-Forwarded-For hop behind a proxy.

    Only trust the header behind a proxy that sets it: otherwise any client could
    name itself anything and escape its limit.  A hop that is not an address is
    ignored (the peer, the proxy itself, is counted instead).
    """
    if trust_proxy:
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                first = value.split(b",", 1)[0].strip()
                key = address_key(first.decode("latin-1"))
                if key is not None:
                    return key
                break
    client = scope.get("client")
    key = address_key(client[0]) if client else None
    return UNKNOWN if key is None else key


@functools.lru_cache(maxsize=8192)
def address_key(address: str) -> str | None:
    """The rate-limit key of one address, or None if it is not an IP address.

    The C parser of the socket module, cached (bounded): the same few
    addresses send most requests, and an attacker's fresh ones cost a parse.
    """
    if ":" not in address:
        try:
            return socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, address))
        except OSError:
            return None
    try:  # a link-local peer may carry its zone ("fe80::1%eth0"): not part of the address
        packed = socket.inet_pton(socket.AF_INET6, address.split("%", 1)[0])
    except OSError:
        return None
    if packed[:12] == _IPV4_MAPPED:
        return socket.inet_ntop(socket.AF_INET, packed[12:])
    network = packed[: IPV6_PREFIX // 8] + bytes(16 - IPV6_PREFIX // 8)
    return f"{socket.inet_ntop(socket.AF_INET6, network)}/{IPV6_PREFIX}"


_IPV4_MAPPED = bytes(10) + b"\xff\xff"
