"""Run every rank's schedule in one process on the real engine: for tests, and to count
what a schedule costs at sizes this machine cannot run.

:func:`simulate` runs each rank's steps with the engine every collective uses
(:func:`engine.store.execute`) over the in-process transport
(:class:`~treecast.transports.inproc.InprocWorld`), driving all ranks round-robin in this
thread: what is tested here is what runs. Instrumented stores check every message against
the schedule's contract (sender and receiver name the same blocks or segment, nothing reads
an absent block or a byte never received) and count the costs.

Data lives in two places per rank, as in the engine:

- ``stores[r]``: block id -> value (block steps; an :class:`ObjectStore`). A missing id is
  an *absent* block. Values are anything ``op`` combines: NumPy arrays, or symbolic tuples
  of ranks with ``op`` a concatenation to check the order in which operands meet. Values
  travel pickled, so a sent value is a copy.
- ``payloads[r]``: the whole payload (``Send(peer)``/``Recv(peer)``) and the buffer that byte
  segments (``Send(peer, offset, nbytes)``) are cut from (a :class:`BufferStore`); None
  where the rank has none yet: it gets a zero-filled buffer of the payloads' size, and
  segments never received are remembered, so forwarding one is reported.

:func:`simulate_plans` runs the real *plans* of one collective call (``plans.py``: the
layout of the user's buffers, the selected schedule) on every rank the same way.

Example::

    steps = [algo.steps(r, p, root, nbytes) for r in range(p)]
    stores = [{0: x[r]} for r in range(p)]
    counts = simulate(steps, stores, op=np.add)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection, Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..algorithms.schedule import LEFT, OVERWRITE, Combine, Recv, Send, Step
from ..errors import TreecastError
from ..transports.base import Call, PeerState
from ..transports.inproc import InprocWorld
from .store import BufferStore, ObjectStore, Store, Wait, execute, sent_ids

if TYPE_CHECKING:
    from ..plans import Caller, Plan

_CTX = 1
_TAG = 1


class SimulationError(TreecastError):
    """A schedule is wrong: mismatched messages, a deadlock, messages nobody receives, or a
    read of an absent block or payload. The message names the ranks and steps involved."""


@dataclass
class Counts:
    """What a simulated run cost.

    Attributes:
        messages: messages sent, all ranks together.
        bytes: bytes moved: segment and payload sizes, ``nbytes`` of array blocks (symbolic
            blocks count 0).
        blocks: block ids moved.
        rounds: messages on the critical path in the single-port model (a rank sends one
            message per round and may receive while it sends): the alpha term of the cost.
        time: the critical path with ``alpha + beta * bytes`` per message.
        max_sent: the most messages any one rank sent.
        inter_node: messages between ranks on different nodes (runs given ``nodes``).
    """

    messages: int = 0
    bytes: int = 0
    blocks: int = 0
    rounds: int = 0
    time: float = 0.0
    max_sent: int = 0
    inter_node: int = 0


def describe(step: Step) -> str:
    """A step in words, for error messages."""
    if isinstance(step, Send | Recv):
        verb = "Send to" if isinstance(step, Send) else "Recv from"
        if step.blocks:
            what = f"blocks {step.blocks}"
        elif step.nbytes >= 0:
            what = f"bytes {step.offset}..{step.offset + step.nbytes} ({step.nbytes})"
        else:
            what = "the whole payload"
        how = ""
        if isinstance(step, Recv) and step.reduce != OVERWRITE:
            how = " combining " + ("LEFT" if step.reduce == LEFT else "RIGHT")
        return f"{verb} rank {step.peer} of {what}{how}"
    if isinstance(step, Combine):
        side = "LEFT" if step.side == LEFT else "RIGHT"
        return f"Combine block {step.src} into {step.dst} {side}"
    return "WaitAll"


def _kind(step: Send | Recv) -> tuple[Any, ...]:
    if step.blocks:
        return ("blocks", step.blocks)
    if step.nbytes >= 0:
        return ("segment", step.offset, step.nbytes)
    return ("whole",)


def _size_of(value: Any) -> int:
    n = getattr(value, "nbytes", None)
    if isinstance(n, int):
        return n
    return len(value) if isinstance(value, bytes | bytearray) else 0


@dataclass
class _Sent:
    """What the tracker knows of a message in flight: the sender's step and its costs."""

    index: int
    step: Send
    hops: int
    arrival: float


