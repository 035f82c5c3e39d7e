"""Install the recording hooks, and start and end a rank's tracing.

:func:`settings` reads ``TREECAST_TRACE_DIR`` (set by the launcher) and ``TREECAST_TRACE``;
:func:`treecast.world` calls it only when one of them is set, so a job without tracing never
imports this module and runs the code it always ran. :meth:`Tracing.start` then wraps, once
per process, for its world transport:

- the communicator's public calls (every collective in both forms, point-to-point calls,
  communicator creation, ``Request`` waits): a slice per call with its root (from the
  arguments) and the communicator's collective counter before and after it (its sequence
  number, see :func:`~.recorder.own_numbers`); ``_go`` and ``Algorithm.steps`` note the
  algorithm and payload bytes of the running call;
- node-memory algorithms (``_run_node``): a nested slice of category ``node``;
- the transport instance: every message sent (``isend``, ``send_inline``) and delivered
  (numbered on arrival by ``_match_header``/``_on_small``/``recv_inline``, noted on
  delivery by ``_deliver``/``_on_small``/``recv_inline``), time blocked in ``wait``
  (category ``wait``; the first polls of ``wait_op`` before it are not) and copies (a long
  poll while a large message is in flight, the copy of an early large message into its
  receive buffer: category ``copy``).

Each hook only appends a tuple to the :class:`~.recorder.Recorder`; what the events mean
together is worked out when the rank's file is made.

The trace is written at exit (before the transport is finalised), and on SIGTERM (the
launcher's way of ending the other ranks after a failure) when the program has no handler
of its own.
"""

from __future__ import annotations

import atexit
import functools
import inspect
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from types import CodeType, FrameType
from typing import Any

from ..algorithms.registry import Algorithm
from ..collectives import Collectives
from ..comm import Comm
from ..errors import InvalidArgumentError
from ..p2p import PointToPoint
from ..request import Prequest, Request
from ..topocomm import Cartcomm, Neighborhood
from ..transports.base import ACK_CTX, Transport
from . import ENV_TRACE, ENV_TRACE_DIR, ENV_TRACE_EVENTS
from .merge import merge, output_path, parse_rank_trace, rank_file, write_json
from .recorder import COPY_SLICE_BYTES, DEFAULT_EVENTS, Recorder, clock, thread_id

POLLED = frozenset({"iprobe", "Iprobe", "improbe", "Improbe"})
"""Point-to-point calls that programs poll in loops: not slices (they would drown the rest)."""
CREATES = (
    *("dup", "Dup", "Clone", "Dup_with_info", "Idup", "Idup_with_info", "split", "Split"),
    *("Split_type", "Create", "Create_group", "Create_cart", "Create_graph", "Sub"),
    *("Create_dist_graph", "Create_dist_graph_adjacent"),
)
"""Communicator constructors (collective: they exchange with the other ranks)."""
WAITS = ("wait", "Wait", "waitall", "Waitall", "waitany", "Waitany", "waitsome", "Waitsome")
"""Request methods that block: slices, unless called inside another traced call."""
COPY_SLICE_NS = 20_000
"""A poll that moved bytes for at least this long while a large message was in flight is
shown as a copy."""
WAIT_SLICE_NS = 1_000
"""A wait shorter than this (it found its operation done at once) is not shown."""
_NEVER = 1 << 30


# ---- calls ------------------------------------------------------------------------------------
def _root_parameter(fn: Callable[..., Any]) -> tuple[int, Any]:
    """Where ``fn`` takes ``root``: its index among the positional arguments after ``self``
    (-1: no root; a huge one: keyword only), and its default."""
    params = list(inspect.signature(fn).parameters.values())[1:]
    for i, p in enumerate(params):
        if p.name == "root":
            default = None if p.default is inspect.Parameter.empty else p.default
            return (i if p.kind is p.POSITIONAL_OR_KEYWORD else _NEVER), default
    return -1, None


