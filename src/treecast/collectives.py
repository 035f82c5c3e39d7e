"""The collectives of :class:`treecast.Comm`: plan, select, run on the one engine.

Every collective call is built the same way: a pure planning function of ``plans.py``
(validates every argument before anything is sent, lays out the store of blocks, selects
the algorithm) gives a :class:`~treecast.plans.Plan`; the blocking form runs its schedule to
completion with :func:`engine.store.run`, the ``I*`` form hands the same generator to a
:class:`~treecast.engine.progress.CollectiveRequest`. Both forms of every collective come
from one table (:data:`_COLLECTIVES`), so each is written once. Node-level algorithms run
through the communicator's node memory instead of a schedule (:meth:`Collectives._run_node`).
Lowercase methods move Python objects, capitalised ones NumPy arrays and buffer-protocol
objects.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from functools import partial, wraps
from threading import get_ident
from typing import TYPE_CHECKING, Any

from . import plans
from .algorithms.hierarchical import node_count
from .algorithms.schedule import Step
from .constants import IN_PLACE
from .engine.node import arena_of, reduce_arena_of
from .engine.progress import CollectiveRequest
from .engine.store import BufferStore, ObjectStore, Store, execute, run, sent_ids
from .errors import CollectiveMismatchError
from .message import frames as frames_mod
from .message.buffers import as_array
from .ops import SUM, Op
from .plans import Caller, NodeCall, Plan
from .request import Request
from .routes import Route, route
from .selection.rules import select
from .tracing.events import (
    BARRIER,
    BCAST,
    CALL,
    FILL,
    UNSET,
    clock,
    note_error,
    records,
    tid,
)
from .transports.base import Call, alloc_frame, describe
from .transports.capabilities import NODE_MEMORY

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .transports.base import Transport
    from .transports.node_memory import NodeMemory

DEBUG = os.environ.get("TREECAST_DEBUG", "") not in ("", "0")
"""``TREECAST_DEBUG=1``: before each collective, all ranks compare what they called."""
_DEBUG_TAG_BIT = 1 << 62
"""Set in the tag of a debug check's messages: outside the collective sequence numbers."""
_NOTHING = memoryview(bytearray())
"""The payload of a barrier's messages (never written: it has no bytes)."""
_WHOLE_EMPTY = {0: (0, 0, 0)}
"""A barrier's store layout: block 0 is the whole (empty) payload."""


def _shared_bcast(comm: Any, obj: Any, root: int, timeout: float | None) -> Any:
    """``bcast(copy=False)`` (:func:`treecast.engine.sharing.share_object`)."""
    from .engine.sharing import share_object

    return share_object(comm, obj, root, timeout)


def _object_result(store: ObjectStore, result: Callable[[], Any], what: Call) -> Any:
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


_TIMEOUT = inspect.Parameter(
    "timeout", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="float | None"
)


def _signature(plan: Callable[..., Plan], *, blocking: bool) -> inspect.Signature:
    """The public method's signature: the plan's, ``self`` for its :class:`Caller`, plus
    ``timeout`` for the blocking form (before ``algorithm``, as the methods always had)."""
    sig = inspect.signature(plan)
    params = list(sig.parameters.values())
    params[0] = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if blocking:
        at = next(
            (i for i, p in enumerate(params) if p.kind is inspect.Parameter.KEYWORD_ONLY),
            len(params),
        )
        params.insert(at, _TIMEOUT)
        return sig.replace(parameters=params, return_annotation="Any")
    return sig.replace(parameters=params, return_annotation="Request")


@records("collective")
def _recorded_go(
    self: Any,
    name: str,
    plan: Callable[..., Plan],
    caller: Caller,
    args: Any,
    kwargs: Any,
    timeout: float | None,
    nonblocking: bool,
    t0: int = 0,
    numbered: Call | None = None,
) -> Any:
    """A collective's method with tracing on (``self._t._rec`` is not None): plan and run
    as the method does, then note the call's slice (from ``t0``, if the call began before),
    its algorithm from the plan. ``numbered``: the call's number, taken (and its
    ``TREECAST_DEBUG`` check made) before planning (:meth:`Collectives._counted`)."""
    rec = self._t._rec
    t0 = t0 or clock()
    p = what = UNSET  # the plan and the call's Call, once made
    if numbered is not None:
        what = numbered
    try:
        p = plan(caller, *args, **kwargs)
        if numbered is None:
            what = self._begin(p.name, p.root)
        return self._go(
            p, timeout, nonblocking=nonblocking, what=what, checked=numbered is not None
        )
    except BaseException as exc:
        note_error(rec, exc)
        raise
    finally:
        algo = None if p is UNSET else p.algo.name
        rec.extend((CALL, tid(), t0, clock(), name, self._ctx, what.seq, p.root, algo, p.nbytes))