class _Tracker:
    """The schedule's contract and the cost model, kept while the engine runs: the k-th
    send (receive, combine) a rank's store sees is its k-th Send (Recv, Combine) step."""

    def __init__(
        self,
        steps: list[tuple[Step, ...]],
        alpha: float,
        beta: float,
        renames: Collection[tuple[int, int]],
        nodes: Sequence[int] | None = None,
    ) -> None:
        self.steps = steps
        self.alpha, self.beta, self.renames = alpha, beta, renames
        self.nodes = nodes
        self.cursor = [{Send: 0, Recv: 0, Combine: 0} for _ in steps]
        self.flight: dict[tuple[int, int], deque[_Sent]] = {}
        self.hops = [0] * len(steps)
        self.clock = [0.0] * len(steps)
        self.sent = [0] * len(steps)
        self.counts = Counts()

    def next_step(self, rank: int, kind: type) -> tuple[int, Any]:
        """The index and step of ``rank``'s next step of ``kind`` (advancing past it)."""
        nxt = self.peek(rank, kind)
        if nxt is None:
            raise SimulationError(
                f"rank {rank}: the engine ran a {kind.__name__} the schedule lacks"
            )
        self.cursor[rank][kind] += 1
        return nxt

    def peek(self, rank: int, kind: type) -> tuple[int, Any] | None:
        """The index and step of ``rank``'s next step of ``kind``, or None."""
        seen = self.cursor[rank][kind]
        for i, step in enumerate(self.steps[rank]):
            if type(step) is kind:
                if not seen:
                    return i, step
                seen -= 1
        return None

    def fail(self, rank: int, index: int, message: str) -> SimulationError:
        return SimulationError(
            f"rank {rank}, step {index} ({describe(self.steps[rank][index])}): {message}"
        )

    def on_send(self, rank: int, index: int, step: Send, nbytes: int, nblocks: int) -> None:
        self.hops[rank] += 1
        self.clock[rank] += self.alpha + self.beta * nbytes
        self.flight.setdefault((rank, step.peer), deque()).append(
            _Sent(index, step, self.hops[rank], self.clock[rank])
        )
        self.counts.messages += 1
        self.counts.bytes += nbytes
        self.counts.blocks += nblocks
        self.sent[rank] += 1
        if self.nodes is not None and self.nodes[rank] != self.nodes[step.peer]:
            self.counts.inter_node += 1

    def mismatch(self, rank: int) -> SimulationError | None:
        """The disagreement between ``rank``'s next receive and the message waiting for it,
        if there is one."""
        nxt = self.peek(rank, Recv)
        if nxt is None:
            return None
        index, step = nxt
        queue = self.flight.get((step.peer, rank))
        if not queue:
            return None
        head = queue[0]
        if _kind(head.step) == _kind(step) or self._renamed(head.step, step):
            return None
        return self.fail(
            rank,
            index,
            f"the next message from rank {step.peer} is its step {head.index} "
            f"({describe(head.step)}); sender and receiver disagree",
        )

    def on_recv(self, rank: int) -> Recv:
        error = self.mismatch(rank)
        if error is not None:
            raise error
        _, step = self.next_step(rank, Recv)
        msg = self.flight[(step.peer, rank)].popleft()
        self.hops[rank] = max(self.hops[rank], msg.hops)
        self.clock[rank] = max(self.clock[rank], msg.arrival)
        return step

    def _renamed(self, sent: Send, step: Recv) -> bool:
        """Whether ``step`` receives ``sent``'s blocks under other ids that renames allow."""
        return (
            bool(sent.blocks)
            and len(sent.blocks) == len(step.blocks)
            and all(
                a == b or (a, b) in self.renames
                for a, b in zip(sent.blocks, step.blocks, strict=True)
            )
        )

    def left(self) -> list[str]:
        return [
            f"rank {src} -> rank {dst}: step {m.index} ({describe(m.step)})"
            for (src, dst), queue in sorted(self.flight.items())
            for m in queue
        ]


class _TrackedObjects(ObjectStore):
    """An :class:`ObjectStore` that reports each send, receive and combine to the tracker."""

    def __init__(self, tracker: _Tracker, rank: int, objects: dict[int, Any], op: Any) -> None:
        super().__init__(objects, op, where="simulate")
        self.tracker, self.rank = tracker, rank

    def pack(self, blocks: Sequence[int]) -> list[memoryview]:
        index, step = self.tracker.next_step(self.rank, Send)
        for b in blocks:
            if not self.has(b):
                held = sorted({*self.objects, *self.frames})
                raise self.tracker.fail(self.rank, index, f"block {b} is absent (held: {held})")
        size = sum(_size_of(self.get(b)) for b in blocks)
        self.tracker.on_send(self.rank, index, step, size, len(blocks))
        return super().pack(blocks)

    def deliver(
        self, step: Recv, blocks: Sequence[int], frames: list[memoryview], what: Any
    ) -> None:
        self.tracker.on_recv(self.rank)
        if step.reduce != OVERWRITE and self.op is None and any(self.has(b) for b in blocks):
            raise SimulationError("a reduction step ran but simulate() was given no op")
        super().deliver(step, blocks, frames, what)

    def combine(self, step: Combine) -> None:
        index, _ = self.tracker.next_step(self.rank, Combine)
        if not self.has(step.src):
            held = sorted({*self.objects, *self.frames})
            raise self.tracker.fail(self.rank, index, f"block {step.src} is absent (held: {held})")
        if self.has(step.dst) and self.op is None:
            raise SimulationError("a reduction step ran but simulate() was given no op")
        super().combine(step)


