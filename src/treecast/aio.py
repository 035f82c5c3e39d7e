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
resolution). Every 20 ms, busy or not, it makes the checks of a blocking wait
(:class:`~treecast.transports.base.BlockedWait`): dead ranks, finished ranks and the
launcher once per transport, ``timeout=`` and the peer of each wait; so idle waits cost a
few per cent of a core, 200 pending receives hardly more than one (a pending send or
collective adds its completion test to each turn). Receives are not posted: a receive
waits until its message has wholly arrived and then takes it at once, in the task that
asked for it, so no message ever belongs to a task that is gone.

Matching. A collective through ``comm.aio`` is the ``I*`` form: on every rank the same
call must be made through ``comm.aio`` or the ``I*`` method (as in MPI, a non-blocking
collective never matches a blocking one; treecast raises ``CollectiveMismatchError``).
Point-to-point messages match anything. Collectives of one communicator are numbered in
the order they *start* (``Reduce_scatter`` without ``recvcounts`` numbers its count
exchange and itself as it starts), so tasks that start collectives on one communicator
concurrently must start them in the same order on every rank; give independent tasks
their own communicator (``comm.dup()``), whose collectives then run concurrently.

Receive order. ``comm.aio`` receives (``recv``, ``Recv``, ``mprobe``; ``probe`` looks
without taking) get messages in the order they were called, as MPI's posted receives do:
the driver gives each arriving message to the first waiting receive that matches it, and
a new receive takes a message at once only if no earlier receive that could take the same
kind (same communicator, overlapping source and tag; a wildcard overlaps everything) still
waits. A ``comm.aio`` receive counts as posted only when its task resumes and takes its
message: a blocking receive, ``irecv`` or ``mprobe`` made before then (posted while it
waits, or run by another task after the driver found its message) matches first, as if
posted earlier, and the ``comm.aio`` receive keeps its place for the next matching message.

Errors. Bad arguments raise the sync call's exception before anything is sent;
``timeout=`` (default ``TREECAST_TIMEOUT``) raises the same :class:`TimeoutError` with the
same hang report, a dead or finished peer the same :class:`ProcessFailedError`. A wait in
``comm.aio`` never counts as blocked for deadlock detection (another task may still
send), so it never raises ``DeadlockError``: give it a ``timeout=``. (The deadlock board
does show the peer of its first pending send, so that a rank which has finished keeps
taking what it sends.)

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
import contextlib
import inspect
import os
import time
import warnings
import weakref
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

from . import plans
from .collectives import Collectives
from .constants import ANY_SOURCE, ANY_TAG, IN_PLACE, PROC_NULL
from .engine.progress import CollectiveRequest
from .errors import InvalidArgumentTypeError
from .matched import Message
from .message import frames as frames_mod
from .message.buffers import byte_view
from .ops import SUM, Op
from .p2p import PointToPoint
from .request import Request, _describe_op, proc_null_status
from .status import Status
from .transports.base import ANY_SOURCE as WORLD_ANY_SOURCE
from .transports.base import Activity, BlockedWait, Incoming, RecvOp, SendOp, Transport
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
SLOW_CHECK_SECONDS = 0.02
"""How often the driver makes the checks of a blocking wait, busy or not (timeouts, dead
and finished peers; a deadline is seen at most this late): the turns in between only poll
and test for completion, so many pending operations cost little while idle."""


class _Match:
    """What a receive through ``comm.aio`` matches, in the transport's terms (world source,
    point-to-point context); ``takes``: it takes the message (a probe only looks);
    ``whole``: it waits until all of the message is there."""

    __slots__ = ("probe", "takes", "whole")

    def __init__(self, ctx: int, source: int, tag: int, whole: bool, takes: bool) -> None:
        self.probe = RecvOp(ctx, source, tag, None)  # never posted: its matches() only
        self.whole, self.takes = whole, takes

    def matches(self, msg: Incoming) -> bool:
        return self.probe.matches(msg.ctx, msg.src, msg.tag)

    def overlaps(self, other: _Match) -> bool:
        """True if one message could match both (a wildcard overlaps everything)."""
        a, b = self.probe, other.probe
        return (
            a.ctx == b.ctx
            and (a.source == WORLD_ANY_SOURCE or b.source in (WORLD_ANY_SOURCE, a.source))
            and (a.want_tag == ANY_TAG or b.want_tag in (ANY_TAG, a.want_tag))
        )


