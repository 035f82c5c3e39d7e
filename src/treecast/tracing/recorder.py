"""A rank's events in memory, and its trace file.

The library's hot paths and the hooks of :mod:`.hooks` append what happens to the list
that the transport holds as ``_rec`` (:mod:`.events`) and do nothing else, so that a traced
call costs two clock readings and one record; what the events mean together (which message
is which, which call and thread a message or an algorithm belongs to, each call's sequence
number, which calls are nested, which deliveries were copies) is worked out once, when the
rank's file is made (:meth:`Recorder.contents`, the format :mod:`.merge` reads).
Timestamps are ``time.perf_counter_ns`` (``CLOCK_MONOTONIC`` on Linux, one clock for every
process of a machine). Events are numbers and strings, at most some ``TREECAST_TRACE_EVENTS``
(default 1,000,000, some 100 bytes each) per rank; later ones are only counted.
"""

from __future__ import annotations

import gc
import operator
import os
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

from ..transports.base import Call, Transport, describe
from .events import (
    ARRIVE,
    BARRIER,
    BCAST,
    CALL,
    DELIVER,
    ERROR,
    FILL,
    FLAT,
    LARGE_BYTES,
    P2P,
    RECV,
    SEND,
    SEND_INLINE,
    SLICE,
    WAIT,
    WRAPPED,
    Overflow,
    clock,
)
from .merge import CALLS, FORMAT, VERSION, Nesting, spans_by_thread

DEFAULT_EVENTS = 1_000_000
"""Most events one rank records by default (``TREECAST_TRACE_EVENTS``)."""
NUMBERED = frozenset({"collective", "comm"})
"""Slice categories of calls that take collective sequence numbers."""


