-- Open/high/low/close of each minute per (direction, source): what /v1/courses/history serves.
-- Written by the drainer; a minute written in parts is merged (earliest open, latest close).
-- open_at/close_at are the observation times of the first and last sample of the minute.
CREATE TABLE rate_history (
    direction text        NOT NULL,
    source    text        NOT NULL,
    minute    timestamptz NOT NULL,
    open      numeric     NOT NULL CHECK (open > 0 AND open < 'Infinity'),
    high      numeric     NOT NULL CHECK (high > 0 AND high < 'Infinity'),
    low       numeric     NOT NULL CHECK (low > 0 AND low < 'Infinity'),
    close     numeric     NOT NULL CHECK (close > 0 AND close < 'Infinity'),
    open_at   timestamptz NOT NULL,
    close_at  timestamptz NOT NULL,
    samples   integer     NOT NULL CHECK (samples > 0),
    PRIMARY KEY (direction, source, minute)
);

CREATE INDEX rate_history_minute ON rate_history (minute);

-- The history kept so far (last quote of each market and minute) becomes bars with
-- open = high = low = close, priced as ratesvc prices the standard eight directions:
-- coingecko quotes each one directly; binance X-USD is the X/USDT market (USDT-USD the
-- inverse of USDC/USDT); binance X-RUB is X-USD x tether/rub / tether/usd of the same minute.
CREATE TEMPORARY TABLE standard_directions (direction, coingecko_market, binance_symbol, invert, rub)
ON COMMIT DROP AS VALUES
    ('BTC-USD', 'bitcoin/usd', 'BTCUSDT', false, false),
    ('BTC-RUB', 'bitcoin/rub', 'BTCUSDT', false, true),
    ('ETH-USD', 'ethereum/usd', 'ETHUSDT', false, false),
    ('ETH-RUB', 'ethereum/rub', 'ETHUSDT', false, true),
    ('USDTTRC-USD', 'tether/usd', 'USDCUSDT', true, false),
    ('USDTTRC-RUB', 'tether/rub', 'USDCUSDT', true, true),
    ('USDTERC-USD', 'tether/usd', 'USDCUSDT', true, false),
    ('USDTERC-RUB', 'tether/rub', 'USDCUSDT', true, true);

INSERT INTO rate_history
    (direction, source, minute, open, high, low, close, open_at, close_at, samples)
SELECT d.direction, 'coingecko', h.minute, v, v, v, v, h.observed_at, h.observed_at, 1
FROM standard_directions d
JOIN quote_history h ON h.source = 'coingecko' AND h.market = d.coingecko_market
CROSS JOIN LATERAL (SELECT trim_scale(round(h.value, 8)) AS v) AS tidied
ON CONFLICT DO NOTHING;

INSERT INTO rate_history
    (direction, source, minute, open, high, low, close, open_at, close_at, samples)
SELECT d.direction, 'binance', h.minute, v, v, v, v, at, at, 1
FROM standard_directions d
JOIN quote_history h ON h.source = 'binance' AND h.market = d.binance_symbol
LEFT JOIN quote_history r
    ON d.rub AND r.source = 'coingecko' AND r.market = 'tether/rub' AND r.minute = h.minute
LEFT JOIN quote_history u
    ON d.rub AND u.source = 'coingecko' AND u.market = 'tether/usd' AND u.minute = h.minute
CROSS JOIN LATERAL (
    SELECT CASE WHEN d.invert THEN 1 / h.value ELSE h.value END AS usd,
           least(h.observed_at, r.observed_at, u.observed_at) AS at
) AS priced
CROSS JOIN LATERAL (
    SELECT trim_scale(round(CASE WHEN d.rub THEN priced.usd * r.value / u.value
                                 ELSE priced.usd END, 8)) AS v
) AS tidied
WHERE (NOT d.rub OR (r.value IS NOT NULL AND u.value IS NOT NULL)) AND v > 0
ON CONFLICT DO NOTHING;
