"""The collectives of :class:`treecast.Comm`: validate, lay out the blocks, select, run.

Every collective is built the same way: a *plan* (the store of blocks the schedule moves,
the selected algorithm, and a function that gives the call's result once the schedule has
run), then either run to completion (blocking form) or handed to a
:class:`~treecast.engine.progress.CollectiveRequest` (``I*`` forms). Lowercase methods move
Python objects, capitalised ones NumPy arrays and buffer-protocol objects. All argument
checks happen while planning, before any message is sent.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial, wraps
from threading import get_ident
from typing import TYPE_CHECKING, Any

import numpy as np

from .algorithms.registry import Algorithm
from .algorithms.schedule import Combine, Recv, Send, Step
from .constants import IN_PLACE
from .engine.blocking import Payload, run_blocking
from .engine.node import arena_of, reduce_arena_of
from .engine.progress import CollectiveRequest
from .engine.store import BufferStore, ObjectStore, Store, execute, run
from .errors import InvalidArgumentError, InvalidArgumentTypeError
from .message import frames as frames_mod
from .message.buffers import array_bytes as _bytes
from .message.buffers import as_array, vector_spec
from .ops import SUM, Op, resolve_op
from .request import Request
from .selection.rules import select
from .transports.base import Activity, alloc_frame, describe

if TYPE_CHECKING:
    from .transports.base import Transport

Layout = dict[int, tuple[int, int, int]]
DEBUG = os.environ.get("TREECAST_DEBUG", "") not in ("", "0")
"""``TREECAST_DEBUG=1``: before each collective, all ranks compare what they called."""
_EMPTY = memoryview(b"")


@dataclass
class Plan:
    """What a collective call runs: ``name`` (its signature), the registry's collective
    ``family`` and algorithm, the block store, and ``result()`` for after the run."""

    name: str
    algo: Algorithm
    store: Store
    result: Callable[[], Any]
    root: int = -1
    nbytes: int = -1
    commutative: bool = True
    dtype: Any = None
    check_bytes: int = -1
    node: Callable[[float | None, Any], None] | None = None
    """A node-level algorithm's blocking run ``node(timeout, what)``, instead of steps."""


def _ids(steps: Iterable[Step]) -> set[int]:
    """Every block id a schedule touches."""
    out: set[int] = set()
    for s in steps:
        if type(s) is Combine:
            out.update((s.src, s.dst))
        else:
            out.update(s.blocks)  # type: ignore[union-attr]
    return out


@lru_cache(maxsize=1024)
def _sent_ids(steps: tuple[Step, ...]) -> tuple[int, ...]:
    """Block ids this rank's steps send (first occurrence order)."""
    seen: dict[int, None] = {}
    for s in steps:
        if type(s) is Send:
            seen.update(dict.fromkeys(s.blocks or (0,)))
    return tuple(seen)


def _object_result(store: ObjectStore, result: Callable[[], Any], what: Activity) -> Any:
    """An object collective's result, once it has ended on every rank.

    Raises:
        SerializationError: this rank could not pickle what it had to send.
        SenderFailedError: the result needs a part that another rank could not send.
    """
    if store.failure is not None:
        raise store.failure
    got = result()
    bad = frames_mod.failed_part(got)
    if bad is not None:  # describe only then: this is every object collective's path
        raise bad.error(describe(what))
    return got


def _writes(steps: Iterable[Step]) -> bool:
    return any(type(s) is Recv or type(s) is Combine for s in steps)


