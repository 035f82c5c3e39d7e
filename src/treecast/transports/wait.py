"""Waiting without burning the machine: spin briefly, then yield, then sleep with back-off.

With more ranks than cores, pure spinning collapses (the rank holding the data is not
scheduled); with fewer, sleeping costs latency (``time.sleep(1e-6)`` takes about 55 us).
"""

from __future__ import annotations

import os
import time

SPIN_ROUNDS = 200
"""Polls before the first yield: a few microseconds each, enough for a ping-pong."""
YIELD_SECONDS = 0.002
"""Time spent yielding the CPU between polls before the first sleep."""
MAX_SLEEP = 0.001
"""Longest sleep between polls, so that a late message costs at most this much latency."""


class Backoff:
    """One waiting episode: call :meth:`pause` after each unsuccessful poll."""

    __slots__ = ("_rounds", "_sleep", "_yield_until")

    def __init__(self) -> None:
        self._rounds = 0
        self._yield_until = 0.0
        self._sleep = 20e-6

    def pause(self) -> bool:
        """Wait a little; return True when this pause slept (a good moment for slow checks)."""
        self._rounds += 1
        if self._rounds < SPIN_ROUNDS:
            return False
        now = time.monotonic()
        if self._rounds == SPIN_ROUNDS:
            self._yield_until = now + YIELD_SECONDS
        if now < self._yield_until:
            os.sched_yield()
            return False
        time.sleep(self._sleep)
        self._sleep = min(self._sleep * 2, MAX_SLEEP)
        return True