class _Waiter:
    """One awaited operation: its checks (completion test, deadline, peer) and the future
    that the awaiting task sleeps on. ``keep``: it must complete even if that task goes
    away (a send, a collective); it is then an orphan, progressed silently. ``sending``:
    a send to ``check.peer``. A receive has its ``match``, and ``msg`` once the driver has
    found its message: it stays with the driver, holding that message against later
    receives, until its task has taken it (:meth:`_Driver.drop`)."""

    __slots__ = ("check", "future", "keep", "match", "msg", "sending", "transport")

    def __init__(
        self,
        transport: Transport,
        check: BlockedWait,
        future: asyncio.Future[None],
        keep: bool,
        sending: bool = False,
        match: _Match | None = None,
    ) -> None:
        self.transport = transport
        self.check = check
        self.future = future
        self.keep = keep
        self.sending = sending
        self.match = match
        self.msg: Incoming | None = None

    def checked(self) -> bool:
        """True while the checks of a blocking wait concern it: not a receive that has
        its message, nor one whose task went away."""
        return self.msg is None and (self.keep or not self.future.done())


class _Driver:
    """Advances every pending ``comm.aio`` operation of one event loop: one poll of each
    transport per turn, then the completion test of each operation; waiting receives get
    their messages in the order they were called. A chain of loop callbacks
    (``call_soon``, then ``call_later`` when idle), so it is never a task that the loop's
    shutdown cancels; it stops when nothing is pending."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = weakref.ref(loop)
        self._ops: list[_Waiter] = []
        """Sends, collectives, request waits: each has its completion test."""
        self._receives: list[_Waiter] = []
        """Receives and probes, in the order they were called: on each transport they get
        messages in this order. Each stays until its task drops it (:meth:`drop`)."""
        self._transports: dict[int, Transport] | None = None
        """The transports of the pending waits (None: to be found again)."""
        self._handle: asyncio.Handle | None = None
        self._sleeping = False
        self._turns = 0
        self._yield_until = 0.0
        self._sleep = FIRST_SLEEP
        self._slow_at = 0.0
        self._pace: tuple[int, float] | None = None
        self._published: dict[int, tuple[Transport, Activity, float]] = {}
        """Per transport: what this driver last published in its activity record, when."""
        self._boards: dict[int, Transport] = {}
        """The transports whose deadlock board shows the peer of a send of this driver."""

    def add(self, waiter: _Waiter) -> None:
        """Progress ``waiter`` from the next turn on (at once if the driver sleeps)."""
        if self._pace is None:
            crowded = oversubscribed(waiter.transport.size)
            self._pace = (
                (OVERSUBSCRIBED_SPIN_TURNS, OVERSUBSCRIBED_YIELD_SECONDS)
                if crowded
                else (SPIN_TURNS, YIELD_SECONDS)
            )
        (self._ops if waiter.match is None else self._receives).append(waiter)
        self._transports = None
        self.kick()

    def kick(self) -> None:
        """Turn again soon, spinning: there is something new to do."""
        self._turns, self._sleep = 0, FIRST_SLEEP
        if self._handle is not None and self._sleeping:
            self._handle.cancel()
            self._handle = None
        if self._handle is None and (self._ops or self._receives):
            self._schedule(0.0)

    def drop(self, waiter: _Waiter, freed: bool) -> None:
        """The task of the receive ``waiter`` is done with it; ``freed``: it did not take
        the message it waited for, which a later receive may now get."""
        if waiter in self._receives:
            self._receives.remove(waiter)
            self._transports = None
            if freed:
                self.kick()

    def ready(self, t: Transport, match: _Match) -> Incoming | None:
        """The message that a receive ``match`` called now may take at once: the first
        match, whole, that no receive waiting here holds, and only if no waiting receive
        that could take a message of the same kind came before it (None: it waits in
        line)."""
        held = set()
        for w in self._receives:
            m = w.match
            if w.transport is not t or m is None:
                continue
            if w.msg is not None:
                if m.takes:
                    held.add(id(w.msg))
            elif m.takes and not w.future.done() and m.overlaps(match):
                return None
        for msg in t.arrived():
            if id(msg) not in held and match.matches(msg):
                return msg if msg.complete or not match.whole else None
        return None

    def _schedule(self, delay: float) -> None:
        loop = self._loop()
        if loop is None or loop.is_closed():
            _forget_closed_loops()
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
        if moved or finished:
            self._turns, self._sleep = 0, FIRST_SLEEP
            if moved:
                for w in self._ops + self._receives:
                    w.check.peer_gone_at = 0.0  # a finished peer that moves bytes is not gone
        now = time.monotonic()
        if now >= self._slow_at and (self._ops or self._receives):
            self._slow_at = now + SLOW_CHECK_SECONDS  # also when busy: other tasks' traffic
            self._slow_checks(now)  # may keep it busy past a deadline
        if not (self._ops or self._receives):
            self._idle()
            return
        spin, yield_for = self._pace or (SPIN_TURNS, YIELD_SECONDS)
        self._turns += 1
        if self._turns < spin:
            self._schedule(0.0)
            return
        if self._turns == spin:
            self._yield_until = now + yield_for
        if now < self._yield_until:
            os.sched_yield()
            self._schedule(0.0)
            return
        self._schedule(self._sleep)
        self._sleep = min(self._sleep * 2, MAX_SLEEP)

    def _idle(self) -> None:
        """Nothing is pending: this rank is no longer in a treecast call of this driver
        (its activity records and board peers are cleared)."""
        for t, _, _ in self._published.values():
            t.publish_activity(None)
        self._published.clear()
        for t in self._boards.values():
            if t._watch is not None:
                t._watch.show_peer(None)
        self._boards.clear()

    def _on(self) -> dict[int, Transport]:
        """The transports of the pending waits."""
        if self._transports is None:
            self._transports = {id(w.transport): w.transport for w in self._ops}
            self._transports.update((id(w.transport), w.transport) for w in self._receives)
        return self._transports

    def _poll(self) -> bool:
        """Poll each transport with pending operations once; an error of the transport
        (closed, say) fails every operation on it."""
        moved = False
        for t in list(self._on().values()):
            try:
                moved = t.progress() or moved
            except Exception as exc:
                self._fail([w for w in self._ops + self._receives if w.transport is t], exc)
                self._ops = [w for w in self._ops if w.transport is not t]
                self._receives = [w for w in self._receives if w.transport is not t]
                self._transports = None
        return moved

    def _resolve(self) -> bool:
        """Wake the tasks whose operation has completed, and the receives whose message
        is there; drop completed orphans and request waits whose task went away. Returns
        True if an operation completed or a receive got its message."""
        finished = False
        pending = []
        for w in self._ops:
            if w.future.done() and not w.keep:
                continue  # a request wait whose task went away
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
        if len(pending) != len(self._ops):
            self._ops, self._transports = pending, None
        if self._receives:
            for t in self._on().values():
                finished = self._hand(t) or finished
        return finished

    def _hand(self, t: Transport) -> bool:
        """Give each waiting receive on ``t``, in the order they were called, the first
        matching message that no receive before it holds (MPI's order): it waits for that
        message until all of it is there, and no later receive can take it. Returns True
        if a receive got its message (its task is woken)."""
        arrived = t.arrived()
        if not arrived:
            return False
        mine = [(w, w.match) for w in self._receives if w.transport is t and w.match]
        held = {id(w.msg) for w, m in mine if w.msg is not None and m.takes}
        handed = False
        for w, m in mine:
            if w.msg is not None or w.future.done():
                continue
            msg = next((x for x in arrived if id(x) not in held and m.matches(x)), None)
            if msg is None:
                continue
            if m.takes:
                held.add(id(msg))
            if msg.complete or not m.whole:
                w.msg = msg
                w.future.set_result(None)
                handed = True
        return handed

    def _got(self, waiter: _Waiter) -> bool:
        """The completion test of a receive: True once it has its message."""
        self._hand(waiter.transport)
        return waiter.msg is not None

    def _slow_checks(self, now: float) -> None:
        """The checks of a blocking wait, every :data:`SLOW_CHECK_SECONDS`: what concerns
        a whole transport (dead ranks, every other rank finished, the launcher) once per
        transport, then each wait's deadline and its own peer; a wait is checked in full
        (:meth:`BlockedWait.check`, which raises its error) only when one of those says
        something. Then, per transport, what a pending wait waits in is published for other
        ranks' reports, and the peer of the first send on the deadlock board."""
        waits = self._ops + self._receives
        ended = set()
        for t in self._on().values():
            quiet = _quiet(t)
            for w in waits:
                if w.transport is t and w.checked() and self._check(t, w, quiet, now):
                    ended.add(id(w))
        if ended:
            self._ops = [w for w in self._ops if id(w) not in ended]
            self._receives = [w for w in self._receives if id(w) not in ended]
            self._transports = None
        for t in self._on().values():
            self._show_pending(t)

    def _check(self, t: Transport, w: _Waiter, quiet: bool, now: float) -> bool:
        """The slow checks of ``w``; True if they ended it (done, or failed)."""
        c = w.check
        if (
            quiet
            and (c.deadline is None or now <= c.deadline)
            and (c.peer is None or not t.peer_finished(c.peer))
        ):
            return False  # what a full check would find
        self._show(t, c.what)
        try:
            done = c.check(t, None)
        except Exception as exc:
            self._fail([w], exc)
            return True
        if done and w.match is None:
            if not w.future.done():
                w.future.set_result(None)
            return True
        return False  # a receive found done got its message: it stays until taken

    def _show_pending(self, t: Transport) -> None:
        """Publish what a pending wait on ``t`` waits in (its first send, else its first
        wait), and that send's peer on the board, so that a hang report's line on this
        rank agrees with itself (again each time: a blocking call in between clears both)."""
        waits = [w for w in self._ops + self._receives if w.transport is t and w.checked()]
        send = next((w for w in waits if w.sending), None)
        if waits:
            self._show(t, (send or waits[0]).check.what)
        watch = t._watch
        if watch is None:
            return
        if send is not None:
            # seen by a finished rank's linger: it keeps taking what is sent to it; never
            # BLOCKED (another task may still send), so no deadlock is declared on it
            watch.show_peer(send.check.peer, sending=True)
            self._boards[id(t)] = t
        elif self._boards.pop(id(t), None) is not None:
            watch.show_peer(None)

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
        dropped), counted as a failed wait (exit reports then expect leftovers). The
        caller drops them from its lists (never here: the callers are walking them)."""
        for w in failed:
            w.transport.waits_failed += 1
            if not w.future.done():
                w.future.set_exception(exc)

    def abandon(self) -> None:
        """The loop is closed: let go of every wait (their futures hold the loop) and
        clear what was published."""
        self._ops, self._receives, self._transports = [], [], None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        with contextlib.suppress(Exception):  # the transport may be closed by now
            self._idle()


def _quiet(t: Transport) -> bool:
    """True if nothing concerns every wait on ``t`` alike: no rank known dead, the launcher
    alive, some other rank still running. A wait is then checked in full only for its
    deadline or its own peer."""
    try:
        t.check_peers()
        if t.liveness_check is not None:
            t.liveness_check()
    except Exception:
        return False
    return not t.peers_finished()


_DRIVERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Driver] = (
    weakref.WeakKeyDictionary()
)


def _forget_closed_loops() -> None:
    """Drop the drivers of closed loops: their pending waits' futures hold the loop, so the
    weak key alone would never let it go."""
    for loop, d in list(_DRIVERS.items()):
        if loop.is_closed():
            del _DRIVERS[loop]
            d.abandon()


def _driver() -> _Driver:
    """The running event loop's driver."""
    loop = asyncio.get_running_loop()
    d = _DRIVERS.get(loop)
    if d is None:
        _forget_closed_loops()
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
    sending: bool = False,
) -> _Waiter:
    """Hand the operation whose completion test is ``done`` to the loop's driver
    (``sending``: a send to ``peer``)."""
    check = BlockedWait(done, timeout, deadline, what, peer, peer is not None)
    waiter = _Waiter(t, check, asyncio.get_running_loop().create_future(), keep, sending)
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
            sending = isinstance(op, SendOp) and peer is not None
            waiter = _watch(
                t, lambda: request.done, activity, peer, timeout, deadline, keep, sending
            )
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
        if recvcounts is not None or sendbuf is IN_PLACE or sendbuf is None:
            start = c.Ireduce_scatter(sendbuf, recvbuf, recvcounts, op, algorithm=algorithm)
            await self._await(start, None, timeout, True)
            return
        mine = plans.reduce_scatter_count(c._caller("Ireduce_scatter"), sendbuf, recvbuf, op)
        # Ireduce_scatter's own exchange is a (blocking) allgather: the same messages,
        # started non-blocking under that name. Both steps are numbered now, as the call
        # starts, so that a collective started after this call is numbered after both
        exchange = c._go(plans.plan_allgather(c._caller("allgather"), mine), None, nonblocking=True)
        numbered = c._begin("Ireduce_scatter", -1)

        async def both() -> None:
            got = await self._await(exchange, None, timeout, True)
            caller = c._caller("Ireduce_scatter")
            plan = plans.plan_Reduce_scatter(caller, sendbuf, recvbuf, got, op, algorithm=algorithm)
            start = c._go(plan, None, nonblocking=True, what=numbered)
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
        self,
        source: int,
        tag: int,
        what: str,
        timeout: float | None,
        buffer: memoryview | None = None,
        takes: bool = True,
    ) -> tuple[Incoming, RecvOp]:
        """Wait for the next message from ``source`` with ``tag`` (communicator rank,
        wildcards allowed) that no earlier ``comm.aio`` receive gets, until all of it is
        there, and receive it (into ``buffer`` if given): the message and its receive,
        done. ``takes`` False (a probe): only look at it, as soon as it starts arriving
        (the receive returned is then not posted).

        A receive takes a message at once only if no ``comm.aio`` receive that could take
        the same kind of message waits before it; otherwise it waits in line, and the
        driver gives messages to the waiting receives in the order they were called. One
        that goes away has taken nothing."""
        c = self.comm
        t: Transport = c._t
        wsrc = c._world_source(source)
        match = _Match(c._ctx, wsrc, tag, takes, takes)
        d = _driver()
        t.progress()
        msg = d.ready(t, match)
        if msg is not None:
            return msg, t.claim(msg, buffer) if takes else match.probe
        activity = f"{what} from {'any rank' if source == ANY_SOURCE else f'rank {source}'} "
        activity += f"(tag {tag}) on {c.name}"
        timeout, deadline = _deadline(t, timeout)
        peer = None if wsrc < 0 else wsrc
        check = BlockedWait(bool, timeout, deadline, activity, peer, peer is not None)
        loop = asyncio.get_running_loop()
        waiter = _Waiter(t, check, loop.create_future(), False, match=match)
        check.done = partial(d._got, waiter)
        d.add(waiter)
        taken = False
        try:
            while True:
                await waiter.future
                msg = waiter.msg
                assert msg is not None, "the driver wakes a receive with its message"
                if not takes:
                    return msg, match.probe
                if msg in t.arrived():  # Incoming has no __eq__: by identity
                    taken = True
                    return msg, t.claim(msg, buffer)
                # a blocking receive took it after the driver found it and before this
                # task ran: wait for the next one, keeping this receive's place in line
                waiter.msg, waiter.future = None, loop.create_future()
                d.kick()
        finally:
            d.drop(waiter, freed=takes and not taken)

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
        _, r = await self._arrival(source, tag, "recv", timeout)
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
        _, r = await self._arrival(source, tag, "Recv", timeout, view)
        if r.error is not None:
            raise r.error  # truncation: nothing was written to buf
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
        if src == PROC_NULL:
            return bool(c.iprobe(src, tag, status))
        msg, _ = await self._arrival(src, tag, "probe", timeout, takes=False)
        if status is not None:
            c._fill(msg, status)
        return True

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
        if src == PROC_NULL:
            return c.improbe(src, tag, status)
        msg, r = await self._arrival(src, tag, "mprobe", timeout)
        if status is not None:
            c._fill(msg, status)
        return Message._of(c, r)

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
        return _watch(t, lambda: request.done, what, peer, timeout, deadline, True, True)
