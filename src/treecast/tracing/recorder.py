"""A rank's events in memory, and its trace file.

The hooks of :mod:`.hooks` append what happens to the process's :class:`Recorder` and do
nothing else, so that a traced call costs little more than two clock reads and one tuple;
what the events mean together (which call a message or an algorithm belongs to, each call's
sequence number, which calls are nested) is worked out once, when the rank's file is made
(:meth:`Recorder.contents`, the format :mod:`.merge` reads). Timestamps are
``time.perf_counter_ns`` (``CLOCK_MONOTONIC`` on Linux, one clock for every process of a
machine). Events are tuples of numbers and strings, which the garbage collector stops
tracking, at most ``TREECAST_TRACE_EVENTS`` (default 1,000,000, some 200 bytes each) of each
kind per rank; later ones are only counted.
"""

from __future__ import annotations

import operator
import os
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from ..transports.base import Call, Transport, describe
from .merge import CALLS, FORMAT, VERSION, Nesting, spans_by_thread

clock = time.perf_counter_ns
thread_id = threading.get_ident
"""The recording thread (no system call, unlike its native id: the file has those)."""
DEFAULT_EVENTS = 1_000_000
"""Most events of each kind one rank records by default (``TREECAST_TRACE_EVENTS``)."""
COPY_SLICE_BYTES = 1 << 16
"""Sends and receives from this size on are large: their copies are shown."""
NUMBERED = frozenset({"collective", "comm"})
"""Slice categories of calls that take collective sequence numbers."""


class Recorder:
    """This process's events.

    Attributes:
        slices: ``(tid, t0, t1, category, name, *details)``: for calls ``(comm id, seq0,
            seq1, root, error)`` (seq0 and seq1: the communicator's collective counter
            before and after; see :func:`own_numbers`), for waits ``(what: a string or a
            Call as a plain tuple, peer, error)``, for copies ``(bytes, source)`` or ``()``,
            for node-memory parts ``(bytes,)``.
        fills: ``(tid, ts, algorithm, bytes, collective)``: a call ran ``algorithm`` (the
            innermost call that spans ``ts`` on its thread, if it is of ``collective``, or
            any call when None).
        sends: ``(tid, ts, dest, context, tag, k, nbytes)``: this rank's ``k``-th message
            to ``dest``.
        recvs: ``(tid, ts, source, context, tag, k, nbytes)``: the ``k``-th message to
            arrive from ``source``. Messages between two ranks arrive in the order they were
            sent in every treecast transport (one ring, queue or MPI channel per pair), so
            both ends count alike, and ``(source, dest, k)`` names one message.
        comms: every communicator by id (calls name theirs by id).
        large: large sends and receives in flight (a ``SendOp`` or an ``Incoming``).
        running: gives the calls and waits running right now, as slices that end at the
            time it is given (the hooks find them on the threads' stacks: the frames of the
            code objects in ``running_codes``).
    """

    def __init__(self, transport: Transport, limit: int = DEFAULT_EVENTS) -> None:
        self.transport = transport
        self.slices: list[tuple[Any, ...]] = []
        self.fills: list[tuple[Any, ...]] = []
        self.sends: list[tuple[int, ...]] = []
        self.recvs: list[tuple[int, ...]] = []
        self.limit = limit
        self.dropped = 0
        self.comms: dict[int, Any] = {}
        self.large: list[Any] = []
        self.counted_out = [0] * transport.size
        """Messages sent so far to each rank."""
        self.counted_in = [0] * transport.size
        """Messages arrived so far from each rank."""
        self._held: dict[int, tuple[Any, int]] = {}
        self.running: Callable[[int], list[tuple[Any, ...]]] = lambda now: []
        self.running_codes: dict[Any, str] = {}
        self.anchor = (clock(), time.time_ns())
        self.written = False

    def add(self, slice_: tuple[Any, ...]) -> None:
        """Keep a slice while there is room."""
        if len(self.slices) < self.limit:
            self.slices.append(slice_)
        else:
            self.dropped += 1

    # ---- messages -------------------------------------------------------------------------------
    def sent(self, ts: int, dest: int, ctx: int, tag: int, nbytes: int) -> None:
        """A message to ``dest`` left at ``ts``."""
        k = self.counted_out[dest]
        self.counted_out[dest] = k + 1
        if len(self.sends) < self.limit:
            self.sends.append((thread_id(), ts, dest, ctx, tag, k, nbytes))
        else:
            self.dropped += 1

    def arrived(self, src: int) -> int:
        """Number the message from ``src`` that is arriving."""
        k = self.counted_in[src]
        self.counted_in[src] = k + 1
        return k

    def received(self, src: int, ctx: int, tag: int, k: int, nbytes: int) -> None:
        """Message ``k`` from ``src`` has been delivered to its receive."""
        if len(self.recvs) < self.limit:
            self.recvs.append((thread_id(), clock(), src, ctx, tag, k, nbytes))
        else:
            self.dropped += 1

    def held(self, msg: Any) -> None:
        """An arrived message (an ``Incoming``) waits for its bytes or its receive: numbered
        now, noted when :meth:`delivered`."""
        self._held[id(msg)] = (msg, self.arrived(msg.src))

    def delivered(self, msg: Any) -> None:
        entry = self._held.pop(id(msg), None)
        if entry is not None:
            self.received(msg.src, msg.ctx, msg.tag, entry[1], msg.nbytes)

    def prune_large(self) -> None:
        """Forget the large sends and receives that have finished."""
        self.large = [x for x in self.large if not (x.done if hasattr(x, "done") else x.complete)]

    # ---- the rank's file ------------------------------------------------------------------------
    def contents(self) -> dict[str, Any]:
        """This rank's trace file (see :class:`~.merge.RankTrace`); calls still running
        are closed now and marked unfinished."""
        now = clock()
        raw = list(self.slices)
        finished = len(raw)
        raw += self.running(now)
        calls = _nestings(raw)
        algorithms = _algorithms(raw, calls, self.fills)
        seqs = own_numbers(raw)
        slices = []
        for i, s in enumerate(raw):
            if s[3] == "request" and _inside_another(calls, s[0], i):
                continue  # a request waited for inside a call is part of that call
            row = self._row(s, seqs.get(i), algorithms.get(i))
            if i >= finished:
                row[5]["unfinished"] = True
            slices.append(row)
        return self._file(slices)

    def _file(self, slices: list[list[Any]]) -> dict[str, Any]:
        t = self.transport
        mono, wall = self.anchor
        threads = {th.ident: th for th in threading.enumerate()}
        main = threading.main_thread().ident
        idents = sorted({s[0] for s in slices} | {m[0] for m in (*self.sends, *self.recvs)})
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
            "sends": [(native[m[0]], *m[1:]) for m in self.sends],
            "recvs": [(native[m[0]], *m[1:]) for m in self.recvs],
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
            comm, _, _, root, error = details
            args = {"comm": self.comms[comm].name} if comm in self.comms else {}
            found = {"seq": seq, "root": root, "algorithm": algo[0] if algo else None}
            for key, value in (*found.items(), ("error", error)):
                if value is not None:
                    args[key] = _jsonable(value)
            if cat != "p2p":
                args["bytes"] = algo[1] if algo else -1
        return [tid, t0, t1, cat, name, args]


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
