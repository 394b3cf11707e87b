"""Keep secrets out of anything ratesvc prints: logs, errors, metrics, responses."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
# Query parameters that carry credentials in the upstreams' URL forms.
_SECRET_PARAMS = {"apikey", "api_key", "x_cg_demo_api_key", "x_cg_pro_api_key", "token", "key"}
_USERINFO = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@"
)


def redact_url(url: str) -> str:
    """Mask the password of a URL and credential query parameters.

    >>> redact_url("postgresql://app:s3cret@db/app?apiKey=k")
    'postgresql://app:***@db/app?apiKey=***'
    """
    url = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.query:
        return url
    query = [
        (k, MASK if k.lower() in _SECRET_PARAMS else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret value in ``text``."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, MASK)
    return text