class Recorder:
    """This process's events, on the transport ``transport`` (once :meth:`attach` ed).

    Attributes:
        events: what happened, in order (see :mod:`.events`): the transport's ``_rec``.
        limit: events kept at most (checked off the fast paths: it may be passed by the
            events between two checks).
        comms: every communicator of the transport by point-to-point context (calls name
            theirs by it).
        large: large sends and receives in flight (a ``SendOp`` or an ``Incoming``).
        running: gives the calls and waits running right now, as slices that end at the
            time it is given (the hooks find them on the threads' stacks).
    """

    def __init__(self, transport: Transport, limit: int = DEFAULT_EVENTS) -> None:
        self.transport = transport
        self.events: list[Any] = []
        self.limit = limit
        self.spill = Overflow()
        """What the transport records into past the limit: it only counts."""
        self.watch: Callable[[Any], None] = lambda op: None
        """Called with a large send or receive in flight (the hooks time its copies)."""
        self.comms: dict[int, Any] = {}
        self.large: list[Any] = []
        self.running: Callable[[int], list[tuple[Any, ...]]] = lambda now: []
        self.anchor = (clock(), time.time_ns())
        self.written = False

    def attach(self) -> None:
        """Record from now on: the transport (and every communicator on it) appends here;
        the limit is checked at each garbage collection."""
        self.transport._rec = self.events
        self.transport._tracer = self
        if self._collected not in gc.callbacks:
            gc.callbacks.append(self._collected)

    def detach(self) -> None:
        """Stop recording (what was recorded stays)."""
        self.transport._rec = None
        if self._collected in gc.callbacks:
            gc.callbacks.remove(self._collected)

    def _collected(self, phase: str, info: dict[str, int]) -> None:
        if phase == "stop":
            self.check()

    def check(self) -> None:
        """Past the limit, the transport's events are only counted from now on (called at
        garbage collections and on the paths that block, queue or wait for bytes, never on
        the fast paths)."""
        if len(self.events) >= self.limit and self.transport._rec is self.events:
            self.transport._rec = self.spill

    @property
    def dropped(self) -> int:
        """Events not kept: past the limit."""
        return self.spill.dropped

    def add(self, event: tuple[Any, ...]) -> None:
        """Append ``event`` where the transport records now (nowhere when detached)."""
        sink = self.transport._rec
        if sink is not None:
            sink.append(event)

    def prune_large(self) -> None:
        """Forget the large sends and receives that have finished."""
        self.large = [x for x in self.large if not (x.done if hasattr(x, "done") else x.complete)]

    # ---- the rank's file ------------------------------------------------------------------------
    def contents(self) -> dict[str, Any]:
        """This rank's trace file (see :class:`~.merge.RankTrace`); calls still running
        are closed now and marked unfinished."""
        now = clock()
        raw, sends, recvs, fills = decode(list(self.events), self.transport.size, now)
        finished = len(raw)
        raw += self.running(now)
        calls = _nestings(raw)
        place(raw, calls, sends, recvs)
        algorithms = _algorithms(raw, calls, fills)
        seqs = own_numbers(raw)
        slices = []
        for i, s in enumerate(raw):
            if s[3] == "request" and _inside_another(calls, s[0], i):
                continue  # a request waited for inside a call is part of that call
            algo = (s[10], s[11]) if s[3] in CALLS and s[10] is not None else algorithms.get(i)
            row = self._row(s, seqs.get(i), algo)
            if i >= finished:
                row[5]["unfinished"] = True
            slices.append(row)
        return self._file(slices, sends, recvs)

    def _file(
        self, slices: list[list[Any]], sends: list[list[Any]], recvs: list[list[Any]]
    ) -> dict[str, Any]:
        t = self.transport
        mono, wall = self.anchor
        threads = {th.ident: th for th in threading.enumerate()}
        main = threading.main_thread().ident
        idents = sorted({s[0] for s in slices} | {m[0] for m in (*sends, *recvs)})
        idents.sort(key=lambda ident: ident != main)  # its track is labelled "rank N"
        # a thread that has ended keeps its ident (a made-up id in the merged trace)
        native = {i: (threads[i].native_id or i) if i in threads else i for i in idents}
        for row in slices:
            row[0] = native[row[0]]
        return {
            "format": FORMAT,
            "version": VERSION,
            "rank": t.rank,
            "size": t.size,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "boot_id": _boot_id(),
            "clock": {
                "source": time.get_clock_info("perf_counter").implementation,
                "monotonic_ns": mono,
                "wall_ns": wall,
            },
            "threads": [
                [native[i], threads[i].name if i in threads else f"thread {native[i]}"]
                for i in idents
            ],
            "contexts": [[ctx, name] for ctx, name in t.context_names.items()],
            "groups": {c.name: list(c._group) for c in self.comms.values()},
            "slices": slices,
            "sends": [(native[m[0]], *m[1:]) for m in sends],
            "recvs": [(native[m[0]], *m[1:]) for m in recvs],
            "dropped": self.dropped,
        }

    def _row(self, s: tuple[Any, ...], seq: int | None, algo: tuple[str, int] | None) -> list[Any]:
        """A slice as the rank file holds it: ``[tid, t0, t1, category, name, args]``."""
        tid, t0, t1, cat, name, *details = s
        args: dict[str, Any]
        if cat == "wait":
            what, peer, error = details
            what = describe(Call(*what) if type(what) is tuple else what)
            args = {"for": what, "peer": peer} | ({"error": error} if error else {})
        elif cat == "copy":
            args = {"bytes": details[0], "from": details[1]} if details else {}
        elif cat == "node":
            args = {"algorithm": "node memory", "bytes": details[0]}
        else:
            ctx, _, _, root, error = details[:5]
            comm = self.comms.get(ctx)
            name_of = comm.name if comm is not None else self.transport.context_names.get(ctx)
            args = {"comm": name_of} if name_of is not None else {}
            found = {"seq": seq, "root": root, "algorithm": algo[0] if algo else None}
            for key, value in (*found.items(), ("error", error)):
                if value is not None:
                    args[key] = _jsonable(value)
            if cat != "p2p":
                args["bytes"] = algo[1] if algo else -1
        return [tid, t0, t1, cat, name, args]


