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

Across nodes (the MPI transport) a board holds one node's ranks: a rank with MPI
transfers in flight does not count as blocked, and the node's *speaker* (its lowest running
rank) asks the other nodes' speakers through an :class:`Exchange` whether their boards
stand still too; when every node says so twice with the same snapshot, each node's ranks
are condemned (see ``transports/mpi.py``).

Costs: nothing on the path of a call that completes without sleeping; a few stores when a
wait starts and ends sleeping; one look at the board every ~0.17 s while asleep.
"""

from __future__ import annotations

import _thread
import os
import threading
import time
from collections.abc import Callable
from typing import Protocol

from ..errors import InvalidArgumentError

WORDS = 5
"""Words (u64) per rank on the board."""
GEN, BLOCKED, VERDICT, PEER, BEAT = range(WORDS)
SENDING = 1 << 62
"""Flag in a ``PEER`` word: the wait is a send to that peer (which a finished rank that
still takes messages can complete), not a receive from it."""
REPORTED = 1 << 62  # in the verdict word (SENDING is in the peer word)
"""Set in a rank's ``verdict`` once it has written its hang report: no longer equal to its
``gen``, so the others stop waiting for it (see :meth:`Watch.reported`)."""
REPORT_WAIT = 1.0
"""Seconds a condemned rank waits, at most, for the others of its deadlock to write their
reports before it leaves its call."""
BEATS = 2
"""Looks at the board (each after a fruitless poll) that every rank must have made within
the settle time before a deadlock is declared."""
NEW, RUNNING, GONE = range(3)
"""A rank as :class:`Watch` sees it: not yet started, running, finished or dead."""


BEAT_SECONDS = 0.05
"""A blocked rank's ``beat`` word counts its polls at most this often."""


def _thread_count() -> int:
    """This process's threads, also those started with ``_thread.start_new_thread`` rather
    than :mod:`threading`: each may still send."""
    return max(threading.active_count(), _thread._count() + 1)


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


class Exchange(Protocol):
    """How the ranks of a board learn whether the ranks they cannot see (other nodes) are
    stuck too; without one, the board holds every rank of the job."""

    def service(self, watch: Watch) -> None:
        """Answer the other nodes' questions, apply their verdicts and, while this board
        stands still (``watch.stable``), find out whether all of them do too; called
        about every :data:`EXCHANGE_SECONDS` by a blocked rank."""


EXCHANGE_SECONDS = 0.02
"""How often a blocked rank serves its :class:`Exchange` (a verdict from another node must
be applied before this node's ranks notice that the condemning node's ranks have gone)."""


