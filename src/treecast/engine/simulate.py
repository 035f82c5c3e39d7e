"""Run every rank's schedule in one process: for tests, and to count what a schedule costs
at sizes this machine cannot run.

:func:`simulate` interprets the steps of ``algorithms/schedule.py`` the way the real
engines do, round-robin over the ranks, with one FIFO queue per ordered pair of ranks (MPI's
non-overtaking order). Sends are eager: the values are copied when the send is posted, which
matches the real engine, since it never overwrites a block that a send in flight still reads.

Data lives in two places per rank, as in the engines:

- ``stores[r]``: block id -> value (block steps). A missing id is an *absent* block. Values
  are anything ``op`` combines: NumPy arrays, or symbolic tuples of ranks with ``op`` a
  concatenation to check the order in which operands meet.
- ``payloads[r]``: the whole payload (``Send(peer)``/``Recv(peer)``) and the buffer that byte
  segments (``Send(peer, offset, nbytes)``) are cut from; None when the rank has none yet.
  A rank that receives a segment without a payload gets a zero-filled ``bytearray`` grown as
  needed. Segments never received are remembered, so forwarding one is reported.

Example::

    steps = [algo.steps(r, p, root, nbytes) for r in range(p)]
    stores = [{0: x[r]} for r in range(p)]
    counts = simulate(steps, stores, op=np.add)
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..algorithms.schedule import LEFT, OVERWRITE, RIGHT, Combine, Recv, Send, Step, WaitAll
from ..errors import TreecastError


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
    """

    messages: int = 0
    bytes: int = 0
    blocks: int = 0
    rounds: int = 0
    time: float = 0.0
    max_sent: int = 0


@dataclass
class _Message:
    step: Send
    index: int
    data: Any
    hops: int
    arrival: float


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


def _renamed(sent: Send, step: Recv, renames: Collection[tuple[int, int]]) -> bool:
    """Whether ``step`` receives ``sent``'s blocks under other ids that ``renames`` allows."""
    return (
        bool(sent.blocks)
        and len(sent.blocks) == len(step.blocks)
        and all(a == b or (a, b) in renames for a, b in zip(sent.blocks, step.blocks, strict=True))
    )


def _size_of(value: Any) -> int:
    n = getattr(value, "nbytes", None)
    if isinstance(n, int):
        return n
    return len(value) if isinstance(value, bytes | bytearray) else 0


def _combine(op: Callable[[Any, Any], Any] | None, incoming: Any, local: Any, side: int) -> Any:
    if op is None:
        raise SimulationError("a reduction step ran but simulate() was given no op")
    return op(incoming, local) if side == LEFT else op(local, incoming)


