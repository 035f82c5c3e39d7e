"""Planning a collective call: pure functions from the call's arguments to a :class:`Plan`.

A plan is what one rank runs for one collective call: the block store the schedule moves
(``engine/store.py``), the selected algorithm, and ``result()`` for after the run. Every
function here takes a :class:`Caller` (the few facts of the communicator that planning
needs: rank, size, the call's name, the transport's capabilities, the node of each rank)
and the user's arguments, validates them all (so that a bad argument raises before anything
is sent), and touches no transport: tests build any rank's plan without processes, and the
simulator runs the plans of every rank through the real engine.

Each public plan function has the signature of its collective without ``timeout`` (the
communicator adds it to the blocking form), and its docstring is the collective's.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from .algorithms.hierarchical import node_count
from .algorithms.registry import Algorithm
from .algorithms.schedule import Combine, Recv, Step
from .constants import IN_PLACE
from .engine.store import BufferStore, ObjectStore, Store
from .errors import InvalidArgumentError, InvalidArgumentTypeError, InvalidRootError
from .message.buffers import array_bytes as _bytes
from .message.buffers import as_array, vector_spec
from .ops import SUM, Op, resolve_op
from .selection.rules import select

Layout = dict[int, tuple[int, int, int]]
"""Block id -> (base index, byte offset, byte count) in a :class:`BufferStore`."""


_NO_BLOCKS = BufferStore([], {})
"""The store of a plan that has none yet (a node-level call never gets one: it runs on the
communicator's node memory, not on the engine)."""


class Caller(NamedTuple):
    """The communicator's facts that planning a call needs.

    Attributes:
        rank: this rank in the communicator.
        size: the communicator's size.
        name: the call as made (``"Gather"``, ``"Igather"``): error messages and signatures.
        capabilities: what the communicator's transport offers: the selector never picks
            an algorithm that needs more (None: not known, nothing is filtered).
        nodes: the node of each rank (the communicator's ``_nodes``), None when all its
            ranks share one node: the selector's ``nodes_ge`` fact and the two-level
            schedules' layout.
    """

    rank: int
    size: int
    name: str
    capabilities: frozenset[str] | None = None
    nodes: tuple[int, ...] | None = None


class NodeCall(NamedTuple):
    """A node-level algorithm's part of a plan: it runs through the communicator's node
    memory instead of a schedule (``kind`` names the node-level operation, ``args`` are its
    buffers and operator)."""

    kind: str
    args: tuple[Any, ...]


@dataclass
class Plan:
    """What one rank runs for one collective call.

    Attributes:
        name: the call (its signature in every message).
        algo: the selected algorithm.
        store: the blocks the schedule moves.
        result: the call's result, once the schedule has run.
        root: the root of a rooted collective, else -1.
        nbytes: the payload size the algorithm was selected by (-1: unknown, objects).
        commutative: whether the operator may be applied out of rank order.
        dtype: the buffer's element type (debug checks).
        check_bytes: the bytes every rank must agree on (debug checks; -1: none).
        node: a node-level algorithm's call, run instead of a schedule.
    """

    name: str
    algo: Algorithm
    store: Store
    result: Callable[[], Any] = field(default=lambda: None)
    root: int = -1
    nbytes: int = -1
    commutative: bool = True
    dtype: Any = None
    check_bytes: int = -1
    node: NodeCall | None = None

    def steps(self, caller: Caller) -> tuple[Step, ...]:
        """This rank's steps of the plan's algorithm."""
        return self.algo.steps(
            caller.rank,
            caller.size,
            max(self.root, 0),
            self.nbytes,
            self.commutative,
            caller.nodes,
        )


# ---- argument checks ------------------------------------------------------------------------
def as_int(value: Any, name: str, op: str) -> int:
    """``value`` as an int (any ``__index__``, not bool).

    Raises:
        InvalidArgumentTypeError: naming ``op``, ``name`` and the value.
    """
    if isinstance(value, bool):
        raise InvalidArgumentTypeError(f"{op}: {name} must be an int, got bool {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise InvalidArgumentTypeError(
            f"{op}: {name} must be an int, got {type(value).__name__} {value!r}"
        ) from None


def nonblocking_name(name: str) -> str:
    """``gather`` -> ``igather``, ``Gather`` -> ``Igather`` (mpi4py's names)."""
    return "I" + name[0].lower() + name[1:] if name[0].isupper() else "i" + name


def check_root(c: Caller, root: Any) -> int:
    """``root`` as a valid rank of the communicator.

    Raises:
        InvalidArgumentTypeError: not an int.
        InvalidRootError: out of range.
    """
    if type(root) is int and 0 <= root < c.size:
        return root
    r = as_int(root, "root", c.name)
    if not 0 <= r < c.size:
        raise InvalidRootError(
            f"{c.name}: root={r} is not a valid rank; expected 0 <= root < {c.size}"
        )
    return r


def items_of(c: Caller, seq: Any) -> list[Any]:
    """``seq`` as a list of exactly ``size`` items (scatter, alltoall).

    Raises:
        InvalidArgumentTypeError: not a sequence.
        InvalidArgumentError: not ``size`` items.
    """
    if isinstance(seq, (str, bytes)) or not hasattr(seq, "__iter__"):
        raise InvalidArgumentTypeError(
            f"{c.name}: expected a sequence of {c.size} items, got {type(seq).__name__}"
        )
    items = list(seq)
    if len(items) != c.size:
        raise InvalidArgumentError(
            f"{c.name}: expected a sequence of {c.size} items (one per rank), got {len(items)}"
        )
    return items


def same_dtype(a: np.ndarray, b: np.ndarray, what: str) -> None:
    """Raises InvalidArgumentError if the send and receive buffers' dtypes differ."""
    if a.dtype != b.dtype:
        raise InvalidArgumentError(
            f"{what}: send buffer has dtype {a.dtype} but receive buffer has dtype {b.dtype}; "
            "they must match"
        )


def algorithm_for(
    c: Caller,
    family: str,
    nbytes: int,
    forced: str | None,
    *,
    commutative: bool = True,
    buffer: bool = True,
) -> Algorithm:
    """The algorithm the rule table (or ``forced``) picks for this call."""
    return select(
        family,
        c.size,
        nbytes,
        commutative=commutative,
        buffer=buffer,
        forced=forced,
        capabilities=c.capabilities,
        nodes=1 if c.nodes is None else node_count(c.nodes),
    )


# ---- layouts ----------------------------------------------------------------------------------
def ids_of(steps: Iterable[Step]) -> set[int]:
    """Every block id a schedule touches."""
    out: set[int] = set()
    for s in steps:
        if type(s) is Combine:
            out.update((s.src, s.dst))
        else:
            out.update(s.blocks)  # type: ignore[union-attr]
    return out


def writes(steps: Iterable[Step]) -> bool:
    """Whether a schedule writes into its store (receives or combines)."""
    return any(type(s) is Recv or type(s) is Combine for s in steps)


def layout_with_temp(
    ids: Iterable[int],
    fixed: Layout,
    size_of: Callable[[int], int],
    bases: list[memoryview],
) -> Layout:
    """``fixed`` plus, for the other ``ids``, back-to-back ranges of one new temporary base."""
    layout: Layout = dict(fixed)
    rest = sorted(b for b in ids if b not in fixed)
    if rest:
        total = sum(size_of(b) for b in rest)
        bases.append(memoryview(np.empty(total, np.uint8)).cast("B"))  # type: ignore[arg-type]
        pos = 0
        for b in rest:
            n = size_of(b)
            layout[b] = (len(bases) - 1, pos, n)
            pos += n
    return layout


def chunks(count: int, c: int, itemsize: int, base: int = 0) -> Layout:
    """Chunk ``i`` of ``c``: ``count // c + (i < count % c)`` items, in order."""
    layout: Layout = {}
    q, r = divmod(count, c)
    pos = 0
    for i in range(c):
        n = (q + (i < r)) * itemsize
        layout[i] = (base, pos, n)
        pos += n
    return layout


def _with_temp_blocks(
    c: Caller, plan: Plan, fixed: Layout, bases: list[memoryview], blk: int
) -> None:
    """Give ``plan`` a store whose blocks outside ``fixed`` (those its steps forward) live in
    a compact temporary of ``blk`` bytes each."""
    layout = layout_with_temp(ids_of(plan.steps(c)), fixed, lambda b: blk, bases)
    plan.store = BufferStore(bases, layout)


# ---- barrier and broadcast --------------------------------------------------------------------
def plan_barrier(c: Caller) -> Plan:
    """Block until every rank of the communicator has called ``barrier`` (dissemination)."""
    store = BufferStore([memoryview(bytearray())], {0: (0, 0, 0)})
    return Plan(c.name, algorithm_for(c, "barrier", 0, None), store)


def plan_bcast(c: Caller, obj: Any = None, root: int = 0, *, algorithm: str | None = None) -> Plan:
    """Broadcast ``obj`` from ``root``; every rank gets the root's object.

    Raises:
        InvalidRankError: bad ``root``.
        InvalidArgumentError: unknown ``algorithm``.
    """
    root = check_root(c, root)
    store = ObjectStore({0: obj} if c.rank == root else {}, where=c.name)
    algo = algorithm_for(c, "bcast", -1, algorithm, buffer=False)
    return Plan(c.name, algo, store, lambda: store.get(0), root)


def plan_Bcast(c: Caller, buf: Any, root: int = 0, *, algorithm: str | None = None) -> Plan:
    """Broadcast the contents of ``buf`` at ``root`` into ``buf`` on every other rank.

    Args:
        buf: NumPy array, buffer-protocol object or ``[buf, datatype]`` spec.
        root: the rank whose buffer is sent.
        algorithm: force an algorithm (``treecast algorithms`` lists them); default
            ``TREECAST_BCAST_ALGORITHM`` or the rule table.

    Raises:
        InvalidRankError: bad ``root``.
        InvalidBufferError: ``buf`` is not a (writable, off the root) contiguous buffer.
        InvalidArgumentError: ranks passed buffers of different sizes; unknown algorithm.
    """
    root = check_root(c, root)
    arr = as_array(buf, f"{c.name} buf", writable=c.rank != root)
    view = _bytes(arr)
    algo = algorithm_for(c, "bcast", view.nbytes, algorithm)
    store = BufferStore([view], {0: (0, 0, view.nbytes)})
    plan = Plan(c.name, algo, store, root=root, nbytes=view.nbytes, dtype=arr.dtype)
    plan.check_bytes = view.nbytes
    blocking = c.size > 1 and not c.name.startswith("I")
    if blocking and (algo.node_level or (algorithm is None and node_stage(c.nodes, view.nbytes))):
        plan.node = NodeCall("bcast", ([view],))
    return plan


NODE_STAGE_MIN = 32 * 1024
"""Broadcasts of at least this many buffer bytes on a communicator that spans nodes go in
two stages: among the node leaders, then through each node's arena (the rule table's
switch to ``shm_one_write`` on one node)."""


NODE_STAGE_RANKS = 3
"""...and a node holds at least this many of the communicator's ranks: with two per node
the leader's one message to the other rank beat the arena (4 ranks, 2 nodes, 16-256 MiB:
0.85-1.11x MPICH's Bcast against 1.5-1.7x); with three the arena won (6 ranks, 64 MiB:
0.81x against 0.97x)."""


def node_stage(nodes: tuple[int, ...] | None, nbytes: int) -> bool:
    """Whether a broadcast of ``nbytes`` buffer bytes on a communicator of layout ``nodes``
    goes among the node leaders, then through each node's arena: it spans nodes, the bytes
    are many and some node holds :data:`NODE_STAGE_RANKS` of its ranks (the leaders' own
    communicator, one rank per node, always runs a schedule)."""
    if nodes is None or nbytes < NODE_STAGE_MIN:
        return False
    return max(nodes.count(n) for n in set(nodes)) >= NODE_STAGE_RANKS


# ---- block collectives, objects -----------------------------------------------------------------
def plan_gather(c: Caller, sendobj: Any, root: int = 0, *, algorithm: str | None = None) -> Plan:
    """Collect every rank's object at ``root``.

    Returns:
        At the root, the list of objects in rank order; elsewhere None.

    Raises:
        InvalidRankError: bad ``root``.
        SerializationError: ``sendobj`` cannot be pickled.
    """
    root = check_root(c, root)
    store = ObjectStore({c.rank: sendobj}, where=c.name)
    size, at_root = c.size, c.rank == root

    def result() -> list[Any] | None:
        return [store.get(b) for b in range(size)] if at_root else None

    return Plan(
        c.name, algorithm_for(c, "gather", -1, algorithm, buffer=False), store, result, root
    )


def plan_scatter(
    c: Caller, sendobj: Any = None, root: int = 0, *, algorithm: str | None = None
) -> Plan:
    """Send item ``i`` of the root's sequence to rank ``i``; return mine.

    Raises:
        InvalidRankError: bad ``root``.
        InvalidArgumentError: at the root, ``sendobj`` does not have exactly ``size`` items.
        SerializationError: at the root, an item cannot be pickled.
    """
    root = check_root(c, root)
    objects = dict(enumerate(items_of(c, sendobj))) if c.rank == root else {}
    store = ObjectStore(objects, where=c.name)
    algo = algorithm_for(c, "scatter", -1, algorithm, buffer=False)
    me = c.rank
    return Plan(c.name, algo, store, lambda: store.get(me), root)


def plan_allgather(c: Caller, sendobj: Any, *, algorithm: str | None = None) -> Plan:
    """Every rank's object, in rank order, on every rank.

    Raises:
        SerializationError: ``sendobj`` cannot be pickled.
        InvalidArgumentError: unknown ``algorithm``.
    """
    store = ObjectStore({c.rank: sendobj}, where=c.name)
    size = c.size
    algo = algorithm_for(c, "allgather", -1, algorithm, buffer=False)
    return Plan(c.name, algo, store, lambda: [store.get(b) for b in range(size)])


def plan_alltoall(c: Caller, sendobj: Any, *, algorithm: str | None = None) -> Plan:
    """Send item ``i`` of my sequence to rank ``i``; return the items sent to me, in rank
    order.

    Raises:
        InvalidArgumentError: ``sendobj`` does not have exactly ``size`` items.
        SerializationError: an item cannot be pickled.
    """
    p, r = c.size, c.rank
    items = items_of(c, sendobj)
    store = ObjectStore({r * p + d: x for d, x in enumerate(items)}, where=c.name)
    algo = algorithm_for(c, "alltoall", -1, algorithm, buffer=False)
    return Plan(c.name, algo, store, lambda: [store.get(s * p + r) for s in range(p)])


# ---- reductions, objects --------------------------------------------------------------------------
def _plan_reduce_obj(
    c: Caller, family: str, sendobj: Any, op: Any, root: int, algorithm: str | None
) -> Plan:
    if family == "reduce":
        root = check_root(c, root)
    the_op = resolve_op(op, c.name)
    # Python's + on lists and str is not commutative even where MPI's SUM is: objects
    # always combine in rank order (costs at most one hop, for a root other than 0)
    algo = algorithm_for(c, family, -1, algorithm, commutative=False, buffer=False)
    if family == "scan":
        objects = {0: sendobj, 1: sendobj}
    elif family == "exscan":
        objects = {1: sendobj}
    else:
        objects = {0: sendobj}
    store = ObjectStore(objects, the_op, where=c.name)
    gets_result = family != "reduce" or c.rank == root

    def result() -> Any:
        return store.get(0) if gets_result and store.has(0) else None

    return Plan(c.name, algo, store, result, root=root, commutative=False)


def plan_reduce(
    c: Caller, sendobj: Any, op: Op = SUM, root: int = 0, *, algorithm: str | None = None
) -> Plan:
    """Combine every rank's object with ``op`` in rank order; the root returns the result,
    the other ranks None.

    Raises:
        InvalidRankError: bad ``root``.
        InvalidArgumentTypeError: ``op`` is not an operator.
        SerializationError: ``sendobj`` cannot be pickled.
    """
    return _plan_reduce_obj(c, "reduce", sendobj, op, root, algorithm)


def plan_allreduce(c: Caller, sendobj: Any, op: Op = SUM, *, algorithm: str | None = None) -> Plan:
    """Combine every rank's object with ``op`` in rank order; every rank returns the result.

    Raises:
        InvalidArgumentTypeError: ``op`` is not an operator.
        SerializationError: ``sendobj`` cannot be pickled.
    """
    return _plan_reduce_obj(c, "allreduce", sendobj, op, -1, algorithm)


def plan_scan(c: Caller, sendobj: Any, op: Op = SUM, *, algorithm: str | None = None) -> Plan:
    """Inclusive prefix reduction: rank ``i`` returns ``x0 op x1 op ... op xi``.

    Raises:
        InvalidArgumentTypeError: ``op`` is not an operator.
        SerializationError: ``sendobj`` cannot be pickled.
    """
    return _plan_reduce_obj(c, "scan", sendobj, op, -1, algorithm)


def plan_exscan(c: Caller, sendobj: Any, op: Op = SUM, *, algorithm: str | None = None) -> Plan:
    """Exclusive prefix reduction: rank ``i`` returns ``x0 op ... op x(i-1)``; rank 0 None.

    Raises:
        InvalidArgumentTypeError: ``op`` is not an operator.
        SerializationError: ``sendobj`` cannot be pickled.
    """
    return _plan_reduce_obj(c, "exscan", sendobj, op, -1, algorithm)


# ---- block collectives, buffers --------------------------------------------------------------------
class _Blocks(NamedTuple):
    """The root's full buffer of a rooted block collective, cut into per-rank blocks."""

    arr: np.ndarray
    counts: tuple[int, ...]
    displs: tuple[int, ...]


def _even_blocks(arr: np.ndarray, p: int) -> _Blocks:
    n = arr.size // p
    return _Blocks(arr, (n,) * p, tuple(i * n for i in range(p)))


def _root_layout(blocks: _Blocks) -> Layout:
    isz = blocks.arr.dtype.itemsize
    return {
        b: (0, d * isz, n * isz)
        for b, (n, d) in enumerate(zip(blocks.counts, blocks.displs, strict=True))
    }


def _in_place_at_root(c: Caller, buf: Any, at_root: bool) -> bool:
    """Whether ``buf`` (the root's own send or receive side) is IN_PLACE; None means
    IN_PLACE at the root (mpi4py).

    Raises:
        InvalidArgumentError: IN_PLACE off the root.
    """
    if not at_root and buf is IN_PLACE:
        raise InvalidArgumentError(f"{c.name}: IN_PLACE is only valid at the root")
    return at_root and (buf is IN_PLACE or buf is None)


def _gather_root_blocks(c: Caller, send: np.ndarray | None, recvbuf: Any, vector: bool) -> _Blocks:
    p, me = c.size, c.rank
    if vector:
        return _Blocks(*vector_spec(recvbuf, f"{c.name} recvbuf", p, writable=True))
    rarr = as_array(recvbuf, f"{c.name} recvbuf", writable=True, blocks=p)
    if send is not None and rarr.size < send.size * p:
        raise InvalidArgumentError(
            f"{c.name}: receive buffer holds {rarr.size} items; {p} ranks x {send.size} "
            f"items need {send.size * p}"
        )
    if send is None and rarr.size % p:
        raise InvalidArgumentError(
            f"{c.name}: with IN_PLACE the receive buffer's {rarr.size} items must "
            f"split evenly over {p} ranks"
        )
    if send is None:
        return _even_blocks(rarr, p)
    n = send.size
    del me
    return _Blocks(rarr, (n,) * p, tuple(i * n for i in range(p)))


def _plan_Gather(
    c: Caller, sendbuf: Any, recvbuf: Any, root: Any, algorithm: str | None, vector: bool
) -> Plan:
    root = check_root(c, root)
    me, at_root = c.rank, c.rank == root
    in_place = _in_place_at_root(c, sendbuf, at_root)
    send = None if in_place else as_array(sendbuf, f"{c.name} sendbuf")
    if at_root:
        rb = _gather_root_blocks(c, send, recvbuf, vector)
        if send is not None:
            same_dtype(send, rb.arr, c.name)
            if send.size != rb.counts[me]:
                raise InvalidArgumentError(
                    f"{c.name}: the root sends {send.size} items but its own receive count "
                    f"is {rb.counts[me]}"
                )
            rb.arr[rb.displs[me] : rb.displs[me] + rb.counts[me]] = send
        bases, fixed = [_bytes(rb.arr)], _root_layout(rb)
        dtype, blk = rb.arr.dtype, rb.counts[me] * rb.arr.dtype.itemsize
    else:
        assert send is not None
        bases, fixed = [_bytes(send)], {me: (0, 0, send.nbytes)}
        dtype, blk = send.dtype, send.nbytes
    nbytes = -1 if vector else blk * c.size
    algo = algorithm_for(c, "gather", nbytes, "linear" if vector else algorithm)
    plan = Plan(c.name, algo, BufferStore(bases, fixed), root=root, nbytes=nbytes, dtype=dtype)
    plan.check_bytes = -1 if vector else blk
    if not at_root:
        _with_temp_blocks(c, plan, fixed, bases, blk)
    return plan


def plan_Gather(
    c: Caller, sendbuf: Any, recvbuf: Any, root: int = 0, *, algorithm: str | None = None
) -> Plan:
    """Gather equal-size blocks at ``root``: rank ``i``'s ``sendbuf`` lands in block ``i``
    of the root's ``recvbuf`` (``IN_PLACE`` at the root: its block is already there).

    Raises:
        InvalidRankError: bad ``root``.
        InvalidBufferError, InvalidArgumentError: bad buffers or sizes (before sending).
    """
    return _plan_Gather(c, sendbuf, recvbuf, root, algorithm, vector=False)


def plan_Gatherv(c: Caller, sendbuf: Any, recvbuf: Any, root: int = 0) -> Plan:
    """Gather blocks of different sizes: ``recvbuf`` at the root is
    ``[buf, counts, displs, datatype]`` (linear algorithm: only the root knows the counts).

    Raises:
        InvalidRankError, InvalidBufferError, InvalidArgumentError: as :meth:`Gather`.
    """
    return _plan_Gather(c, sendbuf, recvbuf, root, None, vector=True)


def _scatter_root_blocks(c: Caller, sendbuf: Any, vector: bool) -> _Blocks:
    p = c.size
    if vector:
        return _Blocks(*vector_spec(sendbuf, f"{c.name} sendbuf", p))
    sarr = as_array(sendbuf, f"{c.name} sendbuf", blocks=p)
    if sarr.size % p:
        raise InvalidArgumentError(
            f"{c.name}: the send buffer's {sarr.size} items do not split evenly over {p} ranks"
        )
    return _even_blocks(sarr, p)


def _plan_Scatter(
    c: Caller, sendbuf: Any, recvbuf: Any, root: Any, algorithm: str | None, vector: bool
) -> Plan:
    root = check_root(c, root)
    me, at_root = c.rank, c.rank == root
    in_place = _in_place_at_root(c, recvbuf, at_root)
    recv = None if in_place else as_array(recvbuf, f"{c.name} recvbuf", writable=True)
    sb: _Blocks | None = None
    if at_root:
        sb = _scatter_root_blocks(c, sendbuf, vector)
        if recv is not None:
            same_dtype(sb.arr, recv, c.name)
            if recv.size < sb.counts[me]:
                raise InvalidArgumentError(
                    f"{c.name}: receive buffer holds {recv.size} items, the root's block has "
                    f"{sb.counts[me]}"
                )
        bases, fixed = [_bytes(sb.arr)], _root_layout(sb)
        dtype, blk = sb.arr.dtype, sb.counts[me] * sb.arr.dtype.itemsize
    else:
        assert recv is not None
        bases, fixed = [_bytes(recv)], {me: (0, 0, recv.nbytes)}
        dtype, blk = recv.dtype, recv.nbytes
    nbytes = -1 if vector else blk * c.size

    def result() -> None:
        if sb is not None and recv is not None:
            recv[: sb.counts[me]] = sb.arr[sb.displs[me] : sb.displs[me] + sb.counts[me]]

    algo = algorithm_for(c, "scatter", nbytes, "linear" if vector else algorithm)
    store = BufferStore(bases, fixed)
    plan = Plan(c.name, algo, store, result, root=root, nbytes=nbytes, dtype=dtype)
    plan.check_bytes = -1 if vector else blk
    if not at_root:
        _with_temp_blocks(c, plan, fixed, bases, blk)
    return plan


def plan_Scatter(
    c: Caller, sendbuf: Any, recvbuf: Any, root: int = 0, *, algorithm: str | None = None
) -> Plan:
    """Scatter equal-size blocks of the root's ``sendbuf``: block ``i`` lands in rank
    ``i``'s ``recvbuf`` (``IN_PLACE`` as ``recvbuf`` at the root: keep its block in place).

    Raises:
        InvalidRankError, InvalidBufferError, InvalidArgumentError: bad root, buffers or
            sizes (before sending).
    """
    return _plan_Scatter(c, sendbuf, recvbuf, root, algorithm, vector=False)


def plan_Scatterv(c: Caller, sendbuf: Any, recvbuf: Any, root: int = 0) -> Plan:
    """Scatter blocks of different sizes: ``sendbuf`` at the root is
    ``[buf, counts, displs, datatype]`` (linear algorithm).

    Raises:
        InvalidRankError, InvalidBufferError, InvalidArgumentError: as :meth:`Scatter`.
    """
    return _plan_Scatter(c, sendbuf, recvbuf, root, None, vector=True)


def _plan_Allgather(
    c: Caller, sendbuf: Any, recvbuf: Any, algorithm: str | None, vector: bool
) -> Plan:
    p, me = c.size, c.rank
    if vector:
        rb = _Blocks(*vector_spec(recvbuf, f"{c.name} recvbuf", p, writable=True))
    else:
        rarr = as_array(recvbuf, f"{c.name} recvbuf", writable=True, blocks=p)
        if rarr.size % p:
            raise InvalidArgumentError(
                f"{c.name}: the receive buffer's {rarr.size} items do not split evenly over "
                f"{p} ranks"
            )
        rb = _even_blocks(rarr, p)
    if sendbuf is not IN_PLACE and sendbuf is not None:  # mpi4py: None is IN_PLACE
        send = as_array(sendbuf, f"{c.name} sendbuf")
        same_dtype(send, rb.arr, c.name)
        if send.size != rb.counts[me]:
            raise InvalidArgumentError(
                f"{c.name}: this rank sends {send.size} items but its receive block has "
                f"{rb.counts[me]}"
            )
        rb.arr[rb.displs[me] : rb.displs[me] + rb.counts[me]] = send
    nbytes = sum(rb.counts) * rb.arr.dtype.itemsize
    algo = algorithm_for(c, "allgather", nbytes, algorithm)
    store = BufferStore([_bytes(rb.arr)], _root_layout(rb))
    plan = Plan(c.name, algo, store, nbytes=nbytes, dtype=rb.arr.dtype)
    plan.check_bytes = -1 if vector else nbytes
    return plan


def plan_Allgather(c: Caller, sendbuf: Any, recvbuf: Any, *, algorithm: str | None = None) -> Plan:
    """Every rank's ``sendbuf`` in rank order in every rank's ``recvbuf`` (``IN_PLACE``:
    each rank's block is already in place).

    Raises:
        InvalidBufferError, InvalidArgumentError: bad buffers or sizes (before sending).
    """
    return _plan_Allgather(c, sendbuf, recvbuf, algorithm, vector=False)


def plan_Allgatherv(c: Caller, sendbuf: Any, recvbuf: Any, *, algorithm: str | None = None) -> Plan:
    """Allgather with per-rank counts: ``recvbuf`` is ``[buf, counts, displs, datatype]``.

    Raises:
        InvalidBufferError, InvalidArgumentError: bad buffers, counts or displacements.
    """
    return _plan_Allgather(c, sendbuf, recvbuf, algorithm, vector=True)


def _alltoall_buffers(
    c: Caller, sendbuf: Any, recvbuf: Any, vector: bool
) -> tuple[_Blocks, _Blocks]:
    """The (send, receive) blocks of an Alltoall(v); IN_PLACE (or None) sends a copy of the
    receive buffer."""
    p = c.size
    in_place = sendbuf is IN_PLACE or sendbuf is None  # mpi4py: None is IN_PLACE
    if vector:
        rb = _Blocks(*vector_spec(recvbuf, f"{c.name} recvbuf", p, writable=True))
        if in_place:
            return _Blocks(rb.arr.copy(), rb.counts, rb.displs), rb
        return _Blocks(*vector_spec(sendbuf, f"{c.name} sendbuf", p)), rb
    rarr = as_array(recvbuf, f"{c.name} recvbuf", writable=True, blocks=p)
    sarr = rarr.copy() if in_place else as_array(sendbuf, f"{c.name} sendbuf", blocks=p)
    if sarr.size % p or rarr.size < sarr.size:
        raise InvalidArgumentError(
            f"{c.name}: the send buffer's {sarr.size} items must split evenly over {p} "
            f"ranks and fit the receive buffer of {rarr.size}"
        )
    sb = _even_blocks(sarr, p)
    return sb, _Blocks(rarr, sb.counts, sb.displs)


def _plan_Alltoall(
    c: Caller, sendbuf: Any, recvbuf: Any, algorithm: str | None, vector: bool
) -> Plan:
    p, me = c.size, c.rank
    sb, rb = _alltoall_buffers(c, sendbuf, recvbuf, vector)
    same_dtype(sb.arr, rb.arr, c.name)
    if sb.counts[me] != rb.counts[me]:
        raise InvalidArgumentError(
            f"{c.name}: this rank sends itself {sb.counts[me]} items but expects {rb.counts[me]}"
        )
    rb.arr[rb.displs[me] : rb.displs[me] + rb.counts[me]] = sb.arr[
        sb.displs[me] : sb.displs[me] + sb.counts[me]
    ]
    isz = rb.arr.dtype.itemsize
    fixed: Layout = {me * p + d: (1, sb.displs[d] * isz, sb.counts[d] * isz) for d in range(p)}
    fixed.update({s * p + me: (0, rb.displs[s] * isz, rb.counts[s] * isz) for s in range(p)})
    bases = [_bytes(rb.arr), _bytes(sb.arr)]
    nbytes = -1 if vector else sb.arr.nbytes
    algo = algorithm_for(c, "alltoall", nbytes, "pairwise" if vector else algorithm)
    plan = Plan(c.name, algo, BufferStore(bases, fixed), nbytes=nbytes, dtype=rb.arr.dtype)
    plan.check_bytes = nbytes
    if not vector:
        _with_temp_blocks(c, plan, fixed, bases, sb.counts[0] * isz)
    return plan


def plan_Alltoall(c: Caller, sendbuf: Any, recvbuf: Any, *, algorithm: str | None = None) -> Plan:
    """Block ``i`` of my ``sendbuf`` goes to rank ``i``; block ``j`` of my ``recvbuf``
    comes from rank ``j`` (``IN_PLACE``: send from ``recvbuf``).

    Raises:
        InvalidBufferError, InvalidArgumentError: bad buffers or sizes (before sending).
    """
    return _plan_Alltoall(c, sendbuf, recvbuf, algorithm, vector=False)


def plan_Alltoallv(c: Caller, sendbuf: Any, recvbuf: Any) -> Plan:
    """Alltoall with per-rank counts: both buffers are ``[buf, counts, displs, datatype]``
    (pairwise exchange).

    Raises:
        InvalidBufferError, InvalidArgumentError: bad buffers, counts or displacements.
    """
    return _plan_Alltoall(c, sendbuf, recvbuf, None, vector=True)


# ---- reductions, buffers ------------------------------------------------------------------------
class _ReduceIO(NamedTuple):
    """A buffer reduction's input vector, output (None off the root of a Reduce), whether
    the input is the output (IN_PLACE), and the per-rank counts of a reduce-scatter."""

    inp: np.ndarray
    out: np.ndarray | None
    in_place: bool
    counts: tuple[int, ...]


def _reduce_buffers(
    c: Caller, family: str, sendbuf: Any, recvbuf: Any, gets_output: bool
) -> _ReduceIO:
    in_place = gets_output and (sendbuf is IN_PLACE or sendbuf is None)  # mpi4py: None
    # a spec's count is per block where the buffer holds one block per rank
    blocks = c.size if family == "reduce_scatter_block" else 1
    out = None
    if gets_output:
        out = as_array(
            recvbuf, f"{c.name} recvbuf", writable=True, blocks=blocks if in_place else 1
        )
    if sendbuf is IN_PLACE and out is None:
        raise InvalidArgumentError(f"{c.name}: IN_PLACE is only valid at the root")
    if in_place:
        assert out is not None
        return _ReduceIO(out, out, True, ())
    inp = as_array(sendbuf, f"{c.name} sendbuf", blocks=blocks)
    if out is not None:
        same_dtype(inp, out, c.name)
    return _ReduceIO(inp, out, False, ())


def _reduce_counts(
    c: Caller, family: str, io: _ReduceIO, recvcounts: Sequence[int] | None
) -> _ReduceIO:
    """``io`` with the input cut to the items the reduction covers and, for the
    reduce-scatters, each rank's count.

    Raises:
        InvalidArgumentError: counts or sizes that do not fit.
    """
    p, me, inp, out = c.size, c.rank, io.inp, io.out
    if family == "reduce_scatter_block":
        assert out is not None
        n = out.size // p if io.in_place else inp.size // p
        if io.in_place:
            if inp.size < n * p:
                raise InvalidArgumentError(
                    f"{c.name}: IN_PLACE buffer holds {inp.size} items, needs {n * p}"
                )
        elif inp.size != n * p or out.size < n:
            raise InvalidArgumentError(
                f"{c.name}: send buffer of {inp.size} items must be {p} blocks of the receive "
                f"buffer's {out.size} items"
            )
        return io._replace(inp=inp[: n * p], counts=(n,) * p)
    if family == "reduce_scatter":
        assert out is not None
        if recvcounts is None:
            raise InvalidArgumentError(
                f"{c.name}: with IN_PLACE, recvcounts (one count per rank) is required"
            )
        counts = tuple(int(x) for x in recvcounts)
        if len(counts) != p or any(x < 0 for x in counts):
            raise InvalidArgumentError(
                f"{c.name}: recvcounts must be {p} non-negative ints, got {recvcounts!r}"
            )
        if inp.size < sum(counts) or out.size < counts[me]:
            raise InvalidArgumentError(
                f"{c.name}: recvcounts {counts} add up to {sum(counts)} items; the send buffer "
                f"holds {inp.size} and this rank's receive buffer {out.size} (needs {counts[me]})"
            )
        return io._replace(inp=inp[: sum(counts)], counts=counts)
    if out is not None and out.size != inp.size:
        raise InvalidArgumentError(
            f"{c.name}: send buffer has {inp.size} items but the receive buffer has {out.size}"
        )
    return io


def _reduce_work(
    c: Caller, family: str, io: _ReduceIO, plan: Plan
) -> tuple[np.ndarray, Layout, tuple[int, ...] | None]:
    """The work buffer a reduction's schedule runs over, its block layout, and the blocks
    present at the start (None: all)."""
    inp, count, isz = io.inp, io.inp.size, io.inp.dtype.itemsize
    nbytes = count * isz
    if family in ("scan", "exscan"):
        # blocks: 0 the result, 1 the window passed on, 2 scratch
        work = np.empty(3 * count, inp.dtype)
        work[count : 2 * count] = inp
        present: tuple[int, ...] = (1,)
        if family == "scan":
            work[:count] = inp
            present = (0, 1)
        return work, {i: (0, i * nbytes, nbytes) for i in range(3)}, present
    if family in ("reduce_scatter", "reduce_scatter_block"):
        layout, pos = {}, 0
        for b, n in enumerate(io.counts):
            layout[b] = (0, pos * isz, n * isz)
            pos += n
        return inp.copy(), layout, None
    if io.out is not None:
        work = io.out
        if not io.in_place:
            work[...] = inp
    else:
        work = inp.copy() if writes(plan.steps(c)) else inp
    return work, chunks(count, plan.algo.chunks(c.size, nbytes), isz), None


def _plan_Reduce(
    c: Caller,
    family: str,
    sendbuf: Any,
    recvbuf: Any,
    op: Any,
    root: Any,
    algorithm: str | None,
    recvcounts: Sequence[int] | None = None,
) -> Plan:
    """Reduce, Allreduce, Reduce_scatter(_block), Scan and Exscan: the input vector, a
    work copy cut into the algorithm's blocks, the output."""
    if family == "reduce":
        root = check_root(c, root)
    gets_output = family != "reduce" or c.rank == root
    the_op = resolve_op(op, c.name)
    io = _reduce_buffers(c, family, sendbuf, recvbuf, gets_output)
    the_op.check_buffer(io.inp.dtype, c.name)
    io = _reduce_counts(c, family, io, recvcounts)
    nbytes = io.inp.nbytes
    commutative = the_op.is_commutative
    algo = algorithm_for(c, family, nbytes, algorithm, commutative=commutative)
    plan = Plan(c.name, algo, _NO_BLOCKS, root=root, nbytes=nbytes)
    plan.commutative, plan.dtype, plan.check_bytes = commutative, io.inp.dtype, nbytes
    if algo.node_level and family == "allreduce" and c.size > 1 and not c.name.startswith("I"):
        assert io.out is not None
        node_in = io.out.copy() if io.in_place else io.inp
        plan.node = NodeCall("allreduce", (node_in, io.out, the_op))
        return plan
    work, layout, present = _reduce_work(c, family, io, plan)
    store = BufferStore([_bytes(work)], layout, io.inp.dtype, the_op, present)
    plan.store = store
    plan.result = _reduce_result(c, family, io, work, store)
    return plan


def _reduce_result(
    c: Caller, family: str, io: _ReduceIO, work: np.ndarray, store: BufferStore
) -> Callable[[], None]:
    """What a buffer reduction copies out once its schedule has run."""
    out, count, me = io.out, io.inp.size, c.rank

    def result() -> None:
        if out is None:
            return
        if family in ("scan", "exscan"):
            if 0 in store.present:
                out[...] = work[:count]
        elif family in ("reduce_scatter", "reduce_scatter_block"):
            _, off, n = store.layout[me]
            isz = work.dtype.itemsize
            out[: n // isz] = work[off // isz : (off + n) // isz]

    return result


def plan_Reduce(
    c: Caller,
    sendbuf: Any,
    recvbuf: Any,
    op: Op = SUM,
    root: int = 0,
    *,
    algorithm: str | None = None,
) -> Plan:
    """Element-wise reduction of every rank's ``sendbuf`` with ``op`` (in rank order) into
    the root's ``recvbuf`` (``IN_PLACE`` at the root: its input is ``recvbuf``).

    Raises:
        InvalidRankError: bad ``root``.
        InvalidArgumentTypeError: ``op`` is not an operator.
        InvalidArgumentError: ``op`` undefined for the dtype; mismatched sizes or dtypes.
    """
    return _plan_Reduce(c, "reduce", sendbuf, recvbuf, op, root, algorithm)


def plan_Allreduce(
    c: Caller, sendbuf: Any, recvbuf: Any, op: Op = SUM, *, algorithm: str | None = None
) -> Plan:
    """Element-wise reduction of every rank's ``sendbuf`` with ``op`` (in rank order) into
    every rank's ``recvbuf`` (``IN_PLACE``: the input is ``recvbuf``).

    Raises:
        InvalidArgumentTypeError: ``op`` is not an operator.
        InvalidArgumentError: ``op`` undefined for the dtype; mismatched sizes or dtypes.
    """
    return _plan_Reduce(c, "allreduce", sendbuf, recvbuf, op, -1, algorithm)


def plan_Reduce_scatter_block(
    c: Caller, sendbuf: Any, recvbuf: Any, op: Op = SUM, *, algorithm: str | None = None
) -> Plan:
    """Reduce ``size`` equal blocks element-wise; rank ``i`` receives the result's block ``i``.

    Raises:
        InvalidArgumentTypeError, InvalidArgumentError: as :meth:`Allreduce`.
    """
    return _plan_Reduce(c, "reduce_scatter_block", sendbuf, recvbuf, op, -1, algorithm)


def reduce_scatter_count(c: Caller, sendbuf: Any, recvbuf: Any, op: Any = SUM) -> int:
    """This rank's receive count of a ``Reduce_scatter`` called without ``recvcounts`` (the
    size of its receive buffer, which the ranks then exchange), after checking every
    argument as :func:`plan_Reduce_scatter` does, before anything is sent.

    Raises:
        InvalidArgumentTypeError, InvalidArgumentError, InvalidBufferError: as
            :func:`plan_Reduce_scatter`.
    """
    the_op = resolve_op(op, c.name)
    io = _reduce_buffers(c, "reduce_scatter", sendbuf, recvbuf, gets_output=True)
    the_op.check_buffer(io.inp.dtype, c.name)
    assert io.out is not None
    return int(io.out.size)


def plan_Reduce_scatter(
    c: Caller,
    sendbuf: Any,
    recvbuf: Any,
    recvcounts: Sequence[int] | None = None,
    op: Op = SUM,
    *,
    algorithm: str | None = None,
) -> Plan:
    """Reduce element-wise; rank ``i`` receives ``recvcounts[i]`` items of the result, in
    rank order (without ``recvcounts``, every rank's receive buffer gives its count, as in
    mpi4py: the communicator exchanges them first).

    Raises:
        InvalidArgumentTypeError, InvalidArgumentError: as :meth:`Allreduce`; counts that
            do not add up to the send buffer.
    """
    return _plan_Reduce(c, "reduce_scatter", sendbuf, recvbuf, op, -1, algorithm, recvcounts)


def plan_Scan(
    c: Caller, sendbuf: Any, recvbuf: Any, op: Op = SUM, *, algorithm: str | None = None
) -> Plan:
    """Inclusive prefix reduction: rank ``i``'s ``recvbuf`` = ``x0 op ... op xi``.

    Raises:
        InvalidArgumentTypeError, InvalidArgumentError: as :meth:`Allreduce`.
    """
    return _plan_Reduce(c, "scan", sendbuf, recvbuf, op, -1, algorithm)


def plan_Exscan(
    c: Caller, sendbuf: Any, recvbuf: Any, op: Op = SUM, *, algorithm: str | None = None
) -> Plan:
    """Exclusive prefix reduction: rank ``i``'s ``recvbuf`` = ``x0 op ... op x(i-1)``;
    rank 0's ``recvbuf`` is left unchanged.

    Raises:
        InvalidArgumentTypeError, InvalidArgumentError: as :meth:`Allreduce`.
    """
    return _plan_Reduce(c, "exscan", sendbuf, recvbuf, op, -1, algorithm)
