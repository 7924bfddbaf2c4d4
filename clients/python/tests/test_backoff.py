"""Reconnect backoff: exponential ceiling, equal jitter, reset."""

import pytest

from tasker._backoff import Backoff


def test_ceiling_doubles_up_to_the_cap():
    b = Backoff(base_s=0.1, max_s=1.0)
    assert [b.ceiling(n) for n in range(1, 7)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


@pytest.mark.parametrize("draw", [0.0, 0.5, 0.999])
def test_delay_lies_between_half_and_full_ceiling(draw):
    b = Backoff(base_s=0.2, max_s=5.0, rand=lambda: draw)
    for attempt in range(1, 10):
        delay = b.next_delay()
        ceiling = b.ceiling(attempt)
        assert ceiling / 2 <= delay <= ceiling


def test_reset_starts_again_from_base():
    b = Backoff(base_s=0.1, max_s=5.0, rand=lambda: 1.0)
    for _ in range(5):
        b.next_delay()
    assert b.attempt == 5
    b.reset()
    assert b.next_delay() == pytest.approx(0.1)


def test_huge_attempt_numbers_stay_capped():
    b = Backoff(base_s=0.1, max_s=2.0)
    assert b.ceiling(10_000) == 2.0


def test_invalid_bounds_are_refused():
    with pytest.raises(ValueError):
        Backoff(base_s=0, max_s=1)
    with pytest.raises(ValueError):
        Backoff(base_s=2, max_s=1)