def decode(
    events: list[tuple[Any, ...]], size: int, end_of_trace: int = 0
) -> tuple[list[tuple[Any, ...]], list[list[Any]], list[list[Any]], list[Any]]:
    """The slices, sends, receives and fills of ``events`` (see :mod:`.events`), in the
    forms the rest of this module and the rank file use:

    - slices ``(tid, t0, t1, category, name, *details)``: calls ``(ctx, seq0, seq1, root,
      error, algorithm, bytes)`` (the number a call took lies in ``(seq0, seq1]``, see
      :func:`own_numbers`), waits ``(what, peer, error)``, copies ``(bytes, source)`` or
      ``()``, node-memory parts ``(bytes,)``;
    - sends ``[tid, ts, dest, ctx, tag, k, bytes]``, this rank's ``k``-th message to
      ``dest``; receives ``[tid, ts, source, ctx, tag, k, bytes]``, the ``k``-th message to
      arrive from ``source``, at the time it was delivered. Messages between two ranks
      arrive in the order they were sent in every treecast transport (one ring, queue or MPI
      channel per pair), so counting both ends in the order of the events names each message
      ``(source, destination, k)`` alike on both. The ends recorded on the fast paths carry
      neither thread nor time: they take the next moment recorded after them
      (``end_of_trace`` if none), and have ``tid`` None and the thread of that moment (or
      of the last one) appended, for :func:`place`;
    - fills ``(tid, ts, algorithm, bytes, collective)``.

    A delivery whose bytes were copied into the receive buffer (a large message that
    arrived before its receive) is also a copy slice.
    """
    slices: list[tuple[Any, ...]] = []
    ends: tuple[list[list[Any]], list[list[Any]]] = ([], [])  # sends, receives
    fills: list[Any] = []
    counts = ([0] * size, [0] * size)
    held: dict[int, tuple[Any, ...]] = {}
    errors: dict[int, str] = {}  # by thread: the error its next call event ended with
    loose: list[list[Any]] = []  # fast-path ends, until an event that names a thread
    last = None  # the thread of the last event that names one
    for e in _records(events):
        kind = e[0]
        if kind in _RECORDED_AT:
            last = e[1]
            for end in loose:  # the next moment of the thread that comes next: see place()
                end[1] = e[_RECORDED_AT[kind]]
                end.append(last)
            loose.clear()
        if kind <= WAIT:
            _call(e, errors, slices)
        elif kind <= RECV:
            way = (kind - SEND_INLINE) % 2  # 0: out, 1: in
            if kind < SEND:
                tid, ts, (peer, ctx, tag, n) = None, None, e[1:]
            else:
                tid, ts, peer, ctx, tag, n = e[1:]
            k = counts[way][peer]
            counts[way][peer] = k + 1
            ends[way].append([tid, ts, peer, ctx, tag, k, n])
            if tid is None:
                loose.append(ends[way][-1])
        elif kind == ARRIVE:
            src = e[2]
            held[e[1]] = (src, *e[3:5], counts[1][src], e[5])
            counts[1][src] += 1
        elif kind == DELIVER:
            tid, t0, t1, ident, copied = e[1:]
            msg = held.pop(ident, None)
            if msg is not None:
                if not copied and msg[4] >= LARGE_BYTES:
                    slices.append((tid, t0, t1, "copy", "copy", msg[4], msg[0]))
                ends[1].append([tid, t1, *msg])
        elif kind == FILL:
            fills.append(e[1:])
        else:
            slices.append(e[1:])
    for end in loose:  # after the last moment: the end of the trace, the last thread
        end[1] = end_of_trace
        end.append(last)
    return slices, ends[0], ends[1], fills


def _records(events: list[Any]) -> Iterator[tuple[Any, ...]]:
    """Each event of ``events`` as a tuple: the flat records (:data:`~.events.FLAT`) are
    gathered from their items."""
    i, n = 0, len(events)
    while i < n:
        e = events[i]
        if type(e) is tuple:
            yield e
            i += 1
        else:
            width = FLAT[e]
            yield tuple(events[i : i + width])
            i += width


_RECORDED_AT = {
    **dict.fromkeys((CALL, BCAST, BARRIER, P2P, WRAPPED, WAIT, DELIVER, SLICE), 3),
    **dict.fromkeys((SEND, RECV, FILL), 2),
}
"""Where each kind of event that names its thread holds the moment it was recorded."""


def _call(e: tuple[Any, ...], errors: dict[int, str], slices: list[tuple[Any, ...]]) -> None:
    """The slice of call or wait event ``e`` (an ``ERROR`` is kept for its thread's next)."""
    kind, tid = e[0], e[1]
    if kind == ERROR:
        errors[tid] = e[2]
        return
    if kind == WAIT:
        slices.append((*e[1:4], "wait", "wait", *e[4:]))
        return
    if kind == WRAPPED:
        slices.append((*e[1:], None, -1))
        return
    t0, t1 = e[2], e[3]
    if kind == P2P:
        name, ctx = e[4:]
        slices.append((tid, t0, t1, "p2p", name, ctx, 0, 0, None, errors.pop(tid, None), None, -1))
        return
    if kind == BCAST:
        name, (ctx, seq, root, algo), nbytes = "bcast", e[4:], -1
    elif kind == BARRIER:
        name, (ctx, seq, algo), root, nbytes = "barrier", e[4:], -1, 0
    else:
        name, ctx, seq, root, algo, nbytes = e[4:]
    seqs = (seq - 1, seq) if seq >= 0 else (0, 0)
    error, root = errors.pop(tid, None), None if root == -1 else root
    slices.append((tid, t0, t1, "collective", name, ctx, *seqs, root, error, algo, nbytes))


