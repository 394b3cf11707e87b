-- Latest quote per (source, market): what warm start loads into Redis.
-- A market is an upstream's own name: "BTCUSDT" on binance, "bitcoin/usd" on coingecko.
CREATE TABLE quotes_latest (
    source      text        NOT NULL,
    market      text        NOT NULL,
    value       numeric     NOT NULL CHECK (value > 0),
    observed_at timestamptz NOT NULL,
    PRIMARY KEY (source, market)
);

-- History, downsampled to the last quote of each minute, pruned by age.
CREATE TABLE quote_history (
    source      text        NOT NULL,
    market      text        NOT NULL,
    minute      timestamptz NOT NULL,
    value       numeric     NOT NULL CHECK (value > 0),
    observed_at timestamptz NOT NULL,
    PRIMARY KEY (source, market, minute)
);

CREATE INDEX quote_history_minute ON quote_history (minute);