def _call_slice(rec: Recorder, fn: Callable[..., Any], name: str, cat: str) -> Any:
    """``fn`` (a method of a communicator, or of a request: ``cat`` "request") recorded as a
    slice per call: two clock reads and one tuple; the rest is worked out when the file is
    made (see :mod:`.recorder`), and :func:`_running` finds this frame's locals while the
    call runs."""
    slices, limit = rec.slices, rec.limit
    root_at, root_default = _root_parameter(fn)
    of_comm = cat != "request"

    @functools.wraps(fn)
    def traced(self: Any, *args: Any, **kwargs: Any) -> Any:
        if root_at < 0:
            root = None
        else:
            root = args[root_at] if len(args) > root_at else kwargs.get("root", root_default)
        seq0 = self._coll_seq if of_comm else 0
        t0 = clock()
        error = None
        try:
            return fn(self, *args, **kwargs)
        except BaseException as exc:
            error = type(exc).__name__
            raise
        finally:
            t1 = clock()
            if len(slices) < limit:  # Recorder.add, inlined: this is every call's cost
                comm, seq1 = (id(self), self._coll_seq) if of_comm else (None, 0)
                slices.append((thread_id(), t0, t1, cat, name, comm, seq0, seq1, root, error))
            else:
                rec.dropped += 1

    return traced


def _running(codes: dict[CodeType, str], now: int) -> list[tuple[Any, ...]]:
    """The traced calls and waits running now in every thread, as slices that end ``now``:
    the frames of the wrappers' ``codes`` (kind "call" or "wait") on the threads' stacks,
    read when the trace is written (a rank ended by SIGTERM while it waits shows where)."""
    found: list[tuple[Any, ...]] = []
    for ident, frame in sys._current_frames().items():
        f: FrameType | None = frame
        while f is not None:
            kind = codes.get(f.f_code)
            v = f.f_locals if kind is not None else {}
            if kind == "call" and "t0" in v:
                comm, seq1 = (id(v["self"]), v["self"]._coll_seq) if v["of_comm"] else (None, 0)
                head = (ident, v["t0"], now, v["cat"], v["name"], comm, v["seq0"], seq1)
                found.append((*head, v["root"], None))
            elif kind == "wait" and "t0" in v:
                about = tuple(v["what"]) if isinstance(v["what"], tuple) else v["what"]
                found.append((ident, v["t0"], now, "wait", "wait", about, v["peer"], None))
            f = f.f_back
    return found


def _public(cls: type) -> list[str]:
    return [n for n, v in vars(cls).items() if not n.startswith("_") and callable(v)]


def _wrap_calls(rec: Recorder) -> None:
    """Wrap the communicator's and the requests' calls (see the module docstring)."""
    for cls, names, cat in (
        (Collectives, _public(Collectives), "collective"),
        (Neighborhood, [n for n in _public(Neighborhood) if "eighbor_" in n], "collective"),
        (PointToPoint, [n for n in _public(PointToPoint) if n not in POLLED], "p2p"),
        (Comm, [n for n in CREATES if n in vars(Comm)], "comm"),
        (Cartcomm, [n for n in CREATES if n in vars(Cartcomm)], "comm"),
        (Request, [n for n in WAITS if n in vars(Request)], "request"),
        (Prequest, [n for n in WAITS if n in vars(Prequest)], "request"),
    ):
        for name in names:
            value = vars(cls)[name]
            inner = value.__func__ if isinstance(value, classmethod) else value
            label = f"Request.{name}" if cat == "request" else name
            traced = _call_slice(rec, inner, label, cat)
            rec.running_codes[traced.__code__] = "call"
            setattr(cls, name, classmethod(traced) if isinstance(value, classmethod) else traced)
    internals: tuple[tuple[type, str, Any], ...] = (
        (Comm, "__init__", _registered(rec, Comm.__init__)),
        (Collectives, "_go", _plan_filler(rec, Collectives._go)),
        (Algorithm, "steps", _algorithm_filler(rec, Algorithm.steps)),
        (Collectives, "_run_node", _node_slice(rec, Collectives._run_node)),
    )
    for owner, name, wrapper in internals:
        setattr(owner, name, wrapper)


def _registered(rec: Recorder, init: Callable[..., None]) -> Any:
    """``Comm.__init__``, keeping every communicator made (calls name theirs by id)."""

    @functools.wraps(init)
    def traced_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        rec.comms[id(self)] = self

    return traced_init