class _TrackedPayload(BufferStore):
    """A :class:`BufferStore` of one payload that remembers which bytes this rank holds."""

    def __init__(self, tracker: _Tracker, rank: int, data: bytearray, valid: bool) -> None:
        super().__init__([memoryview(data)], {0: (0, 0, len(data))})
        self.tracker, self.rank, self.data = tracker, rank, data
        self.valid = bytearray(b"\x01" if valid else b"\x00") * len(data)
        self.given = valid
        self.got = False

    def _check(self, index: int, lo: int, hi: int) -> None:
        if not self.given and not self.got:
            raise self.tracker.fail(self.rank, index, "this rank has no payload yet")
        if hi > len(self.data) or 0 in self.valid[lo:hi]:
            where = self.valid.index(0, lo) if 0 in self.valid[lo:hi] else hi
            raise self.tracker.fail(
                self.rank,
                index,
                f"byte {where} of the payload was never received (or lies past it)",
            )

    def pack(self, blocks: Sequence[int]) -> list[memoryview]:
        index, step = self.tracker.next_step(self.rank, Send)
        self._check(index, 0, len(self.data))
        self.tracker.on_send(self.rank, index, step, len(self.data), 0)
        return super().pack(blocks)

    def segment(self, offset: int, nbytes: int) -> memoryview:
        index, step = self.tracker.next_step(self.rank, Send)
        self._check(index, offset, offset + nbytes)
        self.tracker.on_send(self.rank, index, step, nbytes, 0)
        return super().segment(offset, nbytes)

    def target(self, step: Recv, blocks: Sequence[int]) -> memoryview | None:
        if step.nbytes >= 0:  # not through segment(), which counts sends
            self._in_place = True
            return self.view(0)[step.offset : step.offset + step.nbytes]
        return super().target(step, blocks)

    def deliver(
        self, step: Recv, blocks: Sequence[int], frames: list[memoryview], what: Any
    ) -> None:
        self.tracker.on_recv(self.rank)
        super().deliver(step, blocks, frames, what)
        lo, hi = (
            (step.offset, step.offset + step.nbytes) if step.nbytes >= 0 else (0, len(self.data))
        )
        self.valid[lo:hi] = b"\x01" * (hi - lo)
        self.got = True


def _check_peers(steps: list[tuple[Step, ...]], tracker: _Tracker) -> None:
    size = len(steps)
    for rank, mine in enumerate(steps):
        for i, step in enumerate(mine):
            if isinstance(step, Send | Recv) and (not 0 <= step.peer < size or step.peer == rank):
                raise tracker.fail(
                    rank, i, f"peer {step.peer} is not another rank of a size-{size} communicator"
                )


