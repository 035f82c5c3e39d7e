"""asyncio interface of a communicator: ``await comm.aio.bcast(x, root=0)``.

``comm.aio`` is an :class:`AsyncComm`: every blocking collective and point-to-point method
of the communicator, with the same name and arguments, as a coroutine
(``await comm.aio.recv(source=1)``, ``await comm.aio.Allreduce(a, b)``). Awaiting never
blocks the event loop: other tasks run while a call is in flight, several tasks may have
calls in flight at once (on different communicators, see below), and an idle wait sleeps.

How it works. Everything runs in the event loop's thread (treecast is
``THREAD_SERIALIZED``: its transport is never polled from two threads). A call starts the
non-blocking form (a collective its ``I*`` twin, a send ``isend``/``Isend``...) and awaits
it. One progress driver per event loop (:class:`_Driver`, a chain of loop callbacks, not a
task) polls the transport once per turn for every pending operation of the process, then
resolves those that have completed. It spins for a few loop turns, then yields the CPU
between turns for 2 ms, then sleeps 1 ms between turns (the event loop's timer
resolution), and while sleeping makes the checks of a blocking wait: ``timeout=``, dead
and finished peers (:class:`~treecast.transports.base.BlockedWait`). Receives are not
posted: a receive waits until the next matching message has wholly arrived and then takes
it at once, in the task that asked for it, so no message ever belongs to a task that is
gone.

Matching. A collective through ``comm.aio`` is the ``I*`` form: on every rank the same
call must be made through ``comm.aio`` or the ``I*`` method (as in MPI, a non-blocking
collective never matches a blocking one; treecast raises ``CollectiveMismatchError``).
Point-to-point messages match anything. Collectives of one communicator are numbered in
the order they *start*, so tasks that start collectives on one communicator concurrently
must start them in the same order on every rank; give independent tasks their own
communicator (``comm.dup()``), whose collectives then run concurrently.

Errors. Bad arguments raise the sync call's exception before anything is sent;
``timeout=`` (default ``TREECAST_TIMEOUT``) raises the same :class:`TimeoutError` with the
same hang report, a dead or finished peer the same :class:`ProcessFailedError`. A wait in
``comm.aio`` never counts as blocked for deadlock detection (another task may still
send), so it never raises ``DeadlockError``: give it a ``timeout=``.

Cancellation (``task.cancel()``, ``asyncio.timeout``, ``wait_for``). A receive (``recv``,
``Recv``, ``probe``, ``mprobe``) is withdrawn: it has taken nothing, and the message it
waited for goes to the next receive. Every send and every collective completes: cancelling
the awaiting task does not stop it; the driver keeps progressing it (until it completes,
fails, or its ``timeout=`` passes), its result or error is dropped, and later calls on the
communicator stay in order. ``sendrecv`` withdraws its receive and completes its send.
Awaiting a request the caller made (:meth:`AsyncComm.wait`) leaves the request as it is.

Mixing. Sync and ``comm.aio`` calls may be mixed on one communicator in one process when
they come in order; a sync call blocks the event loop until it returns (``I*`` requests
and ``comm.aio`` collectives in flight still progress inside it). ``TREECAST_DEBUG=1``'s
check before each collective is a blocking exchange. ``bcast(copy=False)`` and the object
neighbourhood collectives have no ``comm.aio`` form.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import time
import warnings
import weakref
from collections.abc import Callable, Coroutine
from typing import Any

from . import plans
from .collectives import Collectives
from .constants import ANY_SOURCE, ANY_TAG, IN_PLACE, PROC_NULL
from .engine.progress import CollectiveRequest
from .errors import InvalidArgumentTypeError
from .message import frames as frames_mod
from .message.buffers import byte_view
from .ops import SUM, Op
from .p2p import PointToPoint
from .request import Request, _describe_op, proc_null_status
from .status import Status
from .transports.base import Activity, BlockedWait, RecvOp, SendOp, Transport
from .transports.wait import (
    MAX_SLEEP,
    OVERSUBSCRIBED_YIELD_SECONDS,
    YIELD_SECONDS,
    oversubscribed,
)

__all__ = ["AsyncComm"]

SPIN_TURNS = 32
"""Loop turns that poll without pausing before the driver starts yielding the CPU."""
OVERSUBSCRIBED_SPIN_TURNS = 4
"""... with more ranks than cores (a spinning rank steals the core its peer needs)."""
FIRST_SLEEP = 50e-6
"""The driver's first sleep; it doubles up to :data:`~treecast.transports.wait.MAX_SLEEP`
(asyncio's selector rounds any sleep up to 1 ms, so in practice every sleep is 1 ms)."""

REPUBLISH_SECONDS = 0.05
"""How often a sleeping driver writes what it waits in again, unchanged."""


class _Waiter:
    """One awaited operation: its checks (completion test, deadline, peer) and the future
    that the awaiting task sleeps on. ``keep``: it must complete even if that task goes
    away (a send, a collective); it is then an orphan, progressed silently."""

    __slots__ = ("check", "future", "keep", "transport")

    def __init__(
        self, transport: Transport, check: BlockedWait, future: asyncio.Future[None], keep: bool
    ) -> None:
        self.transport = transport
        self.check = check
        self.future = future
        self.keep = keep


class _Driver:
    """Advances every pending ``comm.aio`` operation of one event loop: one poll of each
    transport per turn, then the completion test of each operation. A chain of loop
    callbacks (``call_soon``, then ``call_later`` when idle), so it is never a task that
    the loop's shutdown cancels; it stops when nothing is pending."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = weakref.ref(loop)
        self._waiters: list[_Waiter] = []
        self._handle: asyncio.Handle | None = None
        self._sleeping = False
        self._turns = 0
        self._yield_until = 0.0
        self._sleep = FIRST_SLEEP
        self._pace: tuple[int, float] | None = None
        self._published: dict[int, tuple[Transport, Activity, float]] = {}
        """Per transport: what this driver last published in its activity record, when."""

    def add(self, waiter: _Waiter) -> None:
        """Progress ``waiter`` from the next turn on (at once if the driver sleeps)."""
        if self._pace is None:
            crowded = oversubscribed(waiter.transport.size)
            self._pace = (
                (OVERSUBSCRIBED_SPIN_TURNS, OVERSUBSCRIBED_YIELD_SECONDS)
                if crowded
                else (SPIN_TURNS, YIELD_SECONDS)
            )
        self._waiters.append(waiter)
        self._turns, self._sleep = 0, FIRST_SLEEP
        if self._handle is not None and self._sleeping:
            self._handle.cancel()
            self._handle = None
        if self._handle is None:
            self._schedule(0.0)

    def _schedule(self, delay: float) -> None:
        loop = self._loop()
        if loop is None or loop.is_closed():
            return
        self._sleeping = delay > 0
        if delay > 0:
            self._handle = loop.call_later(delay, self._turn)
        else:
            self._handle = loop.call_soon(self._turn)

    def _turn(self) -> None:
        """One turn: poll, resolve what has completed, then schedule the next turn."""
        self._handle = None
        moved = self._poll()
        finished = self._resolve()
        if not self._waiters:
            for t, _, _ in self._published.values():  # idle: no longer in a treecast call
                t.publish_activity(None)
            self._published.clear()
            return
        if moved or finished:
            self._turns, self._sleep = 0, FIRST_SLEEP
            if moved:
                for w in self._waiters:
                    w.check.peer_gone_at = 0.0  # a finished peer that moves bytes is not gone
        spin, yield_for = self._pace or (SPIN_TURNS, YIELD_SECONDS)
        self._turns += 1
        if self._turns < spin:
            self._schedule(0.0)
            return
        now = time.monotonic()
        if self._turns == spin:
            self._yield_until = now + yield_for
        if now < self._yield_until:
            os.sched_yield()
            self._schedule(0.0)
            return
        self._slow_checks()
        if self._waiters:
            self._schedule(self._sleep)
            self._sleep = min(self._sleep * 2, MAX_SLEEP)

    def _poll(self) -> bool:
        """Poll each transport with pending operations once; an error of the transport
        (closed, say) fails every operation on it."""
        moved = False
        for t in {id(w.transport): w.transport for w in self._waiters}.values():
            try:
                moved = t.progress() or moved
            except Exception as exc:
                self._fail([w for w in self._waiters if w.transport is t], exc)
        return moved

    def _resolve(self) -> bool:
        """Wake the tasks whose operation has completed; drop withdrawn receives and
        completed orphans. Returns True if an operation completed."""
        finished = False
        pending = []
        for w in self._waiters:
            if w.future.done() and not w.keep:
                continue  # a receive whose task went away: it took nothing
            try:
                done = w.check.done()
            except Exception as exc:  # never lose the driver to one operation's error
                self._fail([w], exc)
                continue
            if done:
                finished = True
                if not w.future.done():
                    w.future.set_result(None)
                continue
            pending.append(w)
        self._waiters = pending
        return finished

    def _slow_checks(self) -> None:
        """The checks of a sleeping blocking wait, once per sleep: timeouts, dead and
        finished peers. What each operation waits in is published for other ranks'
        reports (the oldest, once the checks are made)."""
        pending = []
        for w in self._waiters:
            t = w.transport
            self._show(t, w.check.what)
            try:
                done = w.check.check(t, None)
            except Exception as exc:
                self._fail([w], exc)
                continue
            if done:
                if not w.future.done():
                    w.future.set_result(None)
            else:
                pending.append(w)
        self._waiters = pending
        if pending:
            self._show(pending[0].transport, pending[0].check.what)

    def _show(self, t: Transport, what: Activity) -> None:
        """Publish ``what`` as this rank's activity (for hang reports) unless it is there
        already; again every :data:`REPUBLISH_SECONDS`, since a sync call that ran in
        between clears the record when it returns."""
        now = time.monotonic()
        shown = self._published.get(id(t))
        if shown is None or shown[1] != what or now - shown[2] > REPUBLISH_SECONDS:
            t.publish_activity(what)
            self._published[id(t)] = (t, what, now)

    def _fail(self, failed: list[_Waiter], exc: Exception) -> None:
        """``exc`` ends the waits ``failed``: each awaiting task raises it (an orphan's is
        dropped), counted as a failed wait (exit reports then expect leftovers)."""
        for w in failed:
            w.transport.waits_failed += 1
            if not w.future.done():
                w.future.set_exception(exc)
            if w in self._waiters:
                self._waiters.remove(w)


_DRIVERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Driver] = (
    weakref.WeakKeyDictionary()
)


def _driver() -> _Driver:
    """The running event loop's driver."""
    loop = asyncio.get_running_loop()
    d = _DRIVERS.get(loop)
    if d is None:
        d = _DRIVERS[loop] = _Driver(loop)
    return d


def _deadline(t: Transport, timeout: float | None) -> tuple[float | None, float | None]:
    """``timeout`` (None: the transport's default) and the deadline it makes."""
    if timeout is None:
        timeout = t.default_timeout
    return timeout, None if timeout is None else time.monotonic() + timeout


def _watch(
    t: Transport,
    done: Callable[[], bool],
    what: Activity,
    peer: int | None,
    timeout: float | None,
    deadline: float | None,
    keep: bool,
) -> _Waiter:
    """Hand the operation whose completion test is ``done`` to the loop's driver."""
    check = BlockedWait(done, timeout, deadline, what, peer, peer is not None)
    waiter = _Waiter(t, check, asyncio.get_running_loop().create_future(), keep)
    _driver().add(waiter)
    return waiter


async def _orphan_on_exit(waiter: _Waiter, coro: Coroutine[Any, Any, Any]) -> Any:
    """Await ``coro``, then ``waiter``; if the task goes away (or ``coro`` raises) first,
    the waiter's operation is left to the driver to complete."""
    try:
        got = await coro
        await waiter.future
        return got
    except BaseException:
        future = waiter.future
        if not future.done():
            future.cancel()  # the driver then keeps it as an orphan (keep=True)
        elif not future.cancelled():
            future.exception()  # seen: the error that ends this call comes first
        raise


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a shielded task's outcome as seen (its awaiting task went away)."""
    if not task.cancelled():
        task.exception()


async def _shielded(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coro`` (a call of several steps that must all happen, once begun) to its end
    even if the awaiting task is cancelled; its outcome is then dropped."""
    task = asyncio.ensure_future(coro)
    task.add_done_callback(_retrieve)
    return await asyncio.shield(task)


def _sync_doc(name: str, form: str, sync: Callable[..., Any] | None) -> str:
    """The docstring of the awaitable form of ``Comm.name`` (``sync``), which runs ``form``."""
    head = (
        f"Awaitable :meth:`treecast.Comm.{name}` (runs ``{form}``; the event loop keeps "
        f"running): same arguments, ``timeout=`` and errors. If the awaiting task is "
        f"cancelled, the call still completes in the background (see :mod:`treecast.aio`)."
    )
    doc = inspect.getdoc(sync) if sync is not None else None
    return f"{head}\n\nThe sync call's documentation:\n\n{doc}" if doc else head


def _collective(name: str) -> Callable[..., Coroutine[Any, Any, Any]]:
    """The coroutine method ``name`` of :class:`AsyncComm`: start the ``I*`` form, await it."""
    iname = plans.nonblocking_name(name)

    async def method(self: AsyncComm, *args: Any, timeout: float | None = None, **kw: Any) -> Any:
        return await self._await(getattr(self.comm, iname)(*args, **kw), None, timeout, True)

    method.__name__, method.__qualname__ = name, f"AsyncComm.{name}"
    blocking = getattr(Collectives, name, None)
    method.__doc__ = _sync_doc(name, iname, blocking)
    if blocking is not None:
        sig = inspect.signature(blocking)
        params = [p for p in sig.parameters.values() if p.name != "copy"]
        method.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    return method


def _send(name: str, start: str) -> Callable[..., Coroutine[Any, Any, None]]:
    """The coroutine method ``name`` of :class:`AsyncComm` for a send: start ``start``
    (``isend``, ``Issend``...), await it; it completes even if the task is cancelled."""

    async def method(self: AsyncComm, *args: Any, timeout: float | None = None, **kw: Any) -> None:
        await self._await(getattr(self.comm, start)(*args, **kw), None, timeout, True)

    method.__name__, method.__qualname__ = name, f"AsyncComm.{name}"
    sync = getattr(PointToPoint, name)
    method.__doc__ = _sync_doc(name, start, sync)
    method.__signature__ = inspect.signature(sync)  # type: ignore[attr-defined]
    return method


class AsyncComm:
    """The asyncio view of a communicator (``comm.aio``): its blocking collective and
    point-to-point methods, same names and arguments, as coroutines. See :mod:`treecast.aio`
    for how calls progress, match, fail and are cancelled.

    Attributes:
        comm: the :class:`treecast.Comm` it calls.
    """

    __slots__ = ("comm",)

    def __init__(self, comm: Any) -> None:
        self.comm = comm

    def __repr__(self) -> str:
        return f"<treecast.aio.AsyncComm of {self.comm!r}>"

    # ---- awaiting requests -------------------------------------------------------------
    async def wait(
        self, request: Request, status: Status | None = None, *, timeout: float | None = None
    ) -> Any:
        """Await a request of this communicator (from ``isend``, ``Irecv``, ``Ibcast``...)
        and return its result as ``request.wait(status)`` does. Cancelling the awaiting
        task leaves the request as it is (still active, for the caller to complete).

        Args:
            request: the request; a null request returns None at once.
            status: filled as by ``request.wait(status)``.
            timeout: seconds (default ``TREECAST_TIMEOUT``).

        Raises:
            TimeoutError, ProcessFailedError: as ``request.wait()``, with the same reports.
            TruncationError, DeserializationError: as ``request.wait()``.
        """
        return await self._await(request, status, timeout, keep=False)

    async def _await(
        self, request: Request, status: Status | None, timeout: float | None, keep: bool
    ) -> Any:
        """:meth:`wait`; ``keep``: if the awaiting task goes away, the driver still
        progresses the operation to its end (the calls that must complete)."""
        if not request.done:
            t: Transport = request._transport or self.comm._t
            op = request._op
            peer = None
            activity: Activity = "request wait"
            if isinstance(request, CollectiveRequest):
                activity = request.what or "collective request"
            elif isinstance(op, SendOp | RecvOp):
                peer = op.dest if isinstance(op, SendOp) else op.source
                peer = None if peer < 0 or op.ctx % 2 else peer  # p2p contexts are even
                activity = f"{_describe_op(op)} on {self.comm.name}"
            timeout, deadline = _deadline(t, timeout)
            waiter = _watch(t, lambda: request.done, activity, peer, timeout, deadline, keep)
            await waiter.future
        return request.wait(status)

    # ---- collectives --------------------------------------------------------------------
    barrier = Barrier = _collective("barrier")
    bcast = _collective("bcast")
    Bcast = _collective("Bcast")
    gather = _collective("gather")
    scatter = _collective("scatter")
    allgather = _collective("allgather")
    alltoall = _collective("alltoall")
    reduce = _collective("reduce")
    allreduce = _collective("allreduce")
    scan = _collective("scan")
    exscan = _collective("exscan")
    Gather = _collective("Gather")
    Gatherv = _collective("Gatherv")
    Scatter = _collective("Scatter")
    Scatterv = _collective("Scatterv")
    Allgather = _collective("Allgather")
    Allgatherv = _collective("Allgatherv")
    Alltoall = _collective("Alltoall")
    Alltoallv = _collective("Alltoallv")
    Reduce = _collective("Reduce")
    Allreduce = _collective("Allreduce")
    Reduce_scatter_block = _collective("Reduce_scatter_block")
    Scan = _collective("Scan")
    Exscan = _collective("Exscan")
    Neighbor_allgather = _collective("Neighbor_allgather")
    Neighbor_allgatherv = _collective("Neighbor_allgatherv")
    Neighbor_alltoall = _collective("Neighbor_alltoall")
    Neighbor_alltoallv = _collective("Neighbor_alltoallv")

    async def Reduce_scatter(
        self,
        sendbuf: Any,
        recvbuf: Any,
        recvcounts: Any = None,
        op: Op = SUM,
        *,
        timeout: float | None = None,
        algorithm: str | None = None,
    ) -> None:
        """Awaitable :meth:`treecast.Comm.Reduce_scatter` (runs ``Ireduce_scatter``; without
        ``recvcounts`` the ranks exchange their counts first, as ``Ireduce_scatter`` does).
        Both steps complete even if the awaiting task is cancelled.

        Raises:
            InvalidArgumentTypeError, InvalidArgumentError, InvalidBufferError: as the
                sync call, before anything is sent.
            TimeoutError, ProcessFailedError: as any collective.
        """
        c = self.comm
        counts = recvcounts
        if counts is None and sendbuf is not IN_PLACE and sendbuf is not None:
            mine = plans.reduce_scatter_count(c._caller("Ireduce_scatter"), sendbuf, recvbuf, op)
        else:
            mine = None

        async def both() -> None:
            if mine is not None:
                # Ireduce_scatter's own exchange is a (blocking) allgather: the same
                # messages, started non-blocking under that name
                plan = plans.plan_allgather(c._caller("allgather"), mine)
                exchange = c._go(plan, None, nonblocking=True)
                got = await self._await(exchange, None, timeout, True)
            else:
                got = counts
            start = c.Ireduce_scatter(sendbuf, recvbuf, got, op, algorithm=algorithm)
            await self._await(start, None, timeout, True)

        await _shielded(both())

    # ---- point-to-point: sends ----------------------------------------------------------
    send = _send("send", "isend")
    ssend = _send("ssend", "issend")
    bsend = _send("bsend", "ibsend")
    Send = _send("Send", "Isend")
    Ssend = _send("Ssend", "Issend")
    Bsend = _send("Bsend", "Ibsend")
    Rsend = _send("Rsend", "Irsend")

    # ---- point-to-point: receives -------------------------------------------------------
    async def _arrival(
        self, source: int, tag: int, what: str, timeout: float | None, whole: bool = True
    ) -> None:
        """Return once the next message from ``source`` with ``tag`` (communicator rank,
        wildcards allowed) has arrived (``whole``: all of it) and nothing has taken it:
        the caller takes it before it awaits anything else."""
        c = self.comm
        t: Transport = c._t
        ctx, wsrc = c._ctx, c._world_source(source)

        def there() -> bool:
            msg = t.first_unexpected(ctx, wsrc, tag)
            return msg is not None and (msg.complete or not whole)

        t.progress()
        if there():
            return
        activity = f"{what} from {'any rank' if source == ANY_SOURCE else f'rank {source}'} "
        activity += f"(tag {tag}) on {c.name}"
        timeout, deadline = _deadline(t, timeout)
        peer = None if wsrc < 0 else wsrc
        while True:
            await _watch(t, there, activity, peer, timeout, deadline, keep=False).future
            if there():  # else a receive of another task took it first: wait for the next
                return

    def _take(self, source: int, tag: int, buffer: memoryview | None) -> RecvOp:
        """Receive the message that :meth:`_arrival` found (it is whole: no waiting)."""
        c = self.comm
        recv: RecvOp = c._t.irecv(c._ctx, c._world_source(source), tag, buffer)
        assert recv.done, "the message was whole and first in line"
        if recv.error is not None:
            raise recv.error
        return recv

    async def recv(
        self,
        buf: Any = None,
        source: int = ANY_SOURCE,
        tag: int = ANY_TAG,
        status: Status | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Awaitable :meth:`treecast.Comm.recv`: the next matching object. Cancelling the
        awaiting task withdraws the receive: the message stays for the next receive.

        Raises:
            InvalidRankError, InvalidTagError: bad ``source`` or ``tag``.
            DeserializationError: the bytes cannot be rebuilt into an object here.
            TimeoutError, ProcessFailedError: as the sync call.
        """
        if buf is not None:
            warnings.warn(
                "recv: the buf argument is ignored; treecast sizes object messages from the "
                "sender, so no receive buffer is needed",
                UserWarning,
                stacklevel=2,
            )
        source, tag = self.comm._probe(source, tag, "recv")
        if source == PROC_NULL:
            if status is not None:
                proc_null_status(status)
            return None
        await self._arrival(source, tag, "recv", timeout)
        r = self._take(source, tag, None)
        if status is not None:
            self.comm._fill(r, status)
        return frames_mod.loads_message(r.frames, "recv")

    async def Recv(
        self,
        buf: Any,
        source: int = ANY_SOURCE,
        tag: int = ANY_TAG,
        status: Status | None = None,
        *,
        timeout: float | None = None,
    ) -> None:
        """Awaitable :meth:`treecast.Comm.Recv`: the next matching message into ``buf``
        (it lands in a private frame first and is copied once). Cancelling the awaiting
        task withdraws the receive: ``buf`` is untouched and the message stays for the
        next receive.

        Raises:
            InvalidRankError, InvalidTagError: bad ``source`` or ``tag``.
            InvalidBufferError: ``buf`` is not a writable contiguous buffer.
            TruncationError: the message is larger than ``buf`` (nothing is written to it).
            TimeoutError, ProcessFailedError: as the sync call.
        """
        source, tag = self.comm._probe(source, tag, "Recv")
        if source == PROC_NULL:
            if status is not None:
                proc_null_status(status)
            return
        view = byte_view(buf, "Recv buf", writable=True)
        await self._arrival(source, tag, "Recv", timeout)
        r = self._take(source, tag, view)
        if status is not None:
            self.comm._fill(r, status)

    async def probe(
        self,
        source: int = ANY_SOURCE,
        tag: int = ANY_TAG,
        status: Status | None = None,
        *,
        timeout: float | None = None,
    ) -> bool:
        """Awaitable :meth:`treecast.Comm.probe`: return True once a matching message is
        available (without receiving it).

        Raises:
            InvalidRankError, InvalidTagError: bad ``source`` or ``tag``.
            TimeoutError, ProcessFailedError: as the sync call.
        """
        c = self.comm
        src, tag = c._probe(source, tag, "probe")
        if src != PROC_NULL:
            await self._arrival(src, tag, "probe", timeout, whole=False)
        return bool(c.iprobe(src, tag, status))

    Probe = probe

    async def mprobe(
        self,
        source: int = ANY_SOURCE,
        tag: int = ANY_TAG,
        status: Status | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Awaitable :meth:`treecast.Comm.mprobe`: once a matching message has wholly
        arrived (so that its ``recv()`` does not wait), take it out of matching and return
        the :class:`~treecast.matched.Message` that receives exactly it.

        Raises:
            InvalidRankError, InvalidTagError: bad ``source`` or ``tag``.
            TimeoutError, ProcessFailedError: as the sync call.
        """
        c = self.comm
        src, tag = c._probe(source, tag, "mprobe")
        if src != PROC_NULL:
            await self._arrival(src, tag, "mprobe", timeout)
        return c.improbe(src, tag, status)

    Mprobe = mprobe

    # ---- point-to-point: both ways ------------------------------------------------------
    async def sendrecv(
        self,
        sendobj: Any,
        dest: int,
        sendtag: int = 0,
        recvbuf: Any = None,
        source: int = ANY_SOURCE,
        recvtag: int = ANY_TAG,
        status: Status | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Awaitable :meth:`treecast.Comm.sendrecv`. If the awaiting task is cancelled the
        send still completes and the receive is withdrawn.

        Raises:
            InvalidRankError, InvalidTagError: bad ranks or tags (nothing is sent).
            SerializationError, DeserializationError: as ``send`` and ``recv``.
            TimeoutError, ProcessFailedError: as the sync call.
        """
        c = self.comm
        c._peer(source, "source", "sendrecv", any_ok=True)
        c._tag(recvtag, "recvtag", "sendrecv", any_ok=True)
        sent = self._sending(c.isend(sendobj, dest, sendtag), dest, sendtag, timeout)
        return await _orphan_on_exit(
            sent, self.recv(None, source, recvtag, status, timeout=timeout)
        )

    async def Sendrecv(
        self,
        sendbuf: Any,
        dest: int,
        sendtag: int = 0,
        recvbuf: Any = None,
        source: int = ANY_SOURCE,
        recvtag: int = ANY_TAG,
        status: Status | None = None,
        *,
        timeout: float | None = None,
    ) -> None:
        """Awaitable :meth:`treecast.Comm.Sendrecv`. If the awaiting task is cancelled the
        send still completes and the receive is withdrawn (``recvbuf`` untouched).

        Raises:
            InvalidArgumentTypeError: no ``recvbuf``.
            InvalidRankError, InvalidTagError, InvalidBufferError, TruncationError: as
                ``Send`` and ``Recv``.
            TimeoutError, ProcessFailedError: as the sync call.
        """
        c = self.comm
        if recvbuf is None and source != PROC_NULL:
            raise InvalidArgumentTypeError("Sendrecv: recvbuf is required (a writable buffer)")
        c._peer(source, "source", "Sendrecv", any_ok=True)
        c._tag(recvtag, "recvtag", "Sendrecv", any_ok=True)
        if source != PROC_NULL:
            byte_view(recvbuf, "Recv buf", writable=True)
        sent = self._sending(c.Isend(sendbuf, dest, sendtag), dest, sendtag, timeout)
        await _orphan_on_exit(sent, self.Recv(recvbuf, source, recvtag, status, timeout=timeout))

    async def Sendrecv_replace(
        self,
        buf: Any,
        dest: int,
        sendtag: int = 0,
        source: int = ANY_SOURCE,
        recvtag: int = ANY_TAG,
        status: Status | None = None,
        *,
        timeout: float | None = None,
    ) -> None:
        """Awaitable :meth:`treecast.Comm.Sendrecv_replace`. If the awaiting task is
        cancelled the send still completes and the receive is withdrawn (``buf`` keeps
        what it had).

        Raises:
            InvalidRankError, InvalidTagError, InvalidBufferError, TruncationError: as
                ``Sendrecv``.
            TimeoutError, ProcessFailedError: as the sync call.
        """
        c = self.comm
        c._peer(source, "source", "Sendrecv_replace", any_ok=True)
        c._tag(recvtag, "recvtag", "Sendrecv_replace", any_ok=True)
        view = byte_view([buf, 0, "B"] if buf is None else buf, "Sendrecv_replace buf", True)
        outgoing = bytes(view)
        sent = self._sending(c.Isend(outgoing, dest, sendtag), dest, sendtag, timeout)
        await _orphan_on_exit(sent, self.Recv(view, source, recvtag, status, timeout=timeout))

    def _sending(self, request: Request, dest: int, tag: int, timeout: float | None) -> _Waiter:
        """Hand the send ``request`` to the driver now (it completes even if the awaiting
        task goes away); await the returned waiter's future for its end."""
        c = self.comm
        t: Transport = c._t
        op = request._op
        timeout, deadline = _deadline(t, timeout)
        peer = op.dest if isinstance(op, SendOp) else None
        what = f"send to rank {dest} (tag {tag}) on {c.name}"
        return _watch(t, lambda: request.done, what, peer, timeout, deadline, keep=True)