def _plan_filler(rec: Recorder, go: Callable[..., Any]) -> Any:
    """``Collectives._go``: the running call's plan gives its algorithm and payload bytes.
    (The fillers take their method's exact parameters: cheaper than ``*args``.)"""
    fills, limit = rec.fills, rec.limit

    @functools.wraps(go)
    def traced_go(self: Any, plan: Any, timeout: Any, *, nonblocking: bool = False) -> Any:
        if len(fills) < limit:
            fills.append((thread_id(), clock(), plan.algo.name, plan.nbytes, None))
        return go(self, plan, timeout, nonblocking=nonblocking)

    return traced_go


def _algorithm_filler(rec: Recorder, steps: Callable[..., Any]) -> Any:
    """``Algorithm.steps``: the algorithm that the running call runs (the calls that plan
    inline: object ``bcast``, ``barrier``, communicator creation)."""
    fills, limit = rec.fills, rec.limit

    @functools.wraps(steps)
    def traced_steps(
        self: Any,
        rank: int,
        size: int,
        root: int,
        nbytes: int,
        commutative: bool = True,
        nodes: Any = None,
    ) -> Any:
        if len(fills) < limit:
            fills.append((thread_id(), clock(), self.name, -1, self.collective))
        return steps(self, rank, size, root, nbytes, commutative, nodes)

    return traced_steps


def _node_slice(rec: Recorder, run_node: Callable[..., Any]) -> Any:
    """``_run_node`` recorded as a nested slice (category ``node``) named by its kind."""

    @functools.wraps(run_node)
    def traced(self: Any, node: Any, timeout: Any, what: Any) -> Any:
        t0 = clock()
        try:
            return run_node(self, node, timeout, what)
        finally:
            label = f"{node.kind} (node memory)"
            rec.add((thread_id(), t0, clock(), "node", label, _nbytes(node.args)))

    return traced


def _nbytes(args: Any) -> int:
    """The bytes of a node-level call's buffers (its first: views, or the input)."""
    first = args[0] if args else None
    if isinstance(first, list):
        return sum(v.nbytes for v in first)
    return int(getattr(first, "nbytes", -1))


# ---- the transport ----------------------------------------------------------------------------
def _hook_transport(rec: Recorder, t: Transport) -> None:
    """Note every message ``t`` sends and delivers, the time it blocks in ``wait`` and its
    copies (instance attributes over its methods)."""
    watch = _copies(rec, t)
    _hook_sends(rec, t, watch)
    _hook_receives(rec, t, watch)
    _hook_wait(rec, t)


def _hook_sends(rec: Recorder, t: Transport, watch: Callable[[Any], None]) -> None:
    """``isend`` and ``send_inline``: each message that leaves, numbered for its pair."""
    isend, send_inline = t.isend, t.send_inline
    # the inline path carries the small messages of latency-bound loops: Recorder.sent inlined
    counted_out, sends, limit = rec.counted_out, rec.sends, rec.limit

    def traced_isend(
        dest: int, ctx: int, tag: int, frames: Any, sig: int = 0, sync: bool = False
    ) -> Any:
        ts = clock()  # before: a message to this rank itself is delivered inside
        nbytes = sum(f.nbytes for f in frames)
        rec.sent(ts, dest, ctx, tag, nbytes)
        op = isend(dest, ctx, tag, frames, sig, sync)
        if nbytes >= COPY_SLICE_BYTES and not op.done:
            watch(op)
        return op

    def traced_send_inline(dest: int, ctx: int, tag: int, frame: Any, sig: int = 0) -> bool:
        ts = clock()
        if not send_inline(dest, ctx, tag, frame, sig):
            return False
        k = counted_out[dest]
        counted_out[dest] = k + 1
        if len(sends) < limit:
            sends.append((thread_id(), ts, dest, ctx, tag, k, frame.nbytes))
        else:
            rec.dropped += 1
        return True

    t.isend = traced_isend  # type: ignore[method-assign]
    t.send_inline = traced_send_inline  # type: ignore[method-assign]


