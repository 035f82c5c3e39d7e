"""Start and end a rank's tracing, and wrap the calls that do not record themselves.

:func:`settings` reads ``TREECAST_TRACE_DIR`` (set by the launcher) and ``TREECAST_TRACE``;
:func:`treecast.world` calls it only when one of them is set, so a job without tracing never
imports this module: every transport's ``_rec`` stays None and the library's hot paths pay
one test of it each. :meth:`Tracing.start`, once per process, for its world transport:

- attaches a :class:`~.recorder.Recorder` (the transport's ``_rec`` becomes its events
  list): from then on the hot calls note their own slices (object ``bcast``, ``barrier``,
  every collective built from a planning function in both forms, ``send``, ``recv``,
  ``Recv``: see :data:`~.events.RECORDING`) and the transport every message sent and
  arrived, each delivery of a held message and each wait (:mod:`.events`);
- wraps what is left (these calls pay a Python wrapper, a microsecond or two each): the
  other point-to-point calls (``isend``, ``Send``, ``Irecv``, ``sendrecv``, ...), the neighbourhood collectives, communicator creation and
  ``Request`` waits (a slice per call with its root, from the arguments, and the
  communicator's collective counter before and after it, see
  :func:`~.recorder.own_numbers`), ``Comm.__init__`` (every communicator, by context),
  ``_run_node`` (a nested slice of category ``node``) and, only while a send or receive of
  64 KiB or more is in flight, the transport's ``_poll`` (a poll that moved bytes for 20 us
  or more is a ``copy`` slice).

The trace is written at exit (before the transport is finalised), and on SIGTERM (the
launcher's way of ending the other ranks after a failure) when the program has no handler
of its own; the calls and waits still running then are found on the threads' stacks.
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

from ..collectives import Collectives
from ..comm import Comm
from ..errors import InvalidArgumentError
from ..p2p import PointToPoint
from ..request import Prequest, Request
from ..topocomm import Cartcomm, Neighborhood
from ..transports.base import Transport
from . import ENV_TRACE, ENV_TRACE_DIR, ENV_TRACE_EVENTS
from .events import RECORDING, SLICE, UNSET, WRAPPED, clock, get_ident
from .merge import merge, output_path, parse_rank_trace, rank_file, write_json
from .recorder import DEFAULT_EVENTS, Recorder

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
_NEVER = 1 << 30
Reader = Callable[[int, dict[str, Any], int], "tuple[Any, ...] | None"]
"""Makes a running call's slice (ending now) from its frame's locals."""


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
    slice per call; :func:`_running` finds this frame's locals while the call runs."""
    transport = rec.transport
    root_at, root_default = _root_parameter(fn)
    of_comm = cat != "request"

    @functools.wraps(fn)
    def traced(self: Any, *args: Any, **kwargs: Any) -> Any:
        sink = transport._rec
        if sink is None:
            return fn(self, *args, **kwargs)
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
            ctx, seq1 = (self._ctx, self._coll_seq) if of_comm else (None, 0)
            t1 = clock()
            sink.append((WRAPPED, get_ident(), t0, t1, cat, name, ctx, seq0, seq1, root, error))
            rec.check()

    return traced


def _wrapped_running(ident: int, v: dict[str, Any], now: int) -> tuple[Any, ...] | None:
    """The slice of a wrapped call (:func:`_call_slice`) still running."""
    if "t0" not in v:
        return None
    self = v["self"]
    ctx, seq1 = (self._ctx, self._coll_seq) if v["of_comm"] else (None, 0)
    head = (ident, v["t0"], now, v["cat"], v["name"], ctx, v["seq0"], seq1)
    return (*head, v["root"], None, None, -1)


def _recording_running(cat: str, name: str) -> Reader:
    """The reader of a function that records its own slice (:data:`~.events.RECORDING`)."""

    def running(ident: int, v: dict[str, Any], now: int) -> tuple[Any, ...] | None:
        if v.get("rec") is None or "t0" not in v:
            return None
        seq, p = getattr(v.get("what"), "seq", -1), v.get("p", UNSET)
        seqs = (seq - 1, seq) if seq >= 0 else (0, 0)
        algo = getattr(v.get("algo", p.algo if p is not UNSET else None), "name", None)
        root = v.get("root", p.root) if cat == "collective" else -1
        head = (ident, v["t0"], now, cat, name or v["name"], v["self"]._ctx, *seqs)
        return (*head, None if root == -1 else root, None, algo, p.nbytes)

    return running