class Watch:
    """This rank's side of the board.

    With ``settle`` 0 (detection off) the board is still kept: a finished rank reads it to
    see whether another waits for it (see ``_linger`` in :mod:`.base`).

    Args:
        words: the board, ``WORDS`` u64 per rank (a ``memoryview`` cast to ``"Q"``, or a
            list for a world of one).
        slot: this rank's index on the board.
        state: what a slot's rank is doing (:data:`NEW`, :data:`RUNNING` or :data:`GONE`).
        settle: seconds without progress that make a deadlock (0: never condemn).
        busy: True while this rank has transfers in flight that the board cannot see (MPI):
            it then does not count as blocked.
        exchange: how to reach the ranks that are not on the board (other nodes).
    """

    __slots__ = (
        "_beat_at",
        "_busy",
        "_exchange_at",
        "_lock",
        "_me",
        "_next",
        "_seen",
        "_seen_at",
        "_state",
        "_timed",
        "_waiting",
        "exchange",
        "settle",
        "slot",
        "stable",
        "words",
    )

    def __init__(
        self,
        words: memoryview | list[int],
        slot: int,
        state: Callable[[int], int],
        settle: float,
        busy: Callable[[], bool] | None = None,
        exchange: Exchange | None = None,
    ) -> None:
        self.words = words
        self.slot = slot
        self._me = slot * WORDS
        self._state = state
        self.settle = settle
        self._busy = busy
        self.exchange = exchange
        self._exchange_at = 0.0
        self.stable: tuple[tuple[int, ...], tuple[int, ...]] | None = None
        """The running ranks' slots and ``gen`` words while the board has stood still (every
        running rank blocked) for the settle time, as of this rank's last look; else None."""
        self._lock = threading.Lock()
        self._waiting = 0  # this process's threads blocked in a wait
        self._timed = 0  # ... of which with a timeout: those end by themselves
        self._next = 0.0
        self._beat_at = 0.0
        self._seen: tuple[tuple[int, ...], ...] | None = None
        self._seen_at = 0.0

    def _eligible(self) -> int:
        # a thread of this rank that is not waiting (a manager thread, user code) may still
        # send something, and a wait with a timeout ends by itself (the rank then goes on):
        # the rank counts as blocked only if all of its threads wait without a timeout
        if self._busy is not None and self._busy():
            return 0
        return int(self._waiting >= _thread_count() and not self._timed)

    def block(self, peer: int | None, timed: bool, sending: bool = False) -> None:
        """A wait of this process starts sleeping; ``peer``: the rank it depends on;
        ``timed``: it has a timeout; ``sending``: it sends to ``peer``."""
        w, me = self.words, self._me
        with self._lock:
            self._waiting += 1
            self._timed += timed
            w[me + PEER] = 0 if peer is None or peer < 0 else (peer + 1) | (sending and SENDING)
            w[me + BLOCKED] = self._eligible()
            w[me + GEN] += 1
        self._seen = None

    def show_peer(self, peer: int | None, sending: bool = False) -> None:
        """Name the rank a wait of this process depends on without counting it as blocked
        (an asyncio driver's: another task may still send), so that a finished rank sees
        it (:meth:`sending_to`); None: no longer. Only the ``peer`` word: ``blocked`` and
        ``gen`` stay as they are, and a blocking wait in progress keeps its own peer."""
        with self._lock:
            if not self._waiting:
                word = 0 if peer is None or peer < 0 else (peer + 1) | (sending and SENDING)
                self.words[self._me + PEER] = word

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
            if not self._waiting:
                w[me + PEER] = 0  # PEER names the peer of a wait in progress only
            w[me + GEN] += 1

    def awaiting(self, rank: int) -> tuple[tuple[int, int, int], ...]:
        """The running slots sleeping in a receive from ``rank`` (timed or not), with their
        ``gen`` and ``beat`` words: a beat that moves while gen stands still shows a rank
        that polls and finds nothing (not one that is descheduled)."""
        w = self.words
        found = []
        for slot in range(len(w) // WORDS):
            i = slot * WORDS
            if slot != self.slot and w[i + PEER] == rank + 1 and self._state(slot) == RUNNING:
                found.append((slot, w[i + GEN], w[i + BEAT]))
        return tuple(found)

    def sending_to(self, rank: int) -> bool:
        """True if a running slot sleeps in a send to ``rank`` (it waits for ``rank`` to
        take what it sends)."""
        w, want = self.words, (rank + 1) | SENDING
        return any(
            slot != self.slot and w[slot * WORDS + PEER] == want and self._state(slot) == RUNNING
            for slot in range(len(w) // WORDS)
        )

    def peer_of(self, slot: int) -> int | None:
        """The rank that ``slot``'s wait depends on, if it said."""
        p = self.words[slot * WORDS + PEER] & ~SENDING
        return p - 1 if p else None

    def condemned(self) -> bool:
        """True if another rank found this one's current wait deadlocked (a cheap test,
        made at every pause before anything else: the rank that found it may already have
        exited, and its death must not hide the deadlock). Serves the exchange, if any."""
        if self.exchange is not None:
            now = time.monotonic()
            if now >= self._exchange_at:
                self._exchange_at = now + EXCHANGE_SECONDS
                self.exchange.service(self)
        w, me = self.words, self._me
        return bool(w[me + VERDICT] == w[me + GEN])

    def beat(self) -> None:
        """A blocked wait of this rank has polled and found nothing (call at each pause):
        counted at most every :data:`BEAT_SECONDS` in the ``beat`` word, which shows the
        rank alive and polling, not descheduled."""
        now = time.monotonic()
        if now >= self._beat_at:
            self._beat_at = now + BEAT_SECONDS
            self.words[self._me + BEAT] += 1

    def deadlocked(self) -> bool:
        """Look at the board (at most every ``settle / 3`` seconds; call while blocked):
        True once this rank is part of a deadlock, found here or by another rank. Always
        False with ``settle`` 0 (detection off)."""
        now = time.monotonic()
        if now < self._next or not self.settle:
            return False
        self._next = now + self.settle / 3
        w, me = self.words, self._me
        w[me + BLOCKED] = self._eligible()  # threads may have ended since the wait began
        if w[me + VERDICT] == w[me + GEN]:
            return True
        snap = self._snapshot()
        seen = self._seen
        self.stable = None
        if snap is None or seen is None or snap[:2] != seen[:2]:
            self._seen, self._seen_at = snap, now
        elif now - self._seen_at >= self.settle and all(
            b - a >= BEATS for a, b in zip(seen[2], snap[2], strict=True)
        ):
            self.stable = (snap[0], snap[1])
        if self.stable is None or self.exchange is not None:
            return False  # with an exchange, the verdict comes through it (condemned)
        self.condemn(self.stable)
        return True

    def token(self) -> int:
        """A number naming :attr:`stable` (0 when the board is not standing still)."""
        return 0 if self.stable is None else (hash(self.stable) & ((1 << 63) - 1)) or 1

    def still(self) -> bool:
        """True if the board is still exactly as :attr:`stable` says (read again now)."""
        snap = self._snapshot()
        return self.stable is not None and snap is not None and snap[:2] == self.stable

    def condemn(self, snapshot: tuple[tuple[int, ...], tuple[int, ...]]) -> None:
        """Write the verdict for the ranks and generations of ``snapshot``; a rank that has
        left that wait since is not affected."""
        for slot, gen in zip(*snapshot, strict=True):
            self.words[slot * WORDS + VERDICT] = gen

    def reported(self, limit: float = REPORT_WAIT) -> None:
        """This rank has written its deadlock report: say so, then wait (at most ``limit``
        seconds) until every other running rank condemned with it has written its own, so
        that each report shows the others still in their calls, not already gone."""
        w, me = self.words, self._me
        w[me + VERDICT] = w[me + GEN] | REPORTED
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and any(
            slot != self.slot
            and self._state(slot) == RUNNING
            and w[slot * WORDS + BLOCKED]
            and w[slot * WORDS + VERDICT] == w[slot * WORDS + GEN]
            for slot in range(len(w) // WORDS)
        ):
            time.sleep(0.001)

    def speaker(self) -> int | None:
        """The lowest running slot: the one that speaks for the board to other nodes."""
        for slot in range(len(self.words) // WORDS):
            if self._state(slot) == RUNNING:
                return slot
        return None

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
