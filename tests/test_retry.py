"""The one retry rule: backoff delays as documented, and retry() for a bounded call."""

from __future__ import annotations

import pytest

from ratesvc.retry import FULL_JITTER, backoff_delays, retry


def test_backoff_grows_with_equal_jitter_and_is_capped() -> None:
    delays = backoff_delays(1.0, 8.0)
    drawn = [next(delays) for _ in range(200)]
    assert 0.5 <= drawn[0] <= 1.0
    assert 1.0 <= drawn[1] <= 2.0
    assert 2.0 <= drawn[2] <= 4.0
    assert all(4.0 <= d <= 8.0 for d in drawn[4:])  # capped; never below half the cap
    assert max(drawn[4:]) > 7.0


def test_backoff_with_a_narrow_jitter_stays_near_its_ceiling() -> None:
    delays = backoff_delays(1.0, 3.0, jitter=0.2)
    drawn = [next(delays) for _ in range(200)]
    assert 0.8 <= drawn[0] <= 1.0
    assert 1.6 <= drawn[1] <= 2.0
    assert all(2.4 <= d <= 3.0 for d in drawn[2:])


def test_full_jitter_spans_zero_to_the_ceiling() -> None:
    delays = backoff_delays(1.0, 1.0, jitter=FULL_JITTER)
    drawn = [next(delays) for _ in range(400)]
    assert all(0.0 <= d <= 1.0 for d in drawn)
    assert min(drawn) < 0.1


def test_a_jitter_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="jitter"):
        next(backoff_delays(jitter=1.5))


async def test_retry_returns_once_the_call_succeeds() -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionRefusedError("not yet")
        return "connected"

    waits = iter([0.0, 0.0, 0.0])
    assert await retry(flaky, on=(OSError,), attempts=5, delays=waits, what="test") == "connected"
    assert calls == 3


async def test_retry_gives_up_after_the_last_attempt_and_never_retries_others() -> None:
    calls = 0

    async def refused() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionRefusedError("down")

    with pytest.raises(ConnectionRefusedError):
        await retry(refused, on=(OSError,), attempts=3, delays=iter([0.0] * 5), what="test")
    assert calls == 3

    async def broken() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("a bug, not an outage")

    calls = 0
    with pytest.raises(ValueError, match="a bug"):
        await retry(broken, on=(OSError,), attempts=3, delays=iter([0.0] * 5), what="test")
    assert calls == 1