def _blocking(name: str, plan: Callable[..., Plan]) -> Callable[..., Any]:
    """The blocking method ``name``: plan, then run to completion."""

    def method(self: Any, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        caller = self._callers.get(name) if not self._freed else None
        if caller is None:
            caller = self._caller(name)
        if self._t._rec is not None:
            return _recorded_go(self, name, plan, caller, args, kwargs, timeout, False)
        return self._go(plan(caller, *args, **kwargs), timeout)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = plan.__doc__
    method.__signature__ = _signature(plan, blocking=True)  # type: ignore[attr-defined]
    return method


def _nonblocking(name: str, plan: Callable[..., Plan]) -> Callable[..., Request]:
    """The ``I*`` method of ``name``: plan, then return the request that runs it."""
    iname = plans.nonblocking_name(name)

    def method(self: Any, *args: Any, **kwargs: Any) -> Request:
        c = self._caller(iname)
        request: Request
        if self._t._rec is not None:
            request = _recorded_go(self, iname, plan, c, args, kwargs, None, True)
        else:
            request = self._go(plan(c, *args, **kwargs), None, nonblocking=True)
        return request

    method.__name__ = method.__qualname__ = iname
    method.__doc__ = f"Start :meth:`{name}`; the request's ``wait()`` gives its result."
    method.__signature__ = _signature(plan, blocking=False)  # type: ignore[attr-defined]
    return method


def _twins(
    name: str, plan: Callable[..., Plan], *, serialised: bool = False
) -> tuple[Callable[..., Any], Callable[..., Request]]:
    """The blocking and the ``I*`` method of the collective ``name``, both from ``plan``;
    ``serialised``: the blocking form takes the communicator's lock for ``name``."""
    blocking = _blocking(name, plan)
    if serialised:
        blocking = _serialised(name, blocking)
    return blocking, _nonblocking(name, plan)


class Collectives:
    """Mixin of :class:`treecast.Comm` with every collective, both forms, blocking and ``I*``."""

    if TYPE_CHECKING:  # provided by Comm
        _t: Transport
        _group: tuple[int, ...]
        _ctx: int
        _coll_ctx: int
        _caps: frozenset[str]
        _nodes: tuple[int, ...] | None
        _freed: bool
        _callers: dict[str, Caller]
        rank: int
        size: int
        name: str

        def _next_tag(self) -> int: ...
        def _live(self, op: str) -> None: ...
        def _node_memory(self, what: str) -> NodeMemory: ...
        def _node_split(self, root: int) -> tuple[Any, Any, int]: ...

    # ---- running a plan --------------------------------------------------------------------
    def _caller(self, name: str) -> Caller:
        """This communicator's facts for planning the call ``name`` (made once per name)."""
        if self._freed:
            self._live(name)
        try:
            return self._callers[name]
        except KeyError:
            c = self._callers[name] = Caller(self.rank, self.size, name, self._caps, self._nodes)
            return c

    def _go(
        self,
        plan: Plan,
        timeout: float | None,
        *,
        nonblocking: bool = False,
        what: Call | None = None,
        checked: bool = False,
    ) -> Any:
        """Run ``plan``: to completion (its result), or as a request (``nonblocking``);
        ``what``: its number, taken earlier with :meth:`_begin` (a call of two steps
        numbers both when it starts: ``Reduce_scatter`` without counts), and ``checked``:
        with its ``TREECAST_DEBUG`` check made then too (:meth:`_counted`)."""
        if what is None:
            what = self._begin(plan.name, plan.root)
        if DEBUG and not checked:
            self._debug_check(what, plan.check_bytes, "" if plan.dtype is None else str(plan.dtype))
        if plan.node is not None:
            self._run_node(plan.node, timeout, what)
            return plan.result()
        steps = plan.algo.steps(
            self.rank, self.size, max(plan.root, 0), plan.nbytes, plan.commutative, self._nodes
        )
        return self._run_steps(steps, plan.store, plan.result, what, timeout, nonblocking)

    def _begin(self, name: str, root: int) -> Call:
        """Number the call ``name``: the tag of all its messages."""
        # tuple.__new__ builds the NamedTuple without a Python-level frame (hot path)
        return tuple.__new__(Call, (name, self.name, self._next_tag(), root))

    def _run_steps(
        self,
        steps: tuple[Step, ...],
        store: Store,
        result: Callable[[], Any],
        what: Call,
        timeout: float | None,
        nonblocking: bool,
    ) -> Any:
        """Run ``steps`` over ``store`` on the engine, then give ``result()``: to completion
        (blocking), or as the request that does (``nonblocking``). Every collective, and
        every other exchange of a communicator's ranks, runs through here."""
        tag = what.seq
        objects = store if type(store) is ObjectStore else None
        if objects is not None:
            # pickle what this rank will send now (the root of a gather never pickles its
            # own); an object that cannot be pickled goes as a marker, so that every rank
            # ends the collective in step, and raises once it has ended (_object_result)
            objects.rank = self.rank
            objects.freeze(sent_ids(steps))
            result = partial(_object_result, objects, result, what)
        if nonblocking:
            gen = execute(steps, self._t, self._group, self._coll_ctx, tag, store, what)
            return CollectiveRequest(self._t, gen, result, what)
        run(steps, self._t, self._group, self._coll_ctx, tag, store, what, timeout)
        return result()

    def _run_node(self, node: NodeCall, timeout: float | None, what: Call) -> None:
        """Run a node-level algorithm through this communicator's node memory: the one
        place where a collective leaves the schedule engine."""
        comm: Any = self
        if node.kind == "bcast":
            (views,) = node.args
            if self._nodes is not None:
                self._bcast_across_nodes(views, what.root, timeout, what)
                return
            arena_of(comm).bcast(comm, views, what.root, timeout, what)
        elif node.kind == "allreduce":
            inp, out, op = node.args
            reduce_arena_of(comm).allreduce(comm, inp, out, op, timeout, what)
        else:
            raise NotImplementedError(f"node-level {node.kind}")

    def _bcast_across_nodes(
        self, views: list[memoryview], root: int, timeout: float | None, what: Call
    ) -> None:
        """The bytes of a broadcast on a communicator that spans nodes: among the node
        leaders (the root, and the first rank of each other node: one transfer into each
        node), then inside each node through its arena (one write, every rank reads)."""
        node, leaders, local_root = self._node_split(root)
        if leaders is not None:
            for view in views:
                leaders.Bcast(view, root=0, timeout=timeout)
        if node.size == 1:
            return
        if NODE_MEMORY in node._caps:
            arena_of(node).bcast(node, views, local_root, timeout, what)
        else:
            for view in views:
                node.Bcast(view, root=local_root, timeout=timeout)

    def _allgather_small(self, obj: Any, what: Call) -> list[Any]:
        """Every rank's small object, in rank order, on the engine with ``what`` as the
        signature and tag (building communicators, debug checks: calls outside the
        collective sequence, so they never take a number the user's collectives use).

        Raises:
            CollectiveMismatchError: a peer is in another collective.
        """
        store = ObjectStore({self.rank: obj}, where=what.op)
        algo = select("allgather", self.size, -1, buffer=False)
        steps = algo.steps(self.rank, self.size, 0, -1)
        rec = self._t._rec
        if rec is not None:  # the algorithm of the call that numbered ``what`` (split)
            rec.append((FILL, tid(), clock(), algo.name, -1, "allgather"))
        run(steps, self._t, self._group, self._coll_ctx, what.seq, store, what, None)
        return [store.get(b) for b in range(self.size)]

    def _debug_check(self, what: Call, nbytes: int, dtype: str = "") -> None:
        """With ``TREECAST_DEBUG=1``: every rank compares (collective, root, bytes) with every
        other before the collective runs, so that also ranks that would only send (a root)
        raise. Costs a linear exchange per collective.

        Raises:
            CollectiveMismatchError: naming the disagreeing ranks and what each called.
        """
        mine = (what.op, what.root, nbytes, dtype)
        everyone = self._allgather_small(
            mine, Call("check", what.comm, what.seq | _DEBUG_TAG_BIT, -1)
        )
        odd = [(r, e) for r, e in enumerate(everyone) if e[:2] != mine[:2]]
        if odd:
            listing = "; ".join(f"rank {r} called {e[0]} with root {e[1]}" for r, e in odd)
            raise CollectiveMismatchError(
                f"{describe(what)}: ranks disagree on the collective: {listing}; this rank "
                f"called {what.op} with root {what.root}"
            )
        dtypes = {e[3] for e in everyone if e[3]}
        if len(dtypes) > 1:
            listing = ", ".join(
                f"rank {r}: {e[3] or 'untyped buffer'}" for r, e in enumerate(everyone)
            )
            raise CollectiveMismatchError(
                f"{describe(what)}: ranks passed buffers of different dtypes ({listing})"
            )
        sizes = {e[2] for e in everyone if e[2] >= 0}
        if len(sizes) > 1:
            listing = ", ".join(f"rank {r}: {e[2]}" for r, e in enumerate(everyone))
            raise CollectiveMismatchError(
                f"{describe(what)}: ranks passed buffers of different sizes in bytes ({listing})"
            )

    # ---- what a call would run ----------------------------------------------------------------
    def algorithm_for(
        self,
        call: str,
        nbytes: int = -1,
        *,
        commutative: bool = True,
        algorithm: str | None = None,
    ) -> Route:
        """What the collective ``call`` would run on this communicator: the algorithm the
        selection picks (rule table, ``algorithm=``, ``TREECAST_<COLLECTIVE>_ALGORITHM``,
        the transport's capabilities, the node layout), asked as the call asks it, with
        the node-memory and across-nodes stages a broadcast takes besides its schedule.
        Local: nothing is sent.

        >>> comm.algorithm_for("Bcast", 64 << 20).algorithm.name   # one node, 4 ranks
        'shm_one_write'
        >>> str(comm.algorithm_for("bcast", 64 << 20))   # an object holding a 64 MiB array
        'binomial (the pickle stream) + shm_one_write (the out-of-band buffers)'

        Args:
            call: a collective's method name: ``"Bcast"``, ``"bcast"``, ``"Allreduce"``,
                ``"Ibcast"``, ... (capitalised: the buffer form).
            nbytes: the bytes of the call: a buffer form's buffer (``Bcast``), its whole
                receive buffer (``Gather``, ``Allgather``), its send buffer (``Scatter`` at
                the root, ``Alltoall``, reductions); for an object ``bcast``, the bytes of the
                object's NumPy arrays (sent out of band; -1: none); ignored for other objects.
            commutative: whether a buffer reduction's operator commutes.
            algorithm: the ``algorithm=`` the call would be given.

        Returns:
            A :class:`treecast.routes.Route`: its ``stages`` (what travels, by which
            algorithm; ``Stage.peers(rank, root)`` gives a tree's parent and children) and
            ``algorithm``, the one that moves the bulk of the bytes.

        Raises:
            InvalidArgumentError: ``call`` is not a collective, or ``algorithm`` unknown.
        """
        if self._freed:
            self._live("algorithm_for")
        c = Caller(self.rank, self.size, call, self._caps, self._nodes)
        return route(
            c,
            nbytes,
            commutative=commutative,
            algorithm=algorithm,
            node_capabilities=self._t.capabilities,
        )

    # ---- barrier ----------------------------------------------------------------------------
    @records("collective", "barrier")
    def barrier(self, *, timeout: float | None = None) -> None:
        """Block until every rank of the communicator has called ``barrier`` (dissemination).

        Raises:
            TimeoutError, ProcessFailedError: as any blocking call.
        """
        t = self._t
        rec = t._rec
        t0 = clock() if rec is not None else 0
        what = algo = UNSET  # the call's Call and Algorithm, once known
        try:
            if self._freed:
                self._live("barrier")
            # plans.plan_barrier, inlined: a barrier is all latency
            caps, nodes = self._caps, self._nodes
            if nodes is None:  # one node: the call as it was before layouts existed
                algo = select("barrier", self.size, 0, capabilities=caps)
                steps = algo.steps(self.rank, self.size, 0, 0)
            else:
                algo = select("barrier", self.size, 0, capabilities=caps, nodes=node_count(nodes))
                steps = algo.steps(self.rank, self.size, 0, 0, True, nodes)
            what = self._begin("barrier", -1)
            if DEBUG:
                self._debug_check(what, -1)
            store = BufferStore([_NOTHING], _WHOLE_EMPTY)
            run(steps, t, self._group, self._coll_ctx, what.seq, store, what, timeout)
        except BaseException as exc:
            if rec is not None:
                note_error(rec, exc)
            raise
        finally:
            if rec is not None:
                rec.extend((BARRIER, tid(), t0, clock(), self._ctx, what.seq, algo.name))

    Barrier = barrier

    # ---- object broadcast -------------------------------------------------------------------
    @records("collective", "bcast")
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
        rec = self._t._rec
        t0 = clock() if rec is not None else 0
        what = algo = UNSET  # the call's Call and Algorithm, once known
        try:
            if self._freed:
                self._live("bcast")
            if type(root) is not int or not 0 <= root < self.size:
                root = plans.check_root(self._caller("bcast"), root)
            if not copy:
                return _shared_bcast(self, obj, root, timeout)
            if self.size == 1:
                return obj
            # the planning of plans.plan_bcast, inlined: this is the latency-critical call
            caps, nodes = self._caps, self._nodes
            k = 1 if nodes is None else node_count(nodes)  # the nodes it spans
            algo = select(
                "bcast", self.size, -1, buffer=False, forced=algorithm, capabilities=caps, nodes=k
            )
            store = ObjectStore(where="bcast")
            failure = None
            node: list[memoryview] | None = None
            if self.rank == root:
                # unpicklable: a marker goes, the others raise, the root once it is sent
                frames, failure = frames_mod.dumps_or_marker(obj, "bcast", root)
                if len(frames) > 1 and algorithm is None:
                    node = self._node_part(frames, caps)
                    if node is not None:
                        frames = [frames_mod.dumps_node_header(frames[0], [f.nbytes for f in node])]
                store.frames[0] = frames
            what = self._begin("bcast", root)
            if DEBUG:
                self._debug_check(what, -1)
            steps = algo.steps(self.rank, self.size, root, -1, True, nodes)
            run(steps, self._t, self._group, self._coll_ctx, what.seq, store, what, timeout)
            if self.rank != root:
                return self._bcast_result(store.frames[0], timeout, what)
            if node is not None or failure is not None:
                self._bcast_root_end(node, failure, timeout, what)
            return obj
        except BaseException as exc:
            if rec is not None:
                note_error(rec, exc)
            raise
        finally:
            if rec is not None:
                rec.extend((BCAST, tid(), t0, clock(), self._ctx, what.seq, root, algo.name))

    def _bcast_root_end(
        self,
        node: list[memoryview] | None,
        failure: BaseException | None,
        timeout: float | None,
        what: Call,
    ) -> None:
        """The root's end of an object broadcast, once its schedule has run: the object's
        large buffers through node memory, then the error of an object it could not pickle."""
        if node is not None:
            self._run_node(NodeCall("bcast", (node,)), timeout, what)
        if failure is not None:
            raise failure

    def _node_part(
        self, frames: list[memoryview], capabilities: frozenset[str] | None
    ) -> list[memoryview] | None:
        """The out-of-band buffers of a broadcast object that go through node memory: the
        root picks by their size (the others cannot know it) and says so in the message."""
        big = sum(f.nbytes for f in frames[1:])
        if self._nodes is not None:  # leaders, then each node's arena
            return frames[1:] if plans.node_stage(self._nodes, big) else None
        algo = select("bcast", self.size, big, capabilities=capabilities)
        return frames[1:] if algo.node_level else None

    def _bcast_result(self, frames: list[memoryview], timeout: float | None, what: Call) -> Any:
        """A receiving rank's object, from the frames the schedule brought (and the node
        arena, when the root sent a node header)."""
        head = frames_mod.loads_node_header(frames[0])
        if head is not None:
            first, lengths = head
            bufs = [alloc_frame(n) for n in lengths]
            self._run_node(NodeCall("bcast", (bufs,)), timeout, what)
            return frames_mod.loads([first, *bufs], "bcast")
        got = frames_mod.loads(frames, "bcast")
        if type(got) is frames_mod.SendFailed:
            raise got.error(describe(what))
        return got

    # ---- Reduce_scatter without counts: every rank's receive buffer gives its count ----------
    def _reduce_scatter(
        self,
        name: str,
        args: tuple[Any, Any, Any, Any],
        algorithm: str | None,
        timeout: float | None,
        nonblocking: bool,
    ) -> Any:
        """``Reduce_scatter`` or ``Ireduce_scatter`` (``name``) of ``(sendbuf, recvbuf,
        recvcounts, op)``. Without ``recvcounts`` every rank's receive buffer gives its
        count (mpi4py), exchanged once every argument is checked; the call is numbered
        right after that exchange and before it is planned, as ``comm.aio``'s is (see
        :meth:`_counted`), so that an error found in planning uses up its number on every
        rank alike, whichever form each called."""
        t0 = clock() if self._t._rec is not None else 0  # the slice holds the counts' exchange
        sendbuf, recvbuf, recvcounts, op = args
        what = None
        if recvcounts is None and sendbuf is not IN_PLACE and sendbuf is not None:
            mine = plans.reduce_scatter_count(self._caller(name), sendbuf, recvbuf, op)
            recvcounts = self.allgather(mine)
            what = self._counted(name, sendbuf)
        c = self._caller(name)
        args = (sendbuf, recvbuf, recvcounts, op)
        kwargs: dict[str, Any] = {"algorithm": algorithm}
        if self._t._rec is not None:
            return _recorded_go(
                self,
                name,
                plans.plan_Reduce_scatter,
                c,
                args,
                kwargs,
                timeout,
                nonblocking,
                t0,
                what,
            )
        plan = plans.plan_Reduce_scatter(c, *args, **kwargs)
        checked = what is not None
        return self._go(plan, timeout, nonblocking=nonblocking, what=what, checked=checked)

    def _counted(self, name: str, sendbuf: Any) -> Call:
        """Number a ``Reduce_scatter`` whose ranks exchange their counts (the exchange is
        numbered first), and make its ``TREECAST_DEBUG`` check now, with the bytes of the
        whole send buffer (its counts are not known yet): the sync forms right after the
        exchange, ``comm.aio`` as the exchange starts, so that no blocking check runs late
        behind a collective started after it."""
        what = self._begin(name, -1)
        if DEBUG:
            inp = as_array(sendbuf, f"{name} sendbuf")  # checked already
            self._debug_check(what, inp.nbytes, str(inp.dtype))
        return what

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
        args = (sendbuf, recvbuf, recvcounts, op)
        self._reduce_scatter("Reduce_scatter", args, algorithm, timeout, nonblocking=False)

    def Ireduce_scatter(
        self,
        sendbuf: Any,
        recvbuf: Any,
        recvcounts: Sequence[int] | None = None,
        op: Op = SUM,
        *,
        algorithm: str | None = None,
    ) -> Request:
        args = (sendbuf, recvbuf, recvcounts, op)
        request: Request = self._reduce_scatter(
            "Ireduce_scatter", args, algorithm, None, nonblocking=True
        )
        return request

    Reduce_scatter.__doc__ = plans.plan_Reduce_scatter.__doc__
    Ireduce_scatter.__doc__ = "Start a Reduce_scatter; ``wait()`` completes it."

    # ---- every other collective: both forms from its planning function ----------------------
    ibarrier = Ibarrier = _nonblocking("barrier", plans.plan_barrier)
    ibcast = _nonblocking("bcast", plans.plan_bcast)
    Bcast, Ibcast = _twins("Bcast", plans.plan_Bcast)
    gather, igather = _twins("gather", plans.plan_gather, serialised=True)
    scatter, iscatter = _twins("scatter", plans.plan_scatter, serialised=True)
    allgather, iallgather = _twins("allgather", plans.plan_allgather, serialised=True)
    alltoall, ialltoall = _twins("alltoall", plans.plan_alltoall, serialised=True)
    reduce, ireduce = _twins("reduce", plans.plan_reduce, serialised=True)
    allreduce, iallreduce = _twins("allreduce", plans.plan_allreduce, serialised=True)
    scan, iscan = _twins("scan", plans.plan_scan, serialised=True)
    exscan, iexscan = _twins("exscan", plans.plan_exscan, serialised=True)
    Gather, Igather = _twins("Gather", plans.plan_Gather)
    Gatherv, Igatherv = _twins("Gatherv", plans.plan_Gatherv)
    Scatter, Iscatter = _twins("Scatter", plans.plan_Scatter)
    Scatterv, Iscatterv = _twins("Scatterv", plans.plan_Scatterv)
    Allgather, Iallgather = _twins("Allgather", plans.plan_Allgather)
    Allgatherv, Iallgatherv = _twins("Allgatherv", plans.plan_Allgatherv)
    Alltoall, Ialltoall = _twins("Alltoall", plans.plan_Alltoall)
    Alltoallv, Ialltoallv = _twins("Alltoallv", plans.plan_Alltoallv)
    Reduce, Ireduce = _twins("Reduce", plans.plan_Reduce)
    Allreduce, Iallreduce = _twins("Allreduce", plans.plan_Allreduce)
    Reduce_scatter_block, Ireduce_scatter_block = _twins(
        "Reduce_scatter_block", plans.plan_Reduce_scatter_block
    )
    Scan, Iscan = _twins("Scan", plans.plan_Scan)
    Exscan, Iexscan = _twins("Exscan", plans.plan_Exscan)


Collectives.bcast = _serialised("bcast", Collectives.bcast)  # type: ignore[method-assign]