def _wait_running(ident: int, v: dict[str, Any], now: int) -> tuple[Any, ...] | None:
    """The slice of a transport wait still running."""
    if v.get("rec") is None or "t0" not in v:
        return None
    return (ident, v["t0"], now, "wait", "wait", v["what"], v["peer"], None)


def _running(readers: dict[CodeType, Reader], now: int) -> list[tuple[Any, ...]]:
    """The calls and waits running now in every thread, as slices that end ``now``: the
    frames of the codes of ``readers`` on the threads' stacks, read when the trace is written
    (a rank ended by SIGTERM while it waits shows where)."""
    found: list[tuple[Any, ...]] = []
    for ident, frame in sys._current_frames().items():
        f: FrameType | None = frame
        while f is not None:
            reader = readers.get(f.f_code)
            if reader is not None:
                s = reader(ident, f.f_locals, now)
                if s is not None:
                    found.append(s)
            f = f.f_back
    return found


def _public(cls: type) -> list[str]:
    return [n for n, v in vars(cls).items() if not n.startswith("_") and callable(v)]


def _records_itself(value: Any) -> bool:
    fn = getattr(value, "__wrapped__", value)
    return getattr(fn, "__code__", None) in RECORDING


def _wrap_calls(rec: Recorder) -> dict[CodeType, Reader]:
    """Wrap the calls that do not record themselves (see the module docstring); return the
    readers of running calls for :func:`_running`."""
    readers: dict[CodeType, Reader] = {
        code: _recording_running(cat, name) for code, (cat, name) in RECORDING.items()
    }
    readers[Transport.wait.__code__] = _wait_running
    for cls, names, cat in (
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
            if _records_itself(inner):
                continue
            label = f"Request.{name}" if cat == "request" else name
            traced = _call_slice(rec, inner, label, cat)
            readers[traced.__code__] = _wrapped_running
            setattr(cls, name, classmethod(traced) if isinstance(value, classmethod) else traced)
    Comm.__init__ = _registered(rec, Comm.__init__)  # type: ignore[method-assign]
    Collectives._run_node = _node_slice(rec, Collectives._run_node)  # type: ignore[method-assign]
    return readers


def _registered(rec: Recorder, init: Callable[..., None]) -> Any:
    """``Comm.__init__``, keeping every communicator of the traced transport (calls name
    theirs by context)."""

    @functools.wraps(init)
    def traced_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if self._t is rec.transport:
            rec.comms[self._ctx] = self

    return traced_init


def _node_slice(rec: Recorder, run_node: Callable[..., Any]) -> Any:
    """``_run_node`` recorded as a nested slice (category ``node``) named by its kind."""

    @functools.wraps(run_node)
    def traced(self: Any, node: Any, timeout: Any, what: Any) -> Any:
        t0 = clock()
        try:
            return run_node(self, node, timeout, what)
        finally:
            label = f"{node.kind} (node memory)"
            rec.add((SLICE, get_ident(), t0, clock(), "node", label, _nbytes(node.args)))

    return traced


def _nbytes(args: Any) -> int:
    """The bytes of a node-level call's buffers (its first: views, or the input)."""
    first = args[0] if args else None
    if isinstance(first, list):
        return sum(v.nbytes for v in first)
    return int(getattr(first, "nbytes", -1))


# ---- the transport ----------------------------------------------------------------------------
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
            rec.add((SLICE, get_ident(), t0, t1, "copy", "copy"))
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
        rec.comms[world._ctx] = world
        rec.running = functools.partial(_running, _wrap_calls(rec))
        rec.watch = _copies(rec, transport)
        rec.attach()
        target = _Target(self.directory, self.single, transport.rank, transport.size)
        atexit.register(_write, rec, target)
        _write_on_sigterm(rec, target)
        return rec


def event_limit(environ: Mapping[str, str]) -> int:
    """Events a rank records at most (calls, waits, message ends;
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