def simulate(
    steps: Sequence[Iterable[Step]],
    stores: Sequence[dict[int, Any]] | None = None,
    op: Callable[[Any, Any], Any] | None = None,
    payloads: list[bytes | bytearray | None] | None = None,
    *,
    alpha: float = 1.0,
    beta: float = 0.0,
    renames: Collection[tuple[int, int]] = (),
    faults: Callable[[InprocWorld], None] | None = None,
    nodes: Sequence[int] | None = None,
) -> Counts:
    """Run ``steps[r]`` for every rank ``r`` on the engine until all finish; update
    ``stores`` or ``payloads`` in place.

    Args:
        steps: each rank's steps (``len(steps)`` is the communicator size).
        stores: each rank's blocks, id -> value; modified in place. Default: empty.
        op: ``op(left, right) -> result`` for ``Recv(reduce=LEFT/RIGHT)`` and ``Combine``.
        payloads: each rank's whole payload / segment buffer, None where absent; entries
            are replaced in place. Given, the schedule moves payload bytes, not blocks.
        alpha: per-message cost in :attr:`Counts.time`.
        beta: per-byte cost in :attr:`Counts.time`.
        renames: pairs ``(sent id, received id)`` accepted besides equal ids, block by
            block: scan and exscan receive a partner's window (id 1) into scratch (id 2).
        faults: called with the in-process world before the run, to inject faults:
            ``world.kill(r)`` (rank ``r`` never runs: it died), ``world.drop(src, dst)``
            (a message that never arrives). The run then ends in a deadlock report that
            names the ranks waiting and the dead ones.
        nodes: the node of each rank: the run counts the messages between nodes
            (:attr:`Counts.inter_node`); the steps themselves must already be the ones
            for that layout.

    Returns:
        The :class:`Counts` of the run.

    Raises:
        SimulationError: a Recv meets a message with other blocks or another segment (both
            are named); a deadlock (every unfinished rank waits on a Recv with nothing
            queued: each rank and what it waits for is named); messages left unreceived at
            the end; a Send or Combine reads an absent block, payload or segment; a peer
            outside the communicator or equal to the rank; a reduction without ``op``.
    """
    plans = [tuple(s) for s in steps]
    size = len(plans)
    tracker = _Tracker(plans, alpha, beta, renames, nodes)
    _check_peers(plans, tracker)
    if payloads is not None or (
        stores is None
        and not any(isinstance(s, Send | Recv) and s.blocks for mine in plans for s in mine)
    ):
        given = payloads if payloads is not None else [None] * size
        n = max((len(p) for p in given if p is not None), default=0)
        made: list[Store] = [
            _TrackedPayload(tracker, r, bytearray(p if p is not None else bytes(n)), p is not None)
            for r, p in enumerate(given)
        ]
    else:
        blocks = stores if stores is not None else [{} for _ in range(size)]
        made = [_TrackedObjects(tracker, r, dict(b), op) for r, b in enumerate(blocks)]
    if len(made) != size:
        raise SimulationError(f"{size} ranks of steps but {len(made)} stores or payloads")
    world = InprocWorld(size, nodes)
    if faults is not None:
        faults(world)
    _drive(world, plans, made, tracker)
    _write_back(made, stores, payloads)
    counts = tracker.counts
    counts.rounds = max(tracker.hops, default=0)
    counts.time = max(tracker.clock, default=0.0)
    counts.max_sent = max(tracker.sent, default=0)
    return counts


def _write_back(
    made: list[Store],
    stores: Sequence[dict[int, Any]] | None,
    payloads: list[bytes | bytearray | None] | None,
) -> None:
    for r, store in enumerate(made):
        if isinstance(store, _TrackedObjects) and stores is not None:
            stores[r].clear()
            stores[r].update({b: store.get(b) for b in sorted({*store.objects, *store.frames})})
        elif (
            isinstance(store, _TrackedPayload)
            and payloads is not None
            and (store.given or store.got)
        ):
            payloads[r] = store.data


def _drive(
    world: InprocWorld, plans: list[tuple[Step, ...]], stores: list[Store], tracker: _Tracker
) -> None:
    """Run every rank's engine round-robin until all finish.

    Raises:
        SimulationError: deadlock, or messages left unreceived.
    """
    size = len(plans)
    group = tuple(range(size))
    gens: list[Generator[Wait, None, None] | None] = [
        execute(plans[r], world[r], group, _CTX, _TAG, stores[r], Call("simulate", "sim", _TAG, -1))
        for r in range(size)
    ]
    waiting: list[Wait | None] = [None] * size
    dead = [r for r in range(size) if world.states[r] is PeerState.DEAD]
    for r in dead:
        gens[r] = None
    while any(g is not None for g in gens):
        moved = False
        for r, gen in enumerate(gens):
            while gen is not None and (waiting[r] is None or waiting[r].done):  # type: ignore[union-attr]
                moved = True
                try:
                    waiting[r] = next(gen)
                except StopIteration:
                    gens[r] = gen = None
                except SimulationError:
                    raise
                except TreecastError as exc:
                    raise tracker.mismatch(r) or SimulationError(
                        f"rank {r}: the engine raised {type(exc).__name__}: {exc}"
                    ) from exc
        if not world.progress() and not moved:
            raise _deadlock(gens, tracker, dead)
    left = tracker.left() or _unreceived(world)
    if left:
        died = f" (rank(s) {', '.join(map(str, dead))} died)" if dead else ""
        raise SimulationError("messages never received: " + "; ".join(left) + died)


