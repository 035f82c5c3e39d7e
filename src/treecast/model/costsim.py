"""The cost simulator: how long every rank's schedule takes, without running it.

An event-driven critical path over the steps of all ranks (each rank's steps in order),
with the costs of :class:`Costs`:

- ``Send`` of ``b`` bytes: the sender works ``half + b beta`` (posting, copying into the
  ring); the first chunk is readable ``half + min(b, chunk) beta`` after it starts.
- ``Recv``: starts once the rank is ready and the first chunk is readable (plus, when it
  waited past its yielding phase, the rest of the sleep it was in: :func:`lateness`), works
  ``half + b recv_beta`` (plus ``b gamma`` when it reduces), and cannot end before the
  sender's last chunk has been copied out: ``send end + min(b, chunk) beta``.
- ``Combine``: ``b gamma``. ``WaitAll`` costs nothing (a send's cost is paid when posted).
- every rank starts with ``overhead`` (the call's planning and checks).

Work needs a core: with ``cores`` fewer than the ranks, each piece of work takes the core
that frees first (list scheduling, in time order), so the ranks beyond ``cores`` queue
(beyond :data:`LIST_SCHEDULING_RATIO` ranks per core, its bound instead). With a core per
rank the result is the plain critical path.

Per-rank state is a few numbers and the rank's schedule, a generator consumed as the rank
advances; no store, no payload. For rank-symmetric schedules (a ring: every rank does what
rank 0 does, shifted) :func:`simulate_symmetric` follows rank 0 alone.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from ..algorithms.schedule import Combine, Recv, Send, Step
from ..transports.wait import FIRST_SLEEP, MAX_SLEEP, YIELD_SECONDS
from .costs import step_bytes


class ScheduleError(ValueError):
    """The schedules cannot complete (a receive whose message is never sent), or a schedule
    declared symmetric is not."""


@dataclass(frozen=True)
class Costs:
    """The per-step figures of one call (seconds, and bytes for ``chunk``, ``block`` and
    ``whole``).

    Attributes:
        half: per message, on each side (half of alpha, plus half the object form's
            pickling).
        beta: per byte copied by a sender.
        recv_beta: per byte copied by a receiver (``beta``, plus fresh memory's page
            faults in the object form).
        gamma: per byte reduced.
        chunk: the transport's pipelining grain.
        overhead: per call and rank.
        block: bytes of one block id.
        whole: bytes of the whole payload.
        yield_window: how long a waiting rank yields before it starts sleeping.
        sleep_extra: how much longer than asked each of its sleeps takes.
    """

    half: float
    beta: float
    recv_beta: float
    gamma: float
    chunk: float
    overhead: float
    block: float
    whole: float
    yield_window: float = YIELD_SECONDS
    sleep_extra: float = 0.0


def lateness(wait: float, yield_window: float, sleep_extra: float) -> float:
    """How long after a message arrives a rank that has waited ``wait`` seconds for it
    notices (``transports/wait.py``'s back-off): at once while it still yields, else at the
    end of its current sleep (sleeps of :data:`FIRST_SLEEP` doubling up to
    :data:`MAX_SLEEP`, each ``sleep_extra`` longer than asked)."""
    if wait <= yield_window:
        return 0.0
    t, sleep = yield_window, FIRST_SLEEP
    while sleep < MAX_SLEEP:
        t += sleep + sleep_extra
        if t >= wait:
            return t - wait
        sleep *= 2
    step = MAX_SLEEP + sleep_extra
    return t + math.ceil((wait - t) / step) * step - wait


@dataclass(frozen=True)
class Outcome:
    """A simulated call: ``seconds`` until the last rank is done, ``messages`` sent."""

    seconds: float
    messages: int


LIST_SCHEDULING_RATIO = 16
"""Up to this many ranks per core, work takes cores in time order (list scheduling);
beyond, the time is its bound: the larger of the critical path and all ranks'
work over the cores, which list scheduling approaches there, at a fraction of the cost."""

Schedules = Callable[[int], Iterable[Step]]
"""rank -> that rank's steps."""


class _Simulation:
    """One run of :func:`simulate` (state per rank: a clock, a schedule, a step it waits on)."""

    def __init__(self, size: int, schedules: Schedules, costs: Costs, cores: int) -> None:
        self.size, self.costs, self.cores = size, costs, cores
        shared = 0 < cores < size
        self.limited = shared and size <= LIST_SCHEDULING_RATIO * cores
        self.bound = shared and not self.limited
        self.free = [0.0] * cores if self.limited else []  # when each core frees
        self.work = 0.0  # all ranks' work (bound mode)
        self.steps: list[Iterator[Step] | None] = [None] * size
        self.schedules = schedules
        self.clock = [0.0] * size
        self.pending: list[Recv | None] = [None] * size
        self.waiting: dict[int, int] = {}  # rank -> the peer whose message it waits for
        # messages in flight, by sender * size + receiver, in send order: (first chunk
        # readable, sender done, bytes)
        self.mail: dict[int, list[tuple[float, float, float]]] = {}
        self.ready: list[tuple[float, int]] = [(0.0, r) for r in range(size)]
        self.messages = 0

    def late(self, wait: float) -> float:
        """How late a rank that waited ``wait`` seconds notices its message."""
        c = self.costs
        return lateness(wait, c.yield_window, c.sleep_extra)

    def cpu(self, t: float, work: float, floor: float = 0.0) -> tuple[float, float]:
        """(start, end) of ``work`` seconds that may start at ``t`` and end no sooner than
        ``floor``, on the core that frees first."""
        if not self.limited:
            self.work += work
            end = t + work
            return t, end if end > floor else floor
        first = self.free[0]
        start = t if t > first else first
        end = start + work
        if end < floor:
            end = floor
        heapq.heapreplace(self.free, end)
        return start, end

    def send(self, rank: int, peer: int, b: float, t: float) -> float:
        """Post ``b`` bytes to ``peer`` at ``t``; return when the sender is done."""
        c = self.costs
        work = c.half + b * c.beta
        if self.limited:
            start, end = self.cpu(t, work)
        else:
            start, end = t, t + work
            self.work += work
        first = start + c.half + (b if b < c.chunk else c.chunk) * c.beta
        key = rank * self.size + peer
        queue = self.mail.get(key)
        if queue is None:
            self.mail[key] = [(first, end, b)]
        else:
            queue.append((first, end, b))
        self.messages += 1
        if self.waiting.get(peer) == rank:  # it waits for this message: wake it
            del self.waiting[peer]
            at = self.clock[peer]
            heapq.heappush(self.ready, (first + self.late(first - at) if first > at else at, peer))
        return end

    def recv(self, rank: int, step: Recv, t: float) -> float | None:
        """The end of the receive, or None if its message is not sent yet (the rank waits),
        or, with cores shared, arrives later than ``t`` (the rank goes back to the queue,
        to take a core in time order)."""
        key = step.peer * self.size + rank
        queue = self.mail.get(key)
        if queue is None:
            self.waiting[rank] = step.peer
            self.clock[rank] = t
            return None
        first, send_end, b = queue[0]
        if first > t:
            t = first + self.late(first - t)
            if self.limited:
                self.clock[rank] = t
                heapq.heappush(self.ready, (t, rank))
                return None
        if len(queue) == 1:
            del self.mail[key]
        else:
            del queue[0]
        c = self.costs
        work = c.half + b * c.recv_beta + (b * c.gamma if step.reduce else 0.0)
        return self.cpu(t, work, send_end + (b if b < c.chunk else c.chunk) * c.beta)[1]

    def start(self, rank: int, t: float) -> Iterator[Step]:
        """``rank``'s schedule, once its call's overhead is paid from ``t``."""
        steps = self.steps[rank] = iter(self.schedules(rank))
        self.clock[rank] = self.cpu(t, self.costs.overhead)[1]
        return steps

    def run(self) -> Outcome:
        """Advance the earliest rank until it waits or ends (cores shared: by one step,
        so that work takes cores in time order), until no rank can."""
        ready, steps, pending, clock = self.ready, self.steps, self.pending, self.clock
        limited, block, whole = self.limited, self.costs.block, self.costs.whole
        gamma = self.costs.gamma
        while ready:
            t, rank = heapq.heappop(ready)
            it = steps[rank]
            if it is None:
                it = self.start(rank, t)
                t = clock[rank]
                if limited:
                    heapq.heappush(ready, (t, rank))
                    continue
            while True:
                step: Step | None = pending[rank]
                if step is None:
                    step = next(it, None)
                    if step is None:
                        clock[rank] = t
                        break
                else:
                    pending[rank] = None
                if type(step) is Recv:
                    end = self.recv(rank, step, t)
                    if end is None:
                        pending[rank] = step
                        break
                    t = end
                elif type(step) is Send:
                    n = step.nbytes
                    b = n if n >= 0 else len(step.blocks) * block if step.blocks else whole
                    t = self.send(rank, step.peer, b, t)
                elif type(step) is Combine:
                    t = self.cpu(t, block * gamma)[1]
                if limited:
                    clock[rank] = t
                    heapq.heappush(ready, (t, rank))
                    break
        return self.outcome()

    def outcome(self) -> Outcome:
        """The simulated call's :class:`Outcome`.

        Raises:
            ScheduleError: some rank still waits for a message.
        """
        if self.waiting:
            rank, peer = next(iter(self.waiting.items()))
            raise ScheduleError(
                f"the schedules cannot complete: rank {rank} waits for a message from rank "
                f"{peer} that is never sent ({len(self.waiting)} rank(s) waiting)"
            )
        seconds = max(self.clock, default=0.0)
        if self.bound:
            seconds = max(seconds, self.work / self.cores)
        return Outcome(seconds, self.messages)


def simulate(size: int, schedules: Schedules, costs: Costs, cores: int = 0) -> Outcome:
    """The time until every rank of ``size`` has run its steps (``schedules(rank)``), on
    ``cores`` cores (0: one per rank).

    Raises:
        ScheduleError: a rank waits for a message that is never sent.
    """
    return _Simulation(size, schedules, costs, cores).run()


SYMMETRIES = ("rotation", "xor")
"""How the ranks of a symmetric schedule map onto rank 0: rank ``r`` does what rank 0 does
with every peer ``q`` shifted (``q + r``, a ring) or flipped (``q ^ r``, recursive doubling
on a power of two)."""


def _seen_as_rank0(step: Step, rank: int, size: int, rotation: bool) -> tuple[object, ...]:
    """``rank``'s ``step`` as rank 0 would take it: kind, mapped peer, segment bytes, block
    count, reduction."""
    peer = getattr(step, "peer", None)
    if peer is not None:
        peer = (peer - rank) % size if rotation else peer ^ rank
    blocks = getattr(step, "blocks", ())
    return (
        type(step),
        peer,
        getattr(step, "nbytes", 0),
        len(blocks),
        bool(getattr(step, "reduce", 0)),
    )


def _checked(
    size: int, steps0: Iterable[Step], others: Sequence[tuple[int, Iterable[Step]]], symmetry: str
) -> Iterator[Step]:
    """Rank 0's steps, checking as they go that every rank of ``others`` takes the same
    step mapped by ``symmetry``.

    Raises:
        ScheduleError: one does not.
    """
    iters = [(r, iter(steps)) for r, steps in others]
    rotation = symmetry == "rotation"
    for i, step in enumerate(steps0):
        mine = _seen_as_rank0(step, 0, size, rotation)
        for r, it in iters:
            theirs = next(it, None)
            if theirs is None or _seen_as_rank0(theirs, r, size, rotation) != mine:
                raise ScheduleError(f"rank {r}'s step {i} is not rank 0's, {symmetry} mapped")
        yield step
    for r, it in iters:
        if next(it, None) is not None:
            raise ScheduleError(f"rank {r} has more steps than rank 0")


def simulate_symmetric(
    size: int,
    steps0: Iterable[Step],
    costs: Costs,
    cores: int = 0,
    symmetry: str = "rotation",
    others: Sequence[tuple[int, Iterable[Step]]] = (),
) -> Outcome:
    """:func:`simulate` for a schedule whose every rank does what rank 0 does, its peers
    mapped by ``symmetry`` (checked along the way on the ``(rank, steps)`` of ``others``):
    follows rank 0 alone. The message rank 0 gets from ``s`` is, mapped, the one rank 0
    sends to ``-s`` (rotation) or to ``s`` (xor), so it was sent when rank 0 sent that one.
    With cores shared, the time is at least the work of all ranks over the cores.

    Raises:
        ScheduleError: a rank of ``others`` differs from rank 0, or rank 0 receives from
            ``s`` before it has sent to its mirror.
    """
    c = costs
    shared = 0 < cores < size
    sent: dict[int, list[tuple[float, float, float]]] = {}
    taken: dict[int, int] = {}
    t = work = c.overhead
    messages = 0
    for step in _checked(size, steps0, others, symmetry):
        if isinstance(step, Send):
            b = step_bytes(step, c.block, c.whole)
            cost = c.half + b * c.beta
            first = t + c.half + min(b, c.chunk) * c.beta
            sent.setdefault(step.peer, []).append((first, t + cost, b))
            t, work, messages = t + cost, work + cost, messages + 1
        elif isinstance(step, Recv):
            mirror = -step.peer % size if symmetry == "rotation" else step.peer
            k = taken.get(mirror, 0)
            mine = sent.get(mirror, [])
            if k >= len(mine):
                raise ScheduleError(
                    f"rank 0 receives from rank {step.peer} before it has sent to rank "
                    f"{mirror}: not a {symmetry}-symmetric schedule"
                )
            taken[mirror] = k + 1
            first, send_end, b = mine[k]
            if first > t:
                t = first + lateness(first - t, c.yield_window, c.sleep_extra)
            cost = c.half + b * c.recv_beta + (b * c.gamma if step.reduce else 0.0)
            t, work = max(t + cost, send_end + min(b, c.chunk) * c.beta), work + cost
        elif isinstance(step, Combine):
            t, work = t + c.block * c.gamma, work + c.block * c.gamma
    seconds = max(t, size * work / cores) if shared else t
    return Outcome(seconds, messages * size)