def place(
    slices: list[tuple[Any, ...]],
    calls: dict[int, Nesting],
    sends: list[list[Any]],
    recvs: list[list[Any]],
) -> None:
    """Give each message end of the fast paths (no thread, the guess of :func:`decode`
    appended) its thread: among the threads with a call that spans its time, one whose
    innermost such call is of its communicator (and, for a collective's message, has its
    number), else the guessed thread if it is one of them, else the first; with none, the
    guess. The fast paths run inside the calls that send and receive (the engine's steps
    and point-to-point ``send``/``recv``) or in the progress of a non-blocking collective,
    and the next moment recorded is nearly always their own call's end or wait, so in a
    program of one thread the guess is its thread and the time falls inside the call that
    moved the message, and with several the calls decide."""
    for end in (*sends, *recvs):
        if end[0] is not None:
            continue
        ts, ctx, tag, guess = end[1], end[3], end[4], end.pop()
        spanning = []
        for tid, nesting in calls.items():
            i = nesting.innermost(ts)
            if i is not None:
                spanning.append(tid)
                if _carries(slices[i], ctx, tag):
                    end[0] = tid
                    break
        else:
            end[0] = guess if guess in spanning or not spanning else spanning[0]
        if end[0] is None:
            end[0] = guess if guess is not None else threading.main_thread().ident


def _carries(call: tuple[Any, ...], ctx: int, tag: int) -> bool:
    """Whether a message of context ``ctx`` and tag ``tag`` can be one of ``call``'s."""
    if call[5] is None:  # a request's wait
        return False
    if call[3] == "p2p":
        return bool(ctx == call[5])
    return bool(ctx == call[5] + 1 and call[6] < tag <= call[7])


def _nestings(slices: list[tuple[Any, ...]]) -> dict[int, Nesting]:
    """The call slices of each thread (by tid), nested."""
    return {
        tid: Nesting(found) for tid, found in spans_by_thread(slices, CALLS.__contains__).items()
    }


def _inside_another(calls: dict[int, Nesting], tid: int, i: int) -> bool:
    nesting = calls[tid]
    return nesting.parent[nesting.position[i]] >= 0


def _algorithms(
    slices: list[tuple[Any, ...]], calls: dict[int, Nesting], fills: list[tuple[Any, ...]]
) -> dict[int, tuple[str, int]]:
    """The algorithm and payload bytes of each call slice (by index): the first fill inside
    it, not inside a call within it, of its own collective (a private exchange, such as
    ``TREECAST_DEBUG``'s check, runs another collective's algorithm)."""
    found: dict[int, tuple[str, int]] = {}
    for tid, ts, algo, nbytes, collective in fills:
        nesting = calls.get(tid)
        i = None if nesting is None else nesting.innermost(ts)
        if i is None or i in found:
            continue
        cat, name = slices[i][3], slices[i][4]
        if collective is None or cat != "collective" or collective in name.lower():
            found[i] = (algo, nbytes)
    return found


def own_numbers(slices: list[tuple[Any, ...]]) -> dict[int, int]:
    """The collective sequence number of each call slice (by index) that took one: the first
    number its communicator's counter passed during the call (``seq0 < n <= seq1``) that no
    call inside it on the same communicator took. A call made only of other calls
    (``bcast(copy=False)``) has none. Calls of one communicator made at the same time by
    several threads may show each other's numbers."""
    by_thread: dict[int, list[int]] = defaultdict(list)
    for i, s in enumerate(slices):
        if s[3] in NUMBERED:
            by_thread[s[0]].append(i)
    own: dict[int, int] = {}
    for idxs in by_thread.values():
        idxs.sort(key=lambda i: (slices[i][1], -slices[i][2]))
        inside: dict[int, list[int]] = defaultdict(list)
        open_: list[int] = []
        for i in idxs:
            while open_ and slices[open_[-1]][2] < slices[i][1]:
                open_.pop()
            if open_:
                inside[open_[-1]].append(i)
            open_.append(i)
        for i in idxs:
            comm, seq0, seq1 = slices[i][5:8]
            taken = [slices[c][6:8] for c in inside[i] if slices[c][5] == comm]
            for n in range(seq0 + 1, seq1 + 1):
                if not any(a < n <= b for a, b in taken):
                    own[i] = n
                    break
    return own


def _jsonable(value: Any) -> Any:
    """A recorded value as JSON can hold it (a NumPy integer root becomes an int)."""
    if isinstance(value, str | int):
        return value
    try:
        return operator.index(value)
    except TypeError:
        return repr(value)


def _boot_id() -> str:
    """This machine's boot id: processes that share it share ``CLOCK_MONOTONIC``."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return ""