def simulate(
    steps: Sequence[Iterable[Step]],
    stores: Sequence[dict[int, Any]] | None = None,
    op: Callable[[Any, Any], Any] | None = None,
    payloads: list[bytes | bytearray | None] | None = None,
    *,
    alpha: float = 1.0,
    beta: float = 0.0,
    renames: Collection[tuple[int, int]] = (),
) -> Counts:
    """Run ``steps[r]`` for every rank ``r`` until all finish; update ``stores`` and
    ``payloads`` in place.

    Args:
        steps: each rank's steps (``len(steps)`` is the communicator size).
        stores: each rank's blocks, id -> value; modified in place. Default: empty.
        op: ``op(left, right) -> result`` for ``Recv(reduce=LEFT/RIGHT)`` and ``Combine``.
        payloads: each rank's whole payload / segment buffer, None where absent; entries
            are replaced or filled in place. Default: all None.
        alpha: per-message cost in :attr:`Counts.time`.
        beta: per-byte cost in :attr:`Counts.time`.
        renames: pairs ``(sent id, received id)`` accepted besides equal ids, block by
            block: scan and exscan receive a partner's window (id 1) into scratch (id 2).

    Returns:
        The :class:`Counts` of the run.

    Raises:
        SimulationError: a Recv meets a message with other blocks or another segment (both
            are named); a deadlock (every unfinished rank waits on a Recv with nothing
            queued: each rank and what it waits for is named); messages left unreceived at
            the end; a Send or Combine reads an absent block, payload or segment; a peer
            outside the communicator or equal to the rank; a reduction without ``op``.
    """
    size = len(steps)
    plans = [list(s) for s in steps]
    store = list(stores) if stores is not None else [{} for _ in range(size)]
    payload: list[bytes | bytearray | None] = payloads if payloads is not None else [None] * size
    if len(store) != size or len(payload) != size:
        raise SimulationError(
            f"{size} ranks of steps but {len(store)} stores and {len(payload)} payloads"
        )
    valid: list[bytearray | None] = [
        None if p is None else bytearray(b"\x01") * len(p) for p in payload
    ]
    queues: dict[tuple[int, int], deque[_Message]] = {}
    pc = [0] * size
    hops = [0] * size
    clock = [0.0] * size
    sent = [0] * size
    counts = Counts()

    def fail(rank: int, message: str) -> SimulationError:
        return SimulationError(
            f"rank {rank}, step {pc[rank]} ({describe(plans[rank][pc[rank]])}): {message}"
        )

    def check_peer(rank: int, peer: int) -> None:
        if not 0 <= peer < size or peer == rank:
            raise fail(rank, f"peer {peer} is not another rank of a size-{size} communicator")

    def read(rank: int, step: Send) -> tuple[Any, int, int]:
        """The data a send carries, its byte size and its block count."""
        if step.blocks:
            values = []
            for b in step.blocks:
                if b not in store[rank]:
                    raise fail(rank, f"block {b} is absent (held: {sorted(store[rank])})")
                values.append(copy.copy(store[rank][b]))
            return tuple(values), sum(_size_of(v) for v in values), len(values)
        data = payload[rank]
        mask = valid[rank]
        if data is None or mask is None:
            raise fail(rank, "this rank has no payload yet")
        if step.nbytes < 0:
            if 0 in mask:
                raise fail(rank, f"byte {mask.index(0)} of the payload was never received")
            return bytes(data), len(data), 0
        end = step.offset + step.nbytes
        if end > len(data) or 0 in mask[step.offset : end]:
            raise fail(rank, "the segment was never received (or lies past the payload)")
        return bytes(data[step.offset : end]), step.nbytes, 0

    def write(rank: int, step: Recv, data: Any) -> None:
        if step.blocks:
            blocks = store[rank]
            for b, value in zip(step.blocks, data, strict=True):
                if step.reduce == OVERWRITE or b not in blocks:
                    blocks[b] = value
                else:
                    blocks[b] = _combine(op, value, blocks[b], step.reduce)
            return
        if step.nbytes < 0:
            payload[rank] = bytearray(data)
            valid[rank] = bytearray(b"\x01") * len(data)
            return
        end = step.offset + step.nbytes
        buf, mask = payload[rank], valid[rank]
        if buf is None or mask is None:
            buf, mask = bytearray(), bytearray()
        if not isinstance(buf, bytearray):
            buf = bytearray(buf)
        if len(buf) < end:
            mask.extend(bytes(end - len(buf)))
            buf.extend(bytes(end - len(buf)))
        buf[step.offset : end] = data
        mask[step.offset : end] = b"\x01" * step.nbytes
        payload[rank], valid[rank] = buf, mask

    def advance(rank: int) -> bool:
        """Run ``rank`` until it blocks or ends; whether it made progress."""
        plan = plans[rank]
        start = pc[rank]
        while pc[rank] < len(plan):
            step = plan[pc[rank]]
            if type(step) is Send:
                check_peer(rank, step.peer)
                data, nbytes, nblocks = read(rank, step)
                hops[rank] += 1
                clock[rank] += alpha + beta * nbytes
                queues.setdefault((rank, step.peer), deque()).append(
                    _Message(step, pc[rank], data, hops[rank], clock[rank])
                )
                counts.messages += 1
                counts.bytes += nbytes
                counts.blocks += nblocks
                sent[rank] += 1
            elif type(step) is Recv:
                check_peer(rank, step.peer)
                queue = queues.get((step.peer, rank))
                if not queue:
                    break
                msg = queue[0]
                if _kind(msg.step) != _kind(step) and not _renamed(msg.step, step, renames):
                    raise fail(
                        rank,
                        f"the next message from rank {step.peer} is its step {msg.index} "
                        f"({describe(msg.step)}); sender and receiver disagree",
                    )
                queue.popleft()
                hops[rank] = max(hops[rank], msg.hops)
                clock[rank] = max(clock[rank], msg.arrival)
                write(rank, step, msg.data)
            elif type(step) is Combine:
                blocks = store[rank]
                if step.src not in blocks:
                    raise fail(rank, f"block {step.src} is absent (held: {sorted(blocks)})")
                if step.dst not in blocks:
                    blocks[step.dst] = copy.copy(blocks[step.src])
                else:
                    if step.side not in (LEFT, RIGHT):
                        raise fail(rank, f"unknown side {step.side}")
                    blocks[step.dst] = _combine(op, blocks[step.src], blocks[step.dst], step.side)
            elif type(step) is not WaitAll:
                raise fail(rank, f"unknown step {step!r}")
            pc[rank] += 1
        return pc[rank] != start

    unfinished = [r for r in range(size) if plans[r]]
    while unfinished:
        progress = False
        for rank in unfinished:
            progress |= advance(rank)
        unfinished = [r for r in unfinished if pc[r] < len(plans[r])]
        if unfinished and not progress:
            waits = "; ".join(
                f"rank {r} at step {pc[r]} waits to {describe(plans[r][pc[r]])}" for r in unfinished
            )
            raise SimulationError(f"deadlock: {waits}")
    left = [
        f"rank {src} -> rank {dst}: step {m.index} ({describe(m.step)})"
        for (src, dst), queue in sorted(queues.items())
        for m in queue
    ]
    if left:
        raise SimulationError("messages never received: " + "; ".join(left))
    counts.rounds = max(hops, default=0)
    counts.time = max(clock, default=0.0)
    counts.max_sent = max(sent, default=0)
    return counts
