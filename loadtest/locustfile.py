"""A realistic mix of ratesvc's clients, for locust.

* ``RatesFrontend`` (most users): a web page polling ``/v1/courses`` every
  second with ``If-None-Match``, as a browser revalidating its cached copy
  does; now and then a filtered view (one exchanger, a few directions).
* ``ChartViewer``: a charting frontend opening minute bars of one session,
  paging back a session at a time, and zooming out to hours and days.
* ``EventSender``: a client posting analytics events, one at a time or in
  small batches.

Run it with ``loadtest/run.py`` (starts ratesvc with its simulators, runs
locust headless and draws the charts) or against any ratesvc:

    .venv/bin/locust -f loadtest/locustfile.py --host http://127.0.0.1:8000
"""

from __future__ import annotations

import random
import time
from datetime import date, timedelta

from locust import FastHttpUser, between, constant, task

TICKERS = ("AAPL", "NVDA", "TSLA", "MSFT", "AMZN", "SPY")
LAST_SESSION = date(2024, 6, 28)
"""A Friday whose sessions are long closed: bars there are final and cacheable."""
EVENT_TYPES = ("page_view", "chart_view", "login", "alert_set", "export")


def _session_before(day: date) -> date:
    day -= timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


class RatesFrontend(FastHttpUser):
    weight = 8
    wait_time = constant(1)

    def on_start(self) -> None:
        self.etag = ""

    @task(10)
    def poll_courses(self) -> None:
        headers = {"If-None-Match": self.etag} if self.etag else {}
        with self.client.get(
            "/v1/courses", headers=headers, name="/v1/courses", catch_response=True
        ) as response:
            if response.status_code == 200:
                self.etag = response.headers.get("etag", "")
                response.success()
            elif response.status_code == 304:
                response.success()
            else:
                response.failure(f"status {response.status_code}")

    @task(1)
    def filtered(self) -> None:
        if random.random() < 0.5:
            self.client.get("/v1/courses?exchanger=coingecko", name="/v1/courses?exchanger")
        else:
            self.client.get("/v1/courses?direction=BTC-USD,ETH-RUB", name="/v1/courses?direction")


class ChartViewer(FastHttpUser):
    weight = 1
    wait_time = between(1, 4)

    def on_start(self) -> None:
        self.ticker = random.choice(TICKERS)
        self.day = LAST_SESSION

    def _aggs(self, multiplier: int, timespan: str, start: date, end: date, name: str) -> None:
        self.client.get(
            f"/v1/stocks/aggs/{self.ticker}/range/{multiplier}/{timespan}/{start}/{end}",
            name=name,
        )

    @task(6)
    def page_back_one_session(self) -> None:
        self._aggs(1, "minute", self.day, self.day, "/v1/stocks/aggs [1 minute, 1 day]")
        self.day = _session_before(self.day)
        if (LAST_SESSION - self.day).days > 20:
            self.day = LAST_SESSION

    @task(2)
    def hours_of_a_month(self) -> None:
        self._aggs(
            1,
            "hour",
            LAST_SESSION - timedelta(days=30),
            LAST_SESSION,
            "/v1/stocks/aggs [1 hour, 30 days]",
        )

    @task(1)
    def days_of_a_year(self) -> None:
        self._aggs(
            1,
            "day",
            LAST_SESSION - timedelta(days=365),
            LAST_SESSION,
            "/v1/stocks/aggs [1 day, 1 year]",
        )

    @task(1)
    def other_ticker(self) -> None:
        self.ticker = random.choice(TICKERS)
        self.day = LAST_SESSION


class EventSender(FastHttpUser):
    weight = 1
    wait_time = between(0.5, 1.5)

    def _event(self) -> dict[str, object]:
        return {
            "user_id": random.randint(1, 100_000),
            "event_type": random.choice(EVENT_TYPES),
            "timestamp": int(time.time()),
            "payload": {"ticker": random.choice(TICKERS)},
        }

    @task(4)
    def one(self) -> None:
        self.client.post("/v1/events", json=self._event(), name="/v1/events")

    @task(1)
    def batch(self) -> None:
        events = [self._event() for _ in range(random.randint(2, 10))]
        self.client.post("/v1/events", json=events, name="/v1/events [batch]")
