"""The per-user limit allows a burst, refuses beyond it, says so once, and recovers."""

from core.ratelimit import RateLimiter


def test_a_burst_up_to_the_limit_passes_then_one_refusal_is_announced() -> None:
    limiter = RateLimiter(max_events=3, per_seconds=60)
    assert [limiter.check(1, t).allowed for t in (0, 1, 2)] == [True, True, True]
    first, second = limiter.check(1, 3), limiter.check(1, 4)
    assert (first.allowed, first.tell) == (False, True)
    assert (second.allowed, second.tell) == (False, False)  # not told twice
    assert limiter.retry_after(1, 4) == 56


def test_users_are_limited_separately_and_the_window_slides() -> None:
    limiter = RateLimiter(max_events=1, per_seconds=10)
    assert limiter.check(1, 0).allowed and limiter.check(2, 0).allowed
    assert not limiter.check(1, 5).allowed
    assert limiter.check(1, 10.5).allowed
