"""Reconnect delays: exponential growth with jitter, reset after a successful Welcome."""

from __future__ import annotations

import random
from typing import Callable, Optional


class Backoff:
    """Delays between reconnect attempts.

    Attempt ``n`` (1-based) waits a delay drawn uniformly from ``[d/2, d]`` where
    ``d = min(max_s, base_s * 2**(n-1))`` ("equal jitter"): workers that lost the
    same server do not reconnect in lockstep, and no delay collapses to zero.
    """

    def __init__(
        self,
        base_s: float = 0.1,
        max_s: float = 5.0,
        rand: Optional[Callable[[], float]] = None,
    ) -> None:
        if base_s <= 0 or max_s < base_s:
            raise ValueError("need 0 < base_s <= max_s")
        self.base_s = base_s
        self.max_s = max_s
        self._rand = rand or random.random
        self._attempt = 0

    @property
    def attempt(self) -> int:
        """Number of delays handed out since the last reset."""
        return self._attempt

    def ceiling(self, attempt: int) -> float:
        """Upper bound of the delay before reconnect attempt ``attempt`` (1-based)."""
        exponent = min(max(attempt - 1, 0), 62)
        return min(self.max_s, self.base_s * (2.0**exponent))

    def next_delay(self) -> float:
        """Returns the delay, in seconds, to wait before the next attempt."""
        self._attempt += 1
        ceiling = self.ceiling(self._attempt)
        return ceiling / 2 + self._rand() * ceiling / 2

    def reset(self) -> None:
        """Starts again from the smallest delay (call after a successful connect)."""
        self._attempt = 0