def _hook_receives(rec: Recorder, t: Transport, watch: Callable[[Any], None]) -> None:
    """Each message that arrives, numbered for its pair on arrival (``_match_header``,
    ``_on_small``, ``recv_inline``) and noted when its receive completes."""
    recv_inline, match_header, on_small, deliver = (
        t.recv_inline,
        t._match_header,
        t._on_small,
        t._deliver,
    )
    counted_in, recvs, limit = rec.counted_in, rec.recvs, rec.limit

    def traced_recv_inline(ctx: int, source: int, tag: int, into: Any = None) -> Any:
        got = recv_inline(ctx, source, tag, into)
        if got is not None:  # Recorder.arrived and received, inlined (the fast path)
            k = counted_in[source]
            counted_in[source] = k + 1
            if len(recvs) < limit:
                recvs.append((thread_id(), clock(), source, ctx, got[1], k, got[2]))
            else:
                rec.dropped += 1
        return got

    def traced_match_header(msg: Any) -> Any:
        placed = match_header(msg)
        rec.held(msg)
        if msg.nbytes >= COPY_SLICE_BYTES and not msg.complete:
            watch(msg)
        return placed

    def traced_on_small(src: int, ctx: int, tag: int, frame: Any, sig: int = 0) -> None:
        if ctx == ACK_CTX:
            return on_small(src, ctx, tag, frame, sig)
        before = len(t._unexpected)
        on_small(src, ctx, tag, frame, sig)
        if len(t._unexpected) > before:  # no receive yet: it waits in the unexpected queue
            rec.held(t._unexpected[-1])
        else:
            rec.received(src, ctx, tag, rec.arrived(src), frame.nbytes)
        return None

    def traced_deliver(msg: Any, recv: Any, copied: bool) -> None:
        if not copied and recv.buffer is not None and msg.nbytes >= COPY_SLICE_BYTES:
            t0 = clock()
            deliver(msg, recv, copied)
            rec.add((thread_id(), t0, clock(), "copy", "copy", msg.nbytes, msg.src))
        else:
            deliver(msg, recv, copied)
        rec.delivered(msg)

    t.recv_inline = traced_recv_inline  # type: ignore[method-assign]
    t._match_header = traced_match_header  # type: ignore[method-assign]
    t._on_small = traced_on_small  # type: ignore[method-assign]
    t._deliver = traced_deliver  # type: ignore[method-assign]


def _hook_wait(rec: Recorder, t: Transport) -> None:
    """``wait``: the time blocked, as a slice (category ``wait``) naming what for and on
    whom."""
    wait = t.wait

    def traced_wait(
        done: Callable[[], bool],
        timeout: float | None = None,
        what: Any = "operation",
        peer: int | None = None,
        peer_only: bool = False,
        sending: bool = False,
    ) -> None:
        t0 = clock()
        error = None
        try:
            wait(done, timeout, what, peer, peer_only, sending)
        except BaseException as exc:
            error = type(exc).__name__
            raise
        finally:
            t1 = clock()
            if t1 - t0 >= WAIT_SLICE_NS:  # a collective's Call as a plain tuple (see Recorder)
                about = tuple(what) if isinstance(what, tuple) else what
                rec.add((thread_id(), t0, t1, "wait", "wait", about, peer, error))

    t.wait = traced_wait  # type: ignore[method-assign]
    rec.running_codes[traced_wait.__code__] = "wait"


def _copies(rec: Recorder, t: Transport) -> Callable[[Any], None]:
    """``watch(op)``: a large send or receive is in flight; until none is, ``t``'s polls are
    timed, and one that moved bytes for :data:`COPY_SLICE_NS` or more is a copy slice (the
    polls of every other moment run as they always do)."""
    poll = t._poll

    def traced_poll() -> bool:
        t0 = clock()
        moved = poll()
        t1 = clock()
        if moved and t1 - t0 >= COPY_SLICE_NS:
            rec.add((thread_id(), t0, t1, "copy", "copy"))
        rec.prune_large()
        if not rec.large and t.__dict__.get("_poll") is traced_poll:
            t._poll = poll  # type: ignore[method-assign]
        return moved

    def watch(op: Any) -> None:
        rec.large.append(op)
        if not t._closed and t.__dict__.get("_poll") is not traced_poll:
            t._poll = traced_poll  # type: ignore[method-assign]

    return watch