def _layout_with_temp(
    ids: Iterable[int],
    fixed: dict[int, tuple[int, int, int]],
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


def _chunks(count: int, c: int, itemsize: int, base: int = 0) -> Layout:
    """Chunk ``i`` of ``c``: ``count // c + (i < count % c)`` items, in order."""
    layout: Layout = {}
    q, r = divmod(count, c)
    pos = 0
    for i in range(c):
        n = (q + (i < r)) * itemsize
        layout[i] = (base, pos, n)
        pos += n
    return layout


def _same_dtype(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if a.dtype != b.dtype:
        raise InvalidArgumentError(
            f"{what}: send buffer has dtype {a.dtype} but receive buffer has dtype {b.dtype}; "
            "they must match"
        )


class Collectives:
    """Mixin of :class:`treecast.Comm` with every collective, both forms, blocking and ``I*``."""

    if TYPE_CHECKING:  # provided by Comm
        _t: Transport
        _group: tuple[int, ...]
        _coll_ctx: int
        _freed: bool
        rank: int
        size: int
        name: str

        def _next_tag(self) -> int: ...
        def _live(self, op: str) -> None: ...
        def _root(self, value: Any, op: str) -> int: ...
        def _debug_check(
            self, what: tuple[str, str, int, int], nbytes: int, dtype: str = ""
        ) -> None: ...

    # ---- running a plan --------------------------------------------------------------------
    def _algo(
        self,
        family: str,
        nbytes: int,
        algorithm: str | None,
        *,
        commutative: bool = True,
        buffer: bool = True,
    ) -> Algorithm:
        return select(
            family,
            self.size,
            nbytes,
            commutative=commutative,
            buffer=buffer,
            forced=algorithm,
        )

    def _steps(self, plan: Plan) -> tuple[Step, ...]:
        return plan.algo.steps(
            self.rank, self.size, max(plan.root, 0), plan.nbytes, plan.commutative
        )

    def _go(self, plan: Plan, timeout: float | None, nonblocking: bool) -> Any:
        tag = self._next_tag()
        what = (plan.name, self.name, tag, plan.root)
        if DEBUG:
            self._debug_check(what, plan.check_bytes, "" if plan.dtype is None else str(plan.dtype))
        if plan.node is not None:
            plan.node(timeout, what)
            return plan.result()
        steps = self._steps(plan)
        store = plan.store
        objects = store if type(store) is ObjectStore else None
        if objects is not None:
            # pickle what this rank will send now (the root of a gather never pickles its
            # own); an object that cannot be pickled goes as a marker, so that every rank
            # ends the collective in step, and raises once it has ended (_object_result)
            objects.rank = self.rank
            objects.freeze(_sent_ids(steps))
        if nonblocking:
            gen = execute(steps, self._t, self._group, self._coll_ctx, tag, store, what)
            result = plan.result
            if objects is not None:
                result = partial(_object_result, objects, plan.result, what)
            return CollectiveRequest(self._t, gen, result)
        run(steps, self._t, self._group, self._coll_ctx, tag, store, what, timeout)
        if objects is not None:
            return _object_result(objects, plan.result, what)
        return plan.result()

    # ---- barrier and broadcast --------------------------------------------------------------
    def _plan_barrier(self, name: str) -> Plan:
        self._live(name)
        store = BufferStore([memoryview(bytearray())], {0: (0, 0, 0)})
        return Plan(name, self._algo("barrier", 0, None), store, lambda: None)

    def barrier(self, *, timeout: float | None = None) -> None:
        """Block until every rank of the communicator has called ``barrier`` (dissemination)."""
        plan = self._plan_barrier("barrier")
        tag = self._next_tag()
        what = ("barrier", self.name, tag, -1)
        if DEBUG:
            self._debug_check(what, -1)
        run_blocking(
            self._steps(plan),
            self._t,
            self._group,
            self._coll_ctx,
            tag,
            Payload([_EMPTY]),
            what,
            timeout,
        )

    Barrier = barrier

    def ibarrier(self) -> Request:
        """Start a barrier; the request completes once every rank has entered it."""
        return self._go(self._plan_barrier("ibarrier"), None, True)

    Ibarrier = ibarrier

    def bcast(
        self,
        obj: Any = None,
        root: int = 0,
        *,
        timeout: float | None = None,
        algorithm: str | None = None,
        copy: bool = True,
    ) -> Any:
        """Broadcast ``obj`` from ``root``; every rank returns the root's object.

        Args:
            obj: the object (significant at the root only).
            root: the rank whose object is sent.
            timeout: seconds (default ``TREECAST_TIMEOUT``).
            algorithm: force an algorithm (``treecast algorithms bcast``).
            copy: False: every rank (the root too) returns the structure with its NumPy
                arrays as read-only views on one shared copy per node (zero-copy; see
                :mod:`treecast.shared`). Writing to them raises NumPy's ``ValueError``.

        Raises:
            InvalidRankError: bad ``root`` (raised on every rank, nothing sent).
            SerializationError: at the root, ``obj`` cannot be pickled (a marker went to
                the others instead, so nobody waits).
            SenderFailedError: on the other ranks, when the root could not send ``obj``.
            DeserializationError: the root's object cannot be rebuilt on this rank.
            InvalidArgumentError: unknown ``algorithm``.
        """
        if self._freed:
            self._live("bcast")
        if type(root) is not int or not 0 <= root < self.size:
            root = self._root(root, "bcast")
        if not copy:
            from .engine.sharing import share_object

            return share_object(self, obj, root, timeout)
        if self.size == 1:
            return obj
        algo = self._algo("bcast", -1, algorithm, buffer=False)
        tag = self._next_tag()
        what = ("bcast", self.name, tag, root)
        if DEBUG:
            self._debug_check(what, -1)
        frames = failure = None
        if self.rank == root:
            # an object that cannot be pickled goes as a marker: the others raise
            # SenderFailedError instead of waiting, and the root raises once it is sent
            frames, failure = frames_mod.dumps_or_marker(obj, "bcast", root)
        node = None
        if frames is not None and len(frames) > 1 and algorithm is None:
            # large buffers of the object: the root picks by their size (the others cannot
            # know it) and says so in the message; the buffers then go through node memory
            big = sum(f.nbytes for f in frames[1:])
            if self._algo("bcast", big, None).node_level:
                node = frames[1:]
                frames = [frames_mod.dumps_node_header(frames[0], [f.nbytes for f in node])]
        payload = Payload(frames)
        steps = algo.steps(self.rank, self.size, root, -1, True)
        run_blocking(steps, self._t, self._group, self._coll_ctx, tag, payload, what, timeout)
        if node is not None:
            arena_of(self).bcast(self, node, root, timeout, what)  # type: ignore[arg-type]
        if self.rank == root:
            if failure is not None:
                raise failure
            return obj
        head = frames_mod.loads_node_header(payload.frames[0])
        if head is not None:
            first, lengths = head
            bufs = [alloc_frame(n) for n in lengths]
            arena_of(self).bcast(self, bufs, root, timeout, what)  # type: ignore[arg-type]
            return frames_mod.loads([first, *bufs], "bcast")
        got = frames_mod.loads(payload.frames, "bcast")
        if type(got) is frames_mod.SendFailed:
            raise got.error(describe(what))
        return got

    def ibcast(self, obj: Any = None, root: int = 0, *, algorithm: str | None = None) -> Request:
        """Start broadcasting ``obj`` from ``root``; ``wait()`` returns the root's object."""
        self._live("ibcast")
        root = self._root(root, "ibcast")
        store = ObjectStore({0: obj} if self.rank == root else {}, where="ibcast")
        algo = self._algo("bcast", -1, algorithm, buffer=False)
        plan = Plan("ibcast", algo, store, lambda: store.get(0), root)
        return self._go(plan, None, True)

    def _plan_Bcast(self, name: str, buf: Any, root: int, algorithm: str | None) -> Plan:
        self._live(name)
        root = self._root(root, name)
        arr = as_array(buf, f"{name} buf", writable=self.rank != root)
        view = _bytes(arr)
        algo = self._algo("bcast", view.nbytes, algorithm)
        store = BufferStore([view], {0: (0, 0, view.nbytes)})
        return Plan(
            name, algo, store, lambda: None, root, view.nbytes, True, arr.dtype, view.nbytes
        )

    def Bcast(
        self,
        buf: Any,
        root: int = 0,
        *,
        timeout: float | None = None,
        algorithm: str | None = None,
    ) -> None:
        """Broadcast the contents of ``buf`` at ``root`` into ``buf`` on every other rank.

        Args:
            buf: NumPy array, buffer-protocol object or ``[buf, datatype]`` spec.
            root: the rank whose buffer is sent.
            timeout: seconds (default ``TREECAST_TIMEOUT``).
            algorithm: force an algorithm (``treecast algorithms`` lists them); default
                ``TREECAST_BCAST_ALGORITHM`` or the rule table.

        Raises:
            InvalidRankError: bad ``root``.
            InvalidBufferError: ``buf`` is not a (writable, off the root) contiguous buffer.
            InvalidArgumentError: ranks passed buffers of different sizes; unknown algorithm.
        """
        plan = self._plan_Bcast("Bcast", buf, root, algorithm)
        if self.size == 1:
            return
        tag = self._next_tag()
        what = ("Bcast", self.name, tag, plan.root)
        if DEBUG:
            self._debug_check(what, plan.nbytes, "" if plan.dtype is None else str(plan.dtype))
        assert isinstance(plan.store, BufferStore)
        if plan.algo.node_level:
            arena_of(self).bcast(self, [plan.store.bases[0]], plan.root, timeout, what)  # type: ignore[arg-type]
            return
        payload = Payload(buffer=plan.store.bases[0])
        run_blocking(
            self._steps(plan), self._t, self._group, self._coll_ctx, tag, payload, what, timeout
        )

    def Ibcast(self, buf: Any, root: int = 0, *, algorithm: str | None = None) -> Request:
        """Start a buffer broadcast; ``buf`` must not be touched until the request completes."""
        return self._go(self._plan_Bcast("Ibcast", buf, root, algorithm), None, True)

    # ---- block collectives, objects ----------------------------------------------------------
    def _items(self, seq: Any, op: str) -> list[Any]:
        """``seq`` as a list of exactly ``size`` items (scatter, alltoall)."""
        if isinstance(seq, (str, bytes)) or not hasattr(seq, "__iter__"):
            raise InvalidArgumentTypeError(
                f"{op}: expected a sequence of {self.size} items, got {type(seq).__name__}"
            )
        items = list(seq)
        if len(items) != self.size:
            raise InvalidArgumentError(
                f"{op}: expected a sequence of {self.size} items (one per rank), got {len(items)}"
            )
        return items

    def _plan_gather(self, name: str, sendobj: Any, root: int, algorithm: str | None) -> Plan:
        self._live(name)
        root = self._root(root, name)
        store = ObjectStore({self.rank: sendobj}, where=name)
        size = self.size

        def result() -> list[Any] | None:
            return [store.get(b) for b in range(size)] if self.rank == root else None

        return Plan(name, self._algo("gather", -1, algorithm, buffer=False), store, result, root)

    def gather(
        self,
        sendobj: Any,
        root: int = 0,
        *,
        timeout: float | None = None,
        algorithm: str | None = None,
    ) -> list[Any] | None:
        """Collect every rank's object at ``root``.

        Returns:
            At the root, the list of objects in rank order; elsewhere None.

        Raises:
            InvalidRankError: bad ``root``.
            SerializationError: ``sendobj`` cannot be pickled.
        """
        return self._go(self._plan_gather("gather", sendobj, root, algorithm), timeout, False)

    def igather(self, sendobj: Any, root: int = 0, *, algorithm: str | None = None) -> Request:
        """Start a gather; ``wait()`` returns the list at the root and None elsewhere."""
        return self._go(self._plan_gather("igather", sendobj, root, algorithm), None, True)

    def _plan_scatter(self, name: str, sendobj: Any, root: int, algorithm: str | None) -> Plan:
        self._live(name)
        root = self._root(root, name)
        objects = {}
        if self.rank == root:
            objects = dict(enumerate(self._items(sendobj, name)))
        store = ObjectStore(objects, where=name)
        algo = self._algo("scatter", -1, algorithm, buffer=False)
        return Plan(name, algo, store, lambda: store.get(self.rank), root)

    def scatter(
        self,
        sendobj: Any = None,
        root: int = 0,
        *,
        timeout: float | None = None,
        algorithm: str | None = None,
    ) -> Any:
        """Send item ``i`` of the root's sequence to rank ``i``; return mine.

        Raises:
            InvalidRankError: bad ``root``.
            InvalidArgumentError: at the root, ``sendobj`` does not have exactly ``size`` items.
            SerializationError: at the root, an item cannot be pickled.
        """
        return self._go(self._plan_scatter("scatter", sendobj, root, algorithm), timeout, False)

    def iscatter(
        self, sendobj: Any = None, root: int = 0, *, algorithm: str | None = None
    ) -> Request:
        """Start a scatter; ``wait()`` returns this rank's item."""
        return self._go(self._plan_scatter("iscatter", sendobj, root, algorithm), None, True)

    def _plan_allgather(self, name: str, sendobj: Any, algorithm: str | None) -> Plan:
        self._live(name)
        store = ObjectStore({self.rank: sendobj}, where=name)
        size = self.size
        algo = self._algo("allgather", -1, algorithm, buffer=False)
        return Plan(name, algo, store, lambda: [store.get(b) for b in range(size)])

    def allgather(
        self, sendobj: Any, *, timeout: float | None = None, algorithm: str | None = None
    ) -> list[Any]:
        """Every rank's object, in rank order, on every rank.

        Raises:
            SerializationError: ``sendobj`` cannot be pickled.
            InvalidArgumentError: unknown ``algorithm``.
        """
        return self._go(self._plan_allgather("allgather", sendobj, algorithm), timeout, False)

    def iallgather(self, sendobj: Any, *, algorithm: str | None = None) -> Request:
        """Start an allgather; ``wait()`` returns the list of every rank's object."""
        return self._go(self._plan_allgather("iallgather", sendobj, algorithm), None, True)

    def _plan_alltoall(self, name: str, sendobj: Any, algorithm: str | None) -> Plan:
        self._live(name)
        p, r = self.size, self.rank
        items = self._items(sendobj, name)
        store = ObjectStore({r * p + d: x for d, x in enumerate(items)}, where=name)
        algo = self._algo("alltoall", -1, algorithm, buffer=False)
        return Plan(name, algo, store, lambda: [store.get(s * p + r) for s in range(p)])

    def alltoall(
        self, sendobj: Any, *, timeout: float | None = None, algorithm: str | None = None
    ) -> list[Any]:
        """Send item ``i`` of my sequence to rank ``i``; return the items sent to me, in rank
        order.

        Raises:
            InvalidArgumentError: ``sendobj`` does not have exactly ``size`` items.
            SerializationError: an item cannot be pickled.
        """
        return self._go(self._plan_alltoall("alltoall", sendobj, algorithm), timeout, False)

    def ialltoall(self, sendobj: Any, *, algorithm: str | None = None) -> Request:
        """Start an alltoall; ``wait()`` returns the items sent to this rank."""
        return self._go(self._plan_alltoall("ialltoall", sendobj, algorithm), None, True)

    # ---- reductions, objects -----------------------------------------------------------------
    def _plan_reduce_obj(
        self,
        name: str,
        family: str,
        sendobj: Any,
        op: Any,
        root: int,
        algorithm: str | None,
    ) -> Plan:
        self._live(name)
        if family == "reduce":
            root = self._root(root, name)
        the_op = resolve_op(op, name)
        # Python's + on lists and str is not commutative even where MPI's SUM is: objects
        # always combine in rank order (costs at most one hop, for a root other than 0)
        commutative = False
        algo = self._algo(family, -1, algorithm, commutative=commutative, buffer=False)
        if family == "scan":
            objects = {0: sendobj, 1: sendobj}
        elif family == "exscan":
            objects = {1: sendobj}
        else:
            objects = {0: sendobj}
        store = ObjectStore(objects, the_op, where=name)
        me = self.rank

        def result() -> Any:
            if family == "reduce" and me != root:
                return None
            return store.get(0) if store.has(0) else None

        return Plan(name, algo, store, result, root, -1, commutative)

    def reduce(
        self,
        sendobj: Any,
        op: Op = SUM,
        root: int = 0,
        *,
        timeout: float | None = None,
        algorithm: str | None = None,
    ) -> Any:
        """Combine every rank's object with ``op`` in rank order; the root returns the result,
        the other ranks None.

        Raises:
            InvalidRankError: bad ``root``.
            InvalidArgumentTypeError: ``op`` is not an operator.
            SerializationError: ``sendobj`` cannot be pickled.
        """
        plan = self._plan_reduce_obj("reduce", "reduce", sendobj, op, root, algorithm)
        return self._go(plan, timeout, False)

    def ireduce(
        self, sendobj: Any, op: Op = SUM, root: int = 0, *, algorithm: str | None = None
    ) -> Request:
        """Start a reduce; ``wait()`` returns the result at the root and None elsewhere."""
        plan = self._plan_reduce_obj("ireduce", "reduce", sendobj, op, root, algorithm)
        return self._go(plan, None, True)

    def allreduce(
        self,
        sendobj: Any,
        op: Op = SUM,
        *,
        timeout: float | None = None,
        algorithm: str | None = None,
    ) -> Any:
        """Combine every rank's object with ``op`` in rank order; every rank returns the result.

        Raises:
            InvalidArgumentTypeError: ``op`` is not an operator.
            SerializationError: ``sendobj`` cannot be pickled.
        """
        plan = self._plan_reduce_obj("allreduce", "allreduce", sendobj, op, -1, algorithm)
        return self._go(plan, timeout, False)

    def iallreduce(self, sendobj: Any, op: Op = SUM, *, algorithm: str | None = None) -> Request:
        """Start an allreduce; ``wait()`` returns the result."""
        plan = self._plan_reduce_obj("iallreduce", "allreduce", sendobj, op, -1, algorithm)
        return self._go(plan, None, True)

    def scan(
        self,
        sendobj: Any,
        op: Op = SUM,
        *,
        timeout: float | None = None,
        algorithm: str | None = None,
    ) -> Any:
        """Inclusive prefix reduction: rank ``i`` returns ``x0 op x1 op ... op xi``."""
        return self._go(
            self._plan_reduce_obj("scan", "scan", sendobj, op, -1, algorithm), timeout, False
        )

    def iscan(self, sendobj: Any, op: Op = SUM, *, algorithm: str | None = None) -> Request:
        """Start an inclusive scan."""
        plan = self._plan_reduce_obj("iscan", "scan", sendobj, op, -1, algorithm)
        return self._go(plan, None, True)

    def exscan(
        self,
        sendobj: Any,
        op: Op = SUM,
        *,
        timeout: float | None = None,
        algorithm: str | None = None,
    ) -> Any:
        """Exclusive prefix reduction: rank ``i`` returns ``x0 op ... op x(i-1)``; rank 0 None."""
        return self._go(
            self._plan_reduce_obj("exscan", "exscan", sendobj, op, -1, algorithm), timeout, False
        )

    def iexscan(self, sendobj: Any, op: Op = SUM, *, algorithm: str | None = None) -> Request:
        """Start an exclusive scan."""
        plan = self._plan_reduce_obj("iexscan", "exscan", sendobj, op, -1, algorithm)
        return self._go(plan, None, True)

    # ---- block collectives, buffers ----------------------------------------------------------
    def _plan_Gather(
        self,
        name: str,
        sendbuf: Any,
        recvbuf: Any,
        root: int,
        algorithm: str | None,
        v: bool,
    ) -> Plan:
        self._live(name)
        root = self._root(root, name)
        p, me = self.size, self.rank
        at_root = me == root
        if sendbuf is None and at_root:  # mpi4py: None is IN_PLACE
            sendbuf = IN_PLACE
        in_place = at_root and sendbuf is IN_PLACE
        if not at_root and sendbuf is IN_PLACE:
            raise InvalidArgumentError(f"{name}: IN_PLACE is only valid at the root")
        bases: list[memoryview] = []
        fixed: Layout = {}
        send = None if in_place else as_array(sendbuf, f"{name} sendbuf")
        if at_root:
            if v:
                rarr, counts, displs = vector_spec(recvbuf, f"{name} recvbuf", p, writable=True)
            else:
                rarr = as_array(recvbuf, f"{name} recvbuf", writable=True, blocks=p)
                if send is not None and rarr.size < send.size * p:
                    raise InvalidArgumentError(
                        f"{name}: receive buffer holds {rarr.size} items; {p} ranks x {send.size} "
                        f"items need {send.size * p}"
                    )
                if send is None and rarr.size % p:
                    raise InvalidArgumentError(
                        f"{name}: with IN_PLACE the receive buffer's {rarr.size} items must "
                        f"split evenly over {p} ranks"
                    )
                n = send.size if send is not None else rarr.size // p
                counts, displs = (n,) * p, tuple(i * n for i in range(p))
            if send is not None:
                _same_dtype(send, rarr, name)
                if send.size != counts[me]:
                    raise InvalidArgumentError(
                        f"{name}: the root sends {send.size} items but its own receive count "
                        f"is {counts[me]}"
                    )
                rarr[displs[me] : displs[me] + counts[me]] = send
            isz = rarr.dtype.itemsize
            bases.append(_bytes(rarr))
            fixed = {b: (0, displs[b] * isz, counts[b] * isz) for b in range(p)}
            dtype, blk = rarr.dtype, counts[me] * isz
        else:
            assert send is not None
            bases.append(_bytes(send))
            fixed = {me: (0, 0, send.nbytes)}
            dtype, blk = send.dtype, send.nbytes
        nbytes = -1 if v else blk * p
        algo = self._algo("gather", nbytes, "linear" if v else algorithm)
        plan = Plan(name, algo, BufferStore(bases, fixed), lambda: None, root, nbytes)
        plan.dtype, plan.check_bytes = dtype, -1 if v else blk
        if not at_root:
            steps = self._steps(plan)
            layout = _layout_with_temp(_ids(steps), fixed, lambda b: blk, bases)
            plan.store = BufferStore(bases, layout)
        return plan

    def Gather(
        self,
        sendbuf: Any,
        recvbuf: Any,
        root: int = 0,
        *,
        timeout: float | None = None,
        algorithm: str | None = None,
    ) -> None:
        """Gather equal-size blocks at ``root``: rank ``i``'s ``sendbuf`` lands in block ``i``
        of the root's ``recvbuf`` (``IN_PLACE`` at the root: its block is already there).

        Raises:
            InvalidRankError: bad ``root``.
            InvalidBufferError, InvalidArgumentError: bad buffers or sizes (before sending).
        """
        self._go(
            self._plan_Gather("Gather", sendbuf, recvbuf, root, algorithm, False), timeout, False
        )

    def Igather(
        self, sendbuf: Any, recvbuf: Any, root: int = 0, *, algorithm: str | None = None
    ) -> Request:
        """Start a Gather."""
        return self._go(
            self._plan_Gather("Igather", sendbuf, recvbuf, root, algorithm, False), None, True
        )

    def Gatherv(
        self, sendbuf: Any, recvbuf: Any, root: int = 0, *, timeout: float | None = None
    ) -> None:
        """Gather blocks of different sizes: ``recvbuf`` at the root is
        ``[buf, counts, displs, datatype]`` (linear algorithm: only the root knows the counts).

        Raises:
            InvalidRankError, InvalidBufferError, InvalidArgumentError: as :meth:`Gather`.
        """
        self._go(self._plan_Gather("Gatherv", sendbuf, recvbuf, root, None, True), timeout, False)

    def Igatherv(self, sendbuf: Any, recvbuf: Any, root: int = 0) -> Request:
        """Start a Gatherv."""
        return self._go(
            self._plan_Gather("Igatherv", sendbuf, recvbuf, root, None, True), None, True
        )

    def _plan_Scatter(
        self,
        name: str,
        sendbuf: Any,
        recvbuf: Any,
        root: int,
        algorithm: str | None,
        v: bool,
    ) -> Plan:
        self._live(name)
        root = self._root(root, name)
        p, me = self.size, self.rank
        at_root = me == root
        if recvbuf is None and at_root:  # mpi4py: None is IN_PLACE
            recvbuf = IN_PLACE
        in_place = at_root and recvbuf is IN_PLACE
        if not at_root and recvbuf is IN_PLACE:
            raise InvalidArgumentError(f"{name}: IN_PLACE is only valid at the root")
        recv = None if in_place else as_array(recvbuf, f"{name} recvbuf", writable=True)
        bases: list[memoryview] = []
        if at_root:
            if v:
                sarr, counts, displs = vector_spec(sendbuf, f"{name} sendbuf", p)
            else:
                sarr = as_array(sendbuf, f"{name} sendbuf", blocks=p)
                if sarr.size % p:
                    raise InvalidArgumentError(
                        f"{name}: the send buffer's {sarr.size} items do not split evenly over "
                        f"{p} ranks"
                    )
                n = sarr.size // p
                counts, displs = (n,) * p, tuple(i * n for i in range(p))
            if recv is not None:
                _same_dtype(sarr, recv, name)
                if recv.size < counts[me]:
                    raise InvalidArgumentError(
                        f"{name}: receive buffer holds {recv.size} items, the root's block has "
                        f"{counts[me]}"
                    )
            isz = sarr.dtype.itemsize
            bases.append(_bytes(sarr))
            fixed = {b: (0, displs[b] * isz, counts[b] * isz) for b in range(p)}
            dtype, blk = sarr.dtype, counts[me] * isz
        else:
            assert recv is not None
            bases.append(_bytes(recv))
            fixed = {me: (0, 0, recv.nbytes)}
            dtype, blk = recv.dtype, recv.nbytes
        nbytes = -1 if v else blk * p

        def result() -> None:
            if at_root and recv is not None:
                recv[: counts[me]] = sarr[displs[me] : displs[me] + counts[me]]

        algo = self._algo("scatter", nbytes, "linear" if v else algorithm)
        plan = Plan(name, algo, BufferStore(bases, fixed), result, root, nbytes)
        plan.dtype, plan.check_bytes = dtype, -1 if v else blk
        if not at_root:
            steps = self._steps(plan)
            layout = _layout_with_temp(_ids(steps), fixed, lambda b: blk, bases)
            plan.store = BufferStore(bases, layout)
        return plan

    def Scatter(
        self,
        sendbuf: Any,
        recvbuf: Any,
        root: int = 0,
        *,
        timeout: float | None = None,
        algorithm: str | None = None,
    ) -> None:
        """Scatter equal-size blocks of the root's ``sendbuf``: block ``i`` lands in rank
        ``i``'s ``recvbuf`` (``IN_PLACE`` as ``recvbuf`` at the root: keep its block in place).

        Raises:
            InvalidRankError, InvalidBufferError, InvalidArgumentError: bad root, buffers or
                sizes (before sending).
        """
        self._go(
            self._plan_Scatter("Scatter", sendbuf, recvbuf, root, algorithm, False), timeout, False
        )

    def Iscatter(
        self, sendbuf: Any, recvbuf: Any, root: int = 0, *, algorithm: str | None = None
    ) -> Request:
        """Start a Scatter."""
        return self._go(
            self._plan_Scatter("Iscatter", sendbuf, recvbuf, root, algorithm, False), None, True
        )

    def Scatterv(
        self, sendbuf: Any, recvbuf: Any, root: int = 0, *, timeout: float | None = None
    ) -> None:
        """Scatter blocks of different sizes: ``sendbuf`` at the root is
        ``[buf, counts, displs, datatype]`` (linear algorithm).

        Raises:
            InvalidRankError, InvalidBufferError, InvalidArgumentError: as :meth:`Scatter`.
        """
        self._go(self._plan_Scatter("Scatterv", sendbuf, recvbuf, root, None, True), timeout, False)

    def Iscatterv(self, sendbuf: Any, recvbuf: Any, root: int = 0) -> Request:
        """Start a Scatterv."""
        return self._go(
            self._plan_Scatter("Iscatterv", sendbuf, recvbuf, root, None, True), None, True
        )

    def _plan_Allgather(
        self, name: str, sendbuf: Any, recvbuf: Any, algorithm: str | None, v: bool
    ) -> Plan:
        self._live(name)
        p, me = self.size, self.rank
        if sendbuf is None:  # mpi4py: None is IN_PLACE
            sendbuf = IN_PLACE
        if v:
            rarr, counts, displs = vector_spec(recvbuf, f"{name} recvbuf", p, writable=True)
        else:
            rarr = as_array(recvbuf, f"{name} recvbuf", writable=True, blocks=p)
            if rarr.size % p:
                raise InvalidArgumentError(
                    f"{name}: the receive buffer's {rarr.size} items do not split evenly over "
                    f"{p} ranks"
                )
            n = rarr.size // p
            counts, displs = (n,) * p, tuple(i * n for i in range(p))
        if sendbuf is not IN_PLACE:
            send = as_array(sendbuf, f"{name} sendbuf")
            _same_dtype(send, rarr, name)
            if send.size != counts[me]:
                raise InvalidArgumentError(
                    f"{name}: this rank sends {send.size} items but its receive block has "
                    f"{counts[me]}"
                )
            rarr[displs[me] : displs[me] + counts[me]] = send
        isz = rarr.dtype.itemsize
        layout = {b: (0, displs[b] * isz, counts[b] * isz) for b in range(p)}
        nbytes = sum(counts) * isz
        algo = self._algo("allgather", nbytes, algorithm)
        plan = Plan(name, algo, BufferStore([_bytes(rarr)], layout), lambda: None, -1, nbytes)
        plan.dtype, plan.check_bytes = rarr.dtype, -1 if v else nbytes
        return plan

    def Allgather(
        self,
        sendbuf: Any,
        recvbuf: Any,
        *,
        timeout: float | None = None,
        algorithm: str | None = None,
    ) -> None:
        """Every rank's ``sendbuf`` in rank order in every rank's ``recvbuf`` (``IN_PLACE``:
        each rank's block is already in place).

        Raises:
            InvalidBufferError, InvalidArgumentError: bad buffers or sizes (before sending).
        """
        self._go(
            self._plan_Allgather("Allgather", sendbuf, recvbuf, algorithm, False), timeout, False
        )

    def Iallgather(self, sendbuf: Any, recvbuf: Any, *, algorithm: str | None = None) -> Request:
        """Start an Allgather."""
        return self._go(
            self._plan_Allgather("Iallgather", sendbuf, recvbuf, algorithm, False), None, True
        )

    def Allgatherv(
        self,
        sendbuf: Any,
        recvbuf: Any,
        *,
        timeout: float | None = None,
        algorithm: str | None = None,
    ) -> None:
        """Allgather with per-rank counts: ``recvbuf`` is ``[buf, counts, displs, datatype]``.

        Raises:
            InvalidBufferError, InvalidArgumentError: bad buffers, counts or displacements.
        """
        self._go(
            self._plan_Allgather("Allgatherv", sendbuf, recvbuf, algorithm, True), timeout, False
        )

    def Iallgatherv(self, sendbuf: Any, recvbuf: Any, *, algorithm: str | None = None) -> Request:
        """Start an Allgatherv."""
        return self._go(
            self._plan_Allgather("Iallgatherv", sendbuf, recvbuf, algorithm, True), None, True
        )

    def _plan_Alltoall(
        self, name: str, sendbuf: Any, recvbuf: Any, algorithm: str | None, v: bool
    ) -> Plan:
        self._live(name)
        p, me = self.size, self.rank
        if sendbuf is None:  # mpi4py: None is IN_PLACE
            sendbuf = IN_PLACE
        if v:
            rarr, rcounts, rdispls = vector_spec(recvbuf, f"{name} recvbuf", p, writable=True)
            if sendbuf is IN_PLACE:
                sarr, scounts, sdispls = rarr.copy(), rcounts, rdispls
            else:
                sarr, scounts, sdispls = vector_spec(sendbuf, f"{name} sendbuf", p)
        else:
            rarr = as_array(recvbuf, f"{name} recvbuf", writable=True, blocks=p)
            sarr = (
                rarr.copy()
                if sendbuf is IN_PLACE
                else as_array(sendbuf, f"{name} sendbuf", blocks=p)
            )
            if sarr.size % p or rarr.size < sarr.size:
                raise InvalidArgumentError(
                    f"{name}: the send buffer's {sarr.size} items must split evenly over {p} "
                    f"ranks and fit the receive buffer of {rarr.size}"
                )
            n = sarr.size // p
            scounts = rcounts = (n,) * p
            sdispls = rdispls = tuple(i * n for i in range(p))
        _same_dtype(sarr, rarr, name)
        if scounts[me] != rcounts[me]:
            raise InvalidArgumentError(
                f"{name}: this rank sends itself {scounts[me]} items but expects {rcounts[me]}"
            )
        rarr[rdispls[me] : rdispls[me] + rcounts[me]] = sarr[
            sdispls[me] : sdispls[me] + scounts[me]
        ]
        isz = rarr.dtype.itemsize
        fixed: Layout = {me * p + d: (1, sdispls[d] * isz, scounts[d] * isz) for d in range(p)}
        fixed.update({s * p + me: (0, rdispls[s] * isz, rcounts[s] * isz) for s in range(p)})
        bases = [_bytes(rarr), _bytes(sarr)]
        nbytes = -1 if v else sarr.nbytes
        algo = self._algo("alltoall", nbytes, "pairwise" if v else algorithm)
        plan = Plan(name, algo, BufferStore(bases, fixed), lambda: None, -1, nbytes)
        plan.dtype, plan.check_bytes = rarr.dtype, nbytes
        steps = self._steps(plan)
        if not v:
            blk = scounts[0] * isz
            plan.store = BufferStore(
                bases, _layout_with_temp(_ids(steps), fixed, lambda b: blk, bases)
            )
        return plan

    def Alltoall(
        self,
        sendbuf: Any,
        recvbuf: Any,
        *,
        timeout: float | None = None,
        algorithm: str | None = None,
    ) -> None:
        """Block ``i`` of my ``sendbuf`` goes to rank ``i``; block ``j`` of my ``recvbuf``
        comes from rank ``j`` (``IN_PLACE``: send from ``recvbuf``).

        Raises:
            InvalidBufferError, InvalidArgumentError: bad buffers or sizes (before sending).
        """
        self._go(
            self._plan_Alltoall("Alltoall", sendbuf, recvbuf, algorithm, False), timeout, False
        )

    def Ialltoall(self, sendbuf: Any, recvbuf: Any, *, algorithm: str | None = None) -> Request:
        """Start an Alltoall."""
        return self._go(
            self._plan_Alltoall("Ialltoall", sendbuf, recvbuf, algorithm, False), None, True
        )

    def Alltoallv(self, sendbuf: Any, recvbuf: Any, *, timeout: float | None = None) -> None:
        """Alltoall with per-rank counts: both buffers are ``[buf, counts, displs, datatype]``
        (pairwise exchange).

        Raises:
            InvalidBufferError, InvalidArgumentError: bad buffers, counts or displacements.
        """
        self._go(self._plan_Alltoall("Alltoallv", sendbuf, recvbuf, None, True), timeout, False)

    def Ialltoallv(self, sendbuf: Any, recvbuf: Any) -> Request:
        """Start an Alltoallv."""
        return self._go(self._plan_Alltoall("Ialltoallv", sendbuf, recvbuf, None, True), None, True)

    # ---- reductions, buffers -----------------------------------------------------------------
    def _plan_Reduce(
        self,
        name: str,
        family: str,
        sendbuf: Any,
        recvbuf: Any,
        op: Any,
        root: int,
        algorithm: str | None,
        recvcounts: Sequence[int] | None = None,
    ) -> Plan:
        """Reduce, Allreduce, Reduce_scatter(_block), Scan and Exscan: the input vector, a
        work copy cut into the algorithm's chunks, the output."""
        self._live(name)
        p, me = self.size, self.rank
        if family == "reduce":
            root = self._root(root, name)
        gets_output = family != "reduce" or me == root
        the_op = resolve_op(op, name)
        if sendbuf is None and gets_output:  # mpi4py: None is IN_PLACE
            sendbuf = IN_PLACE
        # a spec's count is per block where the buffer holds one block per rank
        blocks = p if family == "reduce_scatter_block" else 1
        out = (
            as_array(
                recvbuf,
                f"{name} recvbuf",
                writable=True,
                blocks=blocks if sendbuf is IN_PLACE else 1,
            )
            if gets_output
            else None
        )
        if sendbuf is IN_PLACE:
            if out is None:
                raise InvalidArgumentError(f"{name}: IN_PLACE is only valid at the root")
            inp = out
        else:
            inp = as_array(sendbuf, f"{name} sendbuf", blocks=blocks)
            if out is not None:
                _same_dtype(inp, out, name)
        the_op.check_buffer(inp.dtype, name)
        dtype, isz = inp.dtype, inp.dtype.itemsize
        commutative = the_op.is_commutative
        count = inp.size
        if family == "reduce_scatter_block":
            assert out is not None
            n = out.size // p if sendbuf is IN_PLACE else inp.size // p
            if sendbuf is IN_PLACE:
                count = n * p
                if inp.size < count:
                    raise InvalidArgumentError(
                        f"{name}: IN_PLACE buffer holds {inp.size} items, needs {count}"
                    )
                inp = inp[:count]
            elif inp.size != n * p or out.size < n:
                raise InvalidArgumentError(
                    f"{name}: send buffer of {inp.size} items must be {p} blocks of the receive "
                    f"buffer's {out.size} items"
                )
            counts = (n,) * p
        elif family == "reduce_scatter":
            assert out is not None
            if recvcounts is None:
                if sendbuf is IN_PLACE:
                    raise InvalidArgumentError(
                        f"{name}: with IN_PLACE, recvcounts (one count per rank) is required"
                    )
                # mpi4py: every rank's receive buffer gives its count (exchanged here)
                recvcounts = self.allgather(out.size)
            counts = tuple(int(c) for c in recvcounts)
            if len(counts) != p or any(c < 0 for c in counts):
                raise InvalidArgumentError(
                    f"{name}: recvcounts must be {p} non-negative ints, got {recvcounts!r}"
                )
            if inp.size < sum(counts) or out.size < counts[me]:
                raise InvalidArgumentError(
                    f"{name}: recvcounts {counts} add up to {sum(counts)} items; the send buffer "
                    f"holds {inp.size} and this rank's receive buffer {out.size} (needs {counts[me]})"
                )
            count = sum(counts)
            inp = inp[:count]
        elif out is not None and out.size != count:
            raise InvalidArgumentError(
                f"{name}: send buffer has {count} items but the receive buffer has {out.size}"
            )
        nbytes = count * isz
        algo = self._algo(family, nbytes, algorithm, commutative=commutative)
        plan = Plan(name, algo, BufferStore([], {}), lambda: None, root, nbytes, commutative)
        plan.dtype, plan.check_bytes = dtype, nbytes
        if algo.node_level and family == "allreduce" and not name.startswith("I"):
            assert out is not None
            node_in = out.copy() if sendbuf is IN_PLACE else inp
            comm: Any = self
            plan.node = partial(reduce_arena_of(comm).allreduce, comm, node_in, out, the_op)
            return plan
        steps = self._steps(plan)
        present: tuple[int, ...] | None = None
        if family in ("scan", "exscan"):
            work = np.empty(3 * count, dtype)
            work[count : 2 * count] = inp
            if family == "scan":
                work[:count] = inp
                present = (0, 1)
            else:
                present = (1,)
            layout = {i: (0, i * nbytes, nbytes) for i in range(3)}
        elif family in ("reduce_scatter", "reduce_scatter_block"):
            work = inp.copy()
            layout, pos = {}, 0
            for b, c in enumerate(counts):
                layout[b] = (0, pos * isz, c * isz)
                pos += c
        else:
            if out is not None:
                work = out
                if sendbuf is not IN_PLACE:
                    work[...] = inp
            else:
                work = inp.copy() if _writes(steps) else inp
            layout = _chunks(count, algo.chunks(p, nbytes), isz)
        store = BufferStore([_bytes(work)], layout, dtype, the_op, present)
        plan.store = store

        def result() -> None:
            if out is None:
                return
            if family in ("scan", "exscan"):
                if 0 in store.present:
                    out[...] = work[:count]
            elif family in ("reduce_scatter", "reduce_scatter_block"):
                _, off, n = layout[me]
                out[: n // isz] = work[off // isz : (off + n) // isz]

        plan.result = result
        return plan

    def Reduce(
        self,
        sendbuf: Any,
        recvbuf: Any,
        op: Op = SUM,
        root: int = 0,
        *,
        timeout: float | None = None,
        algorithm: str | None = None,
    ) -> None:
        """Element-wise reduction of every rank's ``sendbuf`` with ``op`` (in rank order) into
        the root's ``recvbuf`` (``IN_PLACE`` at the root: its input is ``recvbuf``).

        Raises:
            InvalidRankError: bad ``root``.
            InvalidArgumentTypeError: ``op`` is not an operator.
            InvalidArgumentError: ``op`` undefined for the dtype; mismatched sizes or dtypes.
        """
        self._go(
            self._plan_Reduce("Reduce", "reduce", sendbuf, recvbuf, op, root, algorithm),
            timeout,
            False,
        )

    def Ireduce(
        self,
        sendbuf: Any,
        recvbuf: Any,
        op: Op = SUM,
        root: int = 0,
        *,
        algorithm: str | None = None,
    ) -> Request:
        """Start a Reduce."""
        return self._go(
            self._plan_Reduce("Ireduce", "reduce", sendbuf, recvbuf, op, root, algorithm),
            None,
            True,
        )

    def Allreduce(
        self,
        sendbuf: Any,
        recvbuf: Any,
        op: Op = SUM,
        *,
        timeout: float | None = None,
        algorithm: str | None = None,
    ) -> None:
        """Element-wise reduction of every rank's ``sendbuf`` with ``op`` (in rank order) into
        every rank's ``recvbuf`` (``IN_PLACE``: the input is ``recvbuf``).

        Raises:
            InvalidArgumentTypeError: ``op`` is not an operator.
            InvalidArgumentError: ``op`` undefined for the dtype; mismatched sizes or dtypes.
        """
        self._go(
            self._plan_Reduce("Allreduce", "allreduce", sendbuf, recvbuf, op, -1, algorithm),
            timeout,
            False,
        )

    def Iallreduce(
        self, sendbuf: Any, recvbuf: Any, op: Op = SUM, *, algorithm: str | None = None
    ) -> Request:
        """Start an Allreduce."""
        return self._go(
            self._plan_Reduce("Iallreduce", "allreduce", sendbuf, recvbuf, op, -1, algorithm),
            None,
            True,
        )

    def Reduce_scatter_block(
        self,
        sendbuf: Any,
        recvbuf: Any,
        op: Op = SUM,
        *,
        timeout: float | None = None,
        algorithm: str | None = None,
    ) -> None:
        """Reduce ``size`` equal blocks element-wise; rank ``i`` receives the result's block ``i``.

        Raises:
            InvalidArgumentTypeError, InvalidArgumentError: as :meth:`Allreduce`.
        """
        self._go(
            self._plan_Reduce(
                "Reduce_scatter_block", "reduce_scatter_block", sendbuf, recvbuf, op, -1, algorithm
            ),
            timeout,
            False,
        )

    def Ireduce_scatter_block(
        self, sendbuf: Any, recvbuf: Any, op: Op = SUM, *, algorithm: str | None = None
    ) -> Request:
        """Start a Reduce_scatter_block."""
        return self._go(
            self._plan_Reduce(
                "Ireduce_scatter_block", "reduce_scatter_block", sendbuf, recvbuf, op, -1, algorithm
            ),
            None,
            True,
        )

    def Reduce_scatter(
        self,
        sendbuf: Any,
        recvbuf: Any,
        recvcounts: Sequence[int] | None = None,
        op: Op = SUM,
        *,
        timeout: float | None = None,
        algorithm: str | None = None,
    ) -> None:
        """Reduce element-wise; rank ``i`` receives ``recvcounts[i]`` items of the result, in
        rank order.

        Raises:
            InvalidArgumentTypeError, InvalidArgumentError: as :meth:`Allreduce`; counts that
                do not add up to the send buffer.
        """
        self._go(
            self._plan_Reduce(
                "Reduce_scatter", "reduce_scatter", sendbuf, recvbuf, op, -1, algorithm, recvcounts
            ),
            timeout,
            False,
        )

    def Ireduce_scatter(
        self,
        sendbuf: Any,
        recvbuf: Any,
        recvcounts: Sequence[int] | None = None,
        op: Op = SUM,
        *,
        algorithm: str | None = None,
    ) -> Request:
        """Start a Reduce_scatter."""
        return self._go(
            self._plan_Reduce(
                "Ireduce_scatter", "reduce_scatter", sendbuf, recvbuf, op, -1, algorithm, recvcounts
            ),
            None,
            True,
        )

    def Scan(
        self,
        sendbuf: Any,
        recvbuf: Any,
        op: Op = SUM,
        *,
        timeout: float | None = None,
        algorithm: str | None = None,
    ) -> None:
        """Inclusive prefix reduction: rank ``i``'s ``recvbuf`` = ``x0 op ... op xi``.

        Raises:
            InvalidArgumentTypeError, InvalidArgumentError: as :meth:`Allreduce`.
        """
        self._go(
            self._plan_Reduce("Scan", "scan", sendbuf, recvbuf, op, -1, algorithm), timeout, False
        )

    def Iscan(
        self, sendbuf: Any, recvbuf: Any, op: Op = SUM, *, algorithm: str | None = None
    ) -> Request:
        """Start a Scan."""
        return self._go(
            self._plan_Reduce("Iscan", "scan", sendbuf, recvbuf, op, -1, algorithm), None, True
        )

    def Exscan(
        self,
        sendbuf: Any,
        recvbuf: Any,
        op: Op = SUM,
        *,
        timeout: float | None = None,
        algorithm: str | None = None,
    ) -> None:
        """Exclusive prefix reduction: rank ``i``'s ``recvbuf`` = ``x0 op ... op x(i-1)``;
        rank 0's ``recvbuf`` is left unchanged.

        Raises:
            InvalidArgumentTypeError, InvalidArgumentError: as :meth:`Allreduce`.
        """
        self._go(
            self._plan_Reduce("Exscan", "exscan", sendbuf, recvbuf, op, -1, algorithm),
            timeout,
            False,
        )

    def Iexscan(
        self, sendbuf: Any, recvbuf: Any, op: Op = SUM, *, algorithm: str | None = None
    ) -> Request:
        """Start an Exscan."""
        return self._go(
            self._plan_Reduce("Iexscan", "exscan", sendbuf, recvbuf, op, -1, algorithm), None, True
        )


def _serialised(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` holding the communicator's lock for ``name`` (mpi4py's comm lock table):
    threads that call the same object collective on one communicator take turns. A call
    made inside the collective by the thread that holds the lock (a node-level path that
    broadcasts a segment name, say) goes straight through."""

    @wraps(method)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        me = get_ident()
        owners = self._lock_owners
        if owners.get(name) == me:
            return method(self, *args, **kwargs)
        with self._lock(name):
            owners[name] = me
            try:
                return method(self, *args, **kwargs)
            finally:
                del owners[name]

    return locked


for _name in (
    "bcast",
    "gather",
    "scatter",
    "allgather",
    "alltoall",
    "reduce",
    "allreduce",
    "scan",
    "exscan",
):
    setattr(Collectives, _name, _serialised(_name, getattr(Collectives, _name)))