def _unreceived(world: InprocWorld) -> list[str]:
    """Messages still queued for, or unexpected at, a live rank once every rank has finished
    (read from the queues: no matching, and closed ranks count too)."""
    out = []
    for t in world:
        if world.states[t.rank] is PeerState.DEAD:
            continue
        for src, inbox in enumerate(t._inbox):
            out += [
                f"rank {src} -> rank {t.rank}: a message of {sum(f.nbytes for f in m.frames)} bytes"
                for m in inbox
            ]
        out += [
            f"rank {m.src} -> rank {t.rank}: a message of {m.nbytes} bytes" for m in t._unexpected
        ]
    return out


def _deadlock(gens: list[Any], tracker: _Tracker, dead: list[int]) -> SimulationError:
    waits = []
    for r, gen in enumerate(gens):
        if gen is None:
            continue
        error = tracker.mismatch(r)
        if error is not None:
            return error
        nxt = tracker.peek(r, Recv)
        what = f"waits to {describe(nxt[1])}" if nxt else "waits for its sends"
        waits.append(f"rank {r} at step {nxt[0] if nxt else '?'} {what}")
    died = f" (rank(s) {', '.join(map(str, dead))} died)" if dead else ""
    return SimulationError("deadlock: " + "; ".join(waits) + died)


@dataclass
class Simulation:
    """The outcome of :func:`simulate_plans`: each rank's result and what the run cost."""

    results: list[Any]
    counts: Counts


def simulate_plans(
    size: int,
    plan_of: Callable[[Caller], Plan],
    name: str,
    *,
    faults: Callable[[InprocWorld], None] | None = None,
    nodes: Sequence[int] | None = None,
) -> Simulation:
    """Run one collective call on ``size`` ranks: ``plan_of(caller)`` makes each rank's plan
    with the real planning functions (``plans.py``: the layout of the rank's buffers, the
    selected algorithm), and the plans' schedules run on the engine as in :func:`simulate`.
    ``name`` is the call's name; its ``I*`` form is planned (the schedule every rank runs:
    a node-level algorithm runs its logical schedule). ``faults`` as in :func:`simulate`.
    ``nodes``: the node of each rank, as a communicator on ``InprocWorld(size, nodes)``
    sees it (its callers get the layout, renumbered, or None when all share one node; the
    selector sees how many nodes it spans). Messages left unreceived are reported; the
    plans' stores are the engine's own, so block-level disagreements show as the engine's
    errors.

    Returns:
        Every rank's result (``plan.result()``) and the :class:`Counts` (messages, bytes,
        max_sent and, given ``nodes``, inter_node; rounds and time need the step-level
        :func:`simulate`).

    Raises:
        SimulationError: as :func:`simulate`; also the engine's errors, wrapped.
        InvalidArgumentError: ``nodes`` is not ``size`` ints >= 0.
    """
    from ..plans import Caller, nonblocking_name

    if not name.startswith(("i", "I")):  # plan the I* form: its schedule is what runs
        name = nonblocking_name(name)
    world_nodes = None if nodes is None else tuple(nodes)
    layout = None
    if world_nodes is not None:
        # as a communicator numbers them (comm.node_facts): in order of first appearance
        number: dict[int, int] = {}
        layout = tuple(number.setdefault(n, len(number)) for n in world_nodes)
        if len(number) < 2:
            layout = None
    callers = [Caller(r, size, name, None, layout) for r in range(size)]
    made = [plan_of(c) for c in callers]
    steps = [plan.steps(c) for c, plan in zip(callers, made, strict=True)]
    tracker = _Tracker(steps, 1.0, 0.0, ())
    world = _CountingWorld(size, tracker, world_nodes)
    if faults is not None:
        faults(world)
    for r, plan in enumerate(made):
        if isinstance(plan.store, ObjectStore):
            # as Collectives._run_steps: what cannot be pickled goes as a marker
            plan.store.rank = r
            plan.store.freeze(sent_ids(steps[r]))
    _drive(world, steps, [p.store for p in made], tracker)
    counts = tracker.counts
    counts.max_sent = max(tracker.sent, default=0)
    return Simulation([p.result() for p in made], counts)


class _CountingWorld(InprocWorld):
    """An :class:`InprocWorld` that counts messages and bytes (the plans' stores are the
    engine's own, so the critical path is not followed: use :func:`simulate` for rounds)."""

    def __init__(self, size: int, tracker: _Tracker, nodes: tuple[int, ...] | None) -> None:
        super().__init__(size, nodes)
        self.tracker = tracker

    def _post(self, src: int, dst: int, msg: Any) -> None:
        counts = self.tracker.counts
        counts.messages += 1
        counts.bytes += sum(f.nbytes for f in msg.frames)
        if self.nodes is not None and self.nodes[src] != self.nodes[dst]:
            counts.inter_node += 1
        self.tracker.sent[src] += 1
        super()._post(src, dst, msg)
