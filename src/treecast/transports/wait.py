"""Waiting without burning the machine: spin briefly, then yield, then sleep with back-off.

With more ranks than cores, pure spinning collapses (the rank holding the data is not
scheduled); with fewer, sleeping costs latency (``time.sleep(1e-6)`` takes about 55 us).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

SPIN_ROUNDS = 200
"""Polls before the first yield: a few microseconds each, enough for a ping-pong."""
YIELD_SECONDS = 0.002
"""Time spent yielding the CPU between polls before the first sleep."""
OVERSUBSCRIBED_SPIN_ROUNDS = 10
OVERSUBSCRIBED_YIELD_SECONDS = 0.0002
"""With more ranks than cores a spinning rank steals the core from the rank it waits for
(measured: a dissemination barrier of 8 ranks on 2 cores takes 4 ms with 200 spins, 1.5 ms
with 20), so such ranks spin little and yield briefly before sleeping."""
FIRST_SLEEP = 20e-6
"""First sleep between polls once yielding is over; each later one doubles."""
MAX_SLEEP = 0.001
"""Longest sleep between polls, so that a late message costs at most this much latency."""


class Backoff:
    """One waiting episode: call :meth:`pause` after each unsuccessful poll.

    Args:
        oversubscribed: more ranks than cores on this machine: spin and yield less.
    """

    __slots__ = ("_rounds", "_sleep", "_spin", "_yield_for", "_yield_until")

    def __init__(self, oversubscribed: bool = False) -> None:
        self._rounds = 0
        self._yield_until = 0.0
        self._sleep = FIRST_SLEEP
        self._spin = OVERSUBSCRIBED_SPIN_ROUNDS if oversubscribed else SPIN_ROUNDS
        self._yield_for = OVERSUBSCRIBED_YIELD_SECONDS if oversubscribed else YIELD_SECONDS

    def pause(self, busy: Callable[[], bool] | None = None) -> bool:
        """Wait a little; return True when this pause slept (a good moment for slow checks).

        ``busy()`` (asked only once the spinning is over): transfers are in flight that move
        only while this process calls in (an MPI library's progress engine): yield the CPU
        but never sleep, and return True about every :data:`MAX_SLEEP` seconds for the
        slow checks.
        """
        self._rounds += 1
        if self._rounds < self._spin:
            return False
        now = time.monotonic()
        if self._rounds == self._spin:
            self._yield_until = now + self._yield_for
        if busy is not None and busy():
            os.sched_yield()
            if now < self._yield_until:
                return False
            self._yield_until = now + MAX_SLEEP
            return True
        if now < self._yield_until:
            os.sched_yield()
            return False
        time.sleep(self._sleep)
        self._sleep = min(self._sleep * 2, MAX_SLEEP)
        return True


def oversubscribed(nranks: int) -> bool:
    """True if ``nranks`` ranks exceed the CPUs this process may run on."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return nranks > cpus