# ---- where the trace goes, and when ---------------------------------------------------------
class _Target:
    """Where this rank's trace goes: ``directory``/trace-rank-N.json (set by the launcher),
    else the merged file ``single`` itself (a world of one), else, under another launcher
    (``mpiexec``), ``single``.ranks/trace-rank-N.json for ``treecast trace-merge``."""

    def __init__(self, directory: str, single: str, rank: int, size: int) -> None:
        self.merged = single if not directory and size == 1 else ""
        self.directory = directory or ("" if self.merged else f"{single}.ranks")
        self.single = "" if directory else single
        self.rank = rank

    def write(self, rec: Recorder) -> None:
        data = rec.contents()
        if self.merged:
            trace, _ = merge({self.rank: parse_rank_trace(data, "this rank")}, path=self.merged)
            write_json(self.merged, trace)
            return
        os.makedirs(self.directory, exist_ok=True)
        write_json(rank_file(self.directory, self.rank), data)
        if self.single and self.rank == 0:
            sys.stderr.write(
                f"treecast: each rank writes its trace to {self.directory}/; merge them once "
                f"all have exited: treecast trace-merge {self.directory} {self.single}\n"
            )


def _write(rec: Recorder, target: _Target) -> None:
    """Write the trace once (at exit, or on SIGTERM); never raise (an atexit hook)."""
    if rec.written:
        return
    rec.written = True
    try:
        target.write(rec)
    except Exception as exc:  # a full disk must not turn a clean exit into a traceback
        sys.stderr.write(f"treecast: rank {target.rank}: cannot write its trace: {exc}\n")


def _write_on_sigterm(rec: Recorder, target: _Target) -> None:
    """Write the trace when SIGTERM ends this process (the launcher ends the other ranks
    so after a failure), if the program has no SIGTERM handler of its own."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        _write(rec, target)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, handler)


_recorder: Recorder | None = None


class Tracing:
    """This process's tracing settings, checked (:func:`settings`)."""

    def __init__(self, directory: str, single: str, limit: int) -> None:
        self.directory = directory
        self.single = single
        self.limit = limit

    def start(self, world: Comm) -> Recorder:
        """Record this process's calls, on the world communicator ``world``'s transport
        and every communicator made from it, and write them at exit (see
        :class:`_Target`); once per process."""
        global _recorder
        if _recorder is not None:
            return _recorder
        transport = world._t
        rec = _recorder = Recorder(transport, self.limit)
        rec.comms[id(world)] = world
        rec.running = functools.partial(_running, rec.running_codes)
        _wrap_calls(rec)
        _hook_transport(rec, transport)
        target = _Target(self.directory, self.single, transport.rank, transport.size)
        atexit.register(_write, rec, target)
        _write_on_sigterm(rec, target)
        return rec


def event_limit(environ: Mapping[str, str]) -> int:
    """Events a rank records at most of each kind (slices, sends, receives;
    ``TREECAST_TRACE_EVENTS``, default 1,000,000).

    Raises:
        InvalidArgumentError: the variable is not a whole number >= 0.
    """
    raw = environ.get(ENV_TRACE_EVENTS, "").strip()
    if not raw:
        return DEFAULT_EVENTS
    if not raw.isdigit():
        raise InvalidArgumentError(
            f"{ENV_TRACE_EVENTS}={raw!r} must be a whole number of events >= 0"
        )
    return int(raw)


def settings(environ: Mapping[str, str]) -> Tracing | None:
    """The tracing settings of ``environ`` (``TREECAST_TRACE_DIR``, else ``TREECAST_TRACE``,
    and ``TREECAST_TRACE_EVENTS``), or None when tracing is off.

    Raises:
        InvalidArgumentError: ``TREECAST_TRACE`` cannot be written (its directory does not
            exist), or ``TREECAST_TRACE_EVENTS`` is not a number.
    """
    directory = environ.get(ENV_TRACE_DIR, "").strip()
    single = environ.get(ENV_TRACE, "").strip()
    if not directory and not single:
        return None
    if single and not directory:
        try:
            single = output_path(single, f"trace file ({ENV_TRACE})")
        except ValueError as exc:
            raise InvalidArgumentError(str(exc)) from None
    return Tracing(directory, single, event_limit(environ))
