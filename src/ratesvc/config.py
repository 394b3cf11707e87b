"""Settings: one msgspec Struct built from ``RATESVC_*`` variables (and ``.env``).

The variable names are a public contract: each field ``foo_bar`` is read from
``RATESVC_FOO_BAR``.  ``load_settings`` is pure (it takes the environment as a
mapping) so tests build settings from plain dicts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal, NamedTuple

import msgspec
from dotenv import dotenv_values

from ratesvc.redact import redact_url

PREFIX = "RATESVC_"

LogLevel = Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
PositiveInt = Annotated[int, msgspec.Meta(gt=0)]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]

_RATE_LIMIT = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)\s*$")
_PERIOD_S = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


class ExtraAsset(NamedTuple):
    """One entry of ``RATESVC_EXTRA_ASSETS``: ``SOL=solana:SOLUSDT``."""

    asset: str
    coingecko_id: str
    binance_symbol: str
    entry: str
    """The entry as configured (spaces trimmed), for log lines and errors."""


_ASSET = re.compile(r"^[A-Z][A-Z0-9]{0,14}$")
_COINGECKO_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
_BINANCE_SYMBOL = re.compile(r"^[A-Z0-9]{2,20}$")
_RESERVED_ASSETS = ("BTC", "ETH", "USDTTRC", "USDTERC", "USD", "RUB")
"""The standard assets and the fiats: an extra asset may not reuse their names."""


def parse_extra_assets(text: str) -> tuple[ExtraAsset, ...]:
    """``ASSET=<coingecko id>:<binance symbol>,...`` -> entries; ValueError names a bad entry.

    Spaces around entries and parts are ignored, and so are empty entries (a
    trailing comma); the asset and the symbol are upper-cased, the CoinGecko
    id lower-cased, as the upstreams spell them.
    """
    assets: list[ExtraAsset] = []
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        asset, eq, rest = entry.partition("=")
        coingecko_id, colon, symbol = rest.partition(":")
        asset, coingecko_id, symbol = asset.strip().upper(), coingecko_id.strip(), symbol.strip()
        coingecko_id, symbol = coingecko_id.lower(), symbol.upper()
        if not (eq and colon and _ASSET.match(asset)):
            reason = "expected ASSET=<coingecko id>:<binance symbol>, ASSET in A-Z and 0-9"
        elif not _COINGECKO_ID.match(coingecko_id):
            reason = "the CoinGecko id is empty or not a-z, 0-9 and -"
        elif not _BINANCE_SYMBOL.match(symbol):
            reason = "the Binance symbol is empty or not A-Z and 0-9"
        elif asset in _RESERVED_ASSETS:
            reason = f"{asset} is a standard asset or a fiat"
        elif any(a.asset == asset for a in assets):
            reason = f"{asset} is listed twice"
        else:
            assets.append(ExtraAsset(asset, coingecko_id, symbol, entry))
            continue
        raise ValueError(f"entry {entry!r}: {reason}")
    return tuple(assets)


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Every runtime setting of ratesvc.  Field ``x`` is ``RATESVC_X``."""

    # HTTP server
    host: str = "127.0.0.1"
    port: Port = 8000
    workers: PositiveInt = 1
    log_level: LogLevel = "INFO"
    access_log: bool = False
    """One log line per request; off by default because metrics already count requests."""
    header_timeout_s: PositiveFloat = 10.0
    """A connection must send a request's complete headers this long after it awaits one."""

    # Storage. Unset URLs start embedded servers under data_dir.
    redis_url: str | None = None
    database_url: str | None = None
    data_dir: str = ".ratesvc"
    queue_max: PositiveInt = 10_000
    """Bound of the update queue between producers and the drainer."""
    drain_batch_max: PositiveInt = 500
    drain_flush_interval_s: PositiveFloat = 0.02
    shutdown_grace_s: PositiveFloat = 10.0

    # Upstreams
    simulate: bool = False
    """Start the upstream simulators (packages/ratesvc-sim) and point the service at them."""
    binance_ws_url: str = "wss://stream.binance.com:9443"
    binance_rest_url: str = "https://api.binance.com"
    coingecko_url: str = "https://api.coingecko.com/api/v3"
    coingecko_api_key: str = ""
    coingecko_poll_interval_s: PositiveFloat = 30.0
    coingecko_retry_max_s: PositiveFloat = 4.0
    """Longest wait between retries while CoinGecko fails (5xx, timeouts, bad bodies): it is
    back this soon after it answers again.  A 429 waits for its Retry-After instead."""
    polygon_url: str = "https://api.polygon.io"
    polygon_api_key: str = ""
    polygon_calls_per_minute: PositiveInt = 5
    polygon_timeout_s: PositiveFloat = 10.0

    # --- Crypto rates (ratesvc.courses) ---
    stale_after_s: PositiveFloat = 10.0
    """A Binance value older than this is stale and the answer fails over to CoinGecko."""
    coingecko_stale_after_s: PositiveFloat = 180.0
    """CoinGecko refreshes its prices once a minute, so its values stay fresh longer."""
    partial_courses: Literal["omit", "fail"] = "omit"
    """Some requested directions have no fresh value: omit them (200) or fail (503)."""
    lease_ttl_s: PositiveFloat = 5.0
    """Lease on the exchange connections; another replica takes over within this time."""
    binance_silence_s: PositiveFloat = 5.0
    """No frame for this long means the Binance connection is dead: reconnect."""
    binance_reconnect_min_s: PositiveFloat = 1.0
    """First reconnect delay; doubles (with jitter) up to binance_reconnect_max_s."""
    binance_reconnect_max_s: PositiveFloat = 3.0
    """Longest reconnect delay: Binance is back this soon after it accepts connections
    again, after an outage of any length (at most 125 attempts per 5 minutes at 3 s)."""
    history_days: PositiveFloat = 30.0
    """Per-minute history (quotes, and the rate bars /v1/courses/history serves) older than this
    is pruned from PostgreSQL."""
    history_buffer_max: PositiveInt = 20_000
    """History rows (and as many minute bars) kept in memory while PostgreSQL is down (about a
    day); then the oldest are dropped."""
    extra_assets: str = ""
    """More assets: comma-separated ASSET=<coingecko id>:<binance symbol>, e.g.
    SOL=solana:SOLUSDT,XRP=ripple:XRPUSDT; each adds ASSET-USD and ASSET-RUB after the standard eight."""

    # --- Stock bars (ratesvc.stocks) ---
    polygon_adjusted_max_age_s: PositiveFloat = 7 * 86400.0
    """Split-adjusted closed bars are refetched after this age (a split rewrites history)."""
    polygon_budget_window_s: PositiveFloat = 60.0
    """The window of RATESVC_POLYGON_CALLS_PER_MINUTE; only tests make it shorter."""
    stocks_open_ttl_s: PositiveFloat = 60.0
    """Bars of a session that is still open (today, US Eastern) are refetched after this age."""
    stocks_settle_s: Annotated[float, msgspec.Meta(ge=0)] = 3600.0
    """A session's bars count as final this long after its US Eastern midnight (late trades)."""
    stocks_budget_wait_s: Annotated[float, msgspec.Meta(ge=0)] = 5.0
    """Longest a request waits for an upstream call slot before answering stale or 503."""
    stocks_refresh_interval_s: PositiveFloat = 5.0
    """How often the background refresher looks for open sessions to keep fresh."""
    stocks_refresh_recent_s: PositiveFloat = 900.0
    """Series asked for within this many seconds have their open session kept fresh."""
    stocks_kept_answers_mb: PositiveInt = 128
    """Memory per process for aggregates answers served lately (each valid while Redis agrees)."""

    # --- Events (ratesvc.events) ---
    events_stream_max: PositiveInt = 1_000_000
    """Most events waiting in the Redis stream; beyond it POST /v1/events answers 503."""
    events_batch_max: PositiveInt = 1000
    """Most stream entries the event drainer writes to PostgreSQL in one transaction."""
    events_claim_idle_s: PositiveFloat = 30.0
    """Entries a drainer left pending this long (it died) are taken over by another one."""
    events_lag_warn_s: PositiveFloat = 10.0
    """Log a WARNING while the oldest undrained event is older than this."""

    # --- Rate limiting (ratesvc.ratelimit) ---
    rate_limit: str = "1500/minute"
    """Per-client limit on every route except health, readiness and metrics."""
    trust_proxy: bool = False
    """Take the client address from the first X-Forwarded-For hop (behind a reverse proxy)."""
    rate_limit_enabled: bool = True
    """Turn the per-client rate limit off entirely (e.g. when a proxy enforces one)."""
    rate_limit_sync_interval_s: PositiveFloat = 0.1
    """How often local counts are merged into Redis; bounds the overshoot across replicas."""
    rate_limit_max_clients: PositiveInt = 100_000
    """Clients counted apart per window and process; later ones share one bucket of the limit."""

    # --- HTTP extras ---
    cors_origins: tuple[str, ...] = ()
    """Origins allowed by CORS, comma-separated; empty (the default) turns CORS off."""

    def __post_init__(self) -> None:
        if not _RATE_LIMIT.match(self.rate_limit):
            raise ValueError("expected `<count>/<second|minute|hour|day>` - at `$.rate_limit`")
        try:
            parse_extra_assets(self.extra_assets)
        except ValueError as exc:
            raise ValueError(f"{exc} - at `$.extra_assets`") from None

    @property
    def extra_assets_parsed(self) -> tuple[ExtraAsset, ...]:
        """The entries of RATESVC_EXTRA_ASSETS, checked in __post_init__."""
        return parse_extra_assets(self.extra_assets)

    @property
    def rate_limit_parsed(self) -> tuple[int, int]:
        """The rate limit as (requests, period in seconds)."""
        match = _RATE_LIMIT.match(self.rate_limit)
        assert match is not None  # checked in __post_init__
        return int(match.group(1)), _PERIOD_S[match.group(2)]

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in logs, responses or metrics."""
        return tuple(s for s in (self.coingecko_api_key, self.polygon_api_key) if s)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()


_TUPLE_FIELDS = {"cors_origins"}
_FIELDS = set(Settings.__struct_fields__)
_FIELD_AT = re.compile(r"at `\$\.(\w+)`")


def _env_name(field: str) -> str:
    return PREFIX + field.upper()


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
) -> Settings:
    """Build Settings from ``environ`` (default ``os.environ``) over an optional ``.env`` file.

    Real environment variables win over the file, as in docker compose.
    Raises SettingsError with a one-line message naming the variable.
    """
    merged: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    merged.update(os.environ if environ is None else environ)

    raw: dict[str, object] = {}
    for key, value in merged.items():
        if not key.startswith(PREFIX):
            continue
        field = key.removeprefix(PREFIX).lower()
        if field not in _FIELDS:
            # Test-only and tool variables share the prefix; typos of real ones are caught here.
            if field.startswith("test_"):
                continue
            raise SettingsError(f"unknown setting {key}; known settings: see .env.example")
        if field in _TUPLE_FIELDS:
            raw[field] = [part.strip() for part in value.split(",") if part.strip()]
        elif value == "" and Settings.__struct_defaults__[_field_index(field)] is None:
            raw[field] = None
        else:
            raw[field] = value
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc)
        match = _FIELD_AT.search(message)
        name = _env_name(match.group(1)) if match else "settings"
        reason = _FIELD_AT.sub("", message).rstrip(" -")
        shown = ""
        if name in merged and not name.endswith("_KEY"):
            shown = "=" + repr(redact_url(merged[name]))
        raise SettingsError(f"invalid setting {name}{shown}: {reason}") from None


def _field_index(field: str) -> int:
    fields = Settings.__struct_fields__
    return fields.index(field) - (len(fields) - len(Settings.__struct_defaults__))
