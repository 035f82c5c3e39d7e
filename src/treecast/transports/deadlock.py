"""Deadlock detection without a timeout: every live rank blocked, nothing moving.

Each rank owns a few words on a *board* that every rank of the job can read (for the
shared-memory transport, in the world segment's control page)::

    word 0  gen       changes whenever the rank starts or ends a blocked wait, and whenever
                      bytes move while it is blocked
    word 1  blocked   1 while the rank is blocked and no other thread of it could still act
    word 2  verdict   the ``gen`` at which a rank found this one deadlocked (0: none)
    word 3  peer      1 + the rank its wait depends on, or 0
    word 4  beat      counts the rank's looks at the board (each after a poll that found
                      nothing to move)

A rank that has slept in a wait for a while looks at the board every third of the settle
time (``TREECAST_DEADLOCK_SECONDS``, default 0.5 s). If every rank that still runs is
blocked, and their ``gen`` values stay put for the settle time while each of them polled
at least twice (its ``beat`` moved; a rank that the OS has not scheduled, or that stopped
halfway through writing a message, proves nothing), then nobody moved a byte or left its
wait, and nobody can: each waits for another blocked one. A blocked rank drains every
incoming channel whenever it polls, so data in flight shows up as a changing ``gen``. A
rank that computes, sleeps, reads ``input()`` or is still starting is not blocked, and a
wait with a timeout does not count either (the rank goes on when it expires), so nothing
is declared while such a rank lives. The rank that sees the deadlock writes every blocked
rank's ``gen`` into its ``verdict`` and raises :class:`~treecast.errors.DeadlockError`;
every other rank finds its verdict equal to its own ``gen`` at its next look and raises
too, so each rank reports the deadlock, not only the first to notice.

Costs: nothing on the path of a call that completes without sleeping; a few stores when a
wait starts and ends sleeping; one look at the board every ~0.17 s while asleep.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from ..errors import InvalidArgumentError

WORDS = 5
"""Words (u64) per rank on the board."""
GEN, BLOCKED, VERDICT, PEER, BEAT = range(WORDS)
BEATS = 2
"""Looks at the board (each after a fruitless poll) that every rank must have made within
the settle time before a deadlock is declared."""
NEW, RUNNING, GONE = range(3)
"""A rank as :class:`Watch` sees it: not yet started, running, finished or dead."""


def settle_from_env() -> float:
    """Seconds without progress that make a deadlock (``TREECAST_DEADLOCK_SECONDS``, default
    0.5; 0 turns detection off).

    Raises:
        InvalidArgumentError: the variable is not a non-negative number.
    """
    raw = os.environ.get("TREECAST_DEADLOCK_SECONDS", "").strip()
    if not raw:
        return 0.5
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise InvalidArgumentError(
            f"TREECAST_DEADLOCK_SECONDS={raw!r} must be a number of seconds >= 0 (0: off)"
        )
    return value


class Watch:
    """This rank's side of the board.

    Args:
        words: the board, ``WORDS`` u64 per rank (a ``memoryview`` cast to ``"Q"``, or a
            list for a world of one).
        slot: this rank's index on the board.
        state: what a slot's rank is doing (:data:`NEW`, :data:`RUNNING` or :data:`GONE`).
        settle: seconds without progress that make a deadlock (> 0).
    """

    __slots__ = (
        "_lock",
        "_me",
        "_next",
        "_seen",
        "_seen_at",
        "_state",
        "_timed",
        "_waiting",
        "settle",
        "words",
    )

    def __init__(
        self,
        words: memoryview | list[int],
        slot: int,
        state: Callable[[int], int],
        settle: float,
    ) -> None:
        self.words = words
        self._me = slot * WORDS
        self._state = state
        self.settle = settle
        self._lock = threading.Lock()
        self._waiting = 0  # this process's threads blocked in a wait
        self._timed = 0  # ... of which with a timeout: those end by themselves
        self._next = 0.0
        self._seen: tuple[tuple[int, ...], ...] | None = None
        self._seen_at = 0.0

    def _eligible(self) -> int:
        # a thread of this rank that is not waiting (a manager thread, user code) may still
        # send something, and a wait with a timeout ends by itself (the rank then goes on):
        # the rank counts as blocked only if all of its threads wait without a timeout
        return int(self._waiting >= threading.active_count() and not self._timed)

    def block(self, peer: int | None, timed: bool) -> None:
        """A wait of this process starts sleeping; ``peer``: the rank it depends on;
        ``timed``: it has a timeout."""
        w, me = self.words, self._me
        with self._lock:
            self._waiting += 1
            self._timed += timed
            w[me + PEER] = 0 if peer is None or peer < 0 else peer + 1
            w[me + BLOCKED] = self._eligible()
            w[me + GEN] += 1
        self._seen = None

    def moved(self) -> None:
        """Bytes moved while blocked."""
        self.words[self._me + GEN] += 1

    def unblock(self, timed: bool) -> None:
        """A sleeping wait ends (completed or raised)."""
        w, me = self.words, self._me
        with self._lock:
            self._waiting -= 1
            self._timed -= timed
            w[me + BLOCKED] = self._eligible() if self._waiting else 0
            w[me + GEN] += 1

    def peer_of(self, slot: int) -> int | None:
        """The rank that ``slot``'s wait depends on, if it said."""
        p = self.words[slot * WORDS + PEER]
        return p - 1 if p else None

    def condemned(self) -> bool:
        """True if another rank found this one's current wait deadlocked (a cheap test,
        made at every pause before anything else: the rank that found it may already have
        exited, and its death must not hide the deadlock)."""
        w, me = self.words, self._me
        return bool(w[me + VERDICT] == w[me + GEN])

    def deadlocked(self) -> bool:
        """Look at the board (at most every ``settle / 3`` seconds; call while blocked):
        True once this rank is part of a deadlock, found here or by another rank."""
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + self.settle / 3
        w, me = self.words, self._me
        w[me + BLOCKED] = self._eligible()  # threads may have ended since the wait began
        w[me + BEAT] += 1
        if w[me + VERDICT] == w[me + GEN]:
            return True
        snap = self._snapshot()
        seen = self._seen
        if snap is None or seen is None or snap[:2] != seen[:2]:
            self._seen, self._seen_at = snap, now
            return False
        if now - self._seen_at < self.settle or any(
            b - a < BEATS for a, b in zip(seen[2], snap[2], strict=True)
        ):
            return False
        for slot, gen in zip(snap[0], snap[1], strict=True):
            w[slot * WORDS + VERDICT] = gen
        return True

    def _snapshot(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]] | None:
        """The running ranks' slots, ``gen`` and ``beat`` words if all of them are blocked,
        else None."""
        w = self.words
        slots, gens, beats = [], [], []
        for slot in range(len(w) // WORDS):
            state = self._state(slot)
            if state == GONE:
                continue
            i = slot * WORDS
            if state == NEW or not w[i + BLOCKED]:
                return None
            slots.append(slot)
            gens.append(w[i + GEN])
            beats.append(w[i + BEAT])
        return tuple(slots), tuple(gens), tuple(beats)
