"""What a traced rank records, and how the library's hot paths record it.

A transport has ``_rec``: None, unless tracing is on (:mod:`.hooks` attaches a
:class:`~.recorder.Recorder` to the world transport), and then a plain list. The places
that know what happens test it once (``if rec is not None:``; off costs that test and
nothing else) and append to it: the communicator's hot calls (object ``bcast``,
``barrier``, every collective made from a planning function, ``send``, ``recv``, ``Recv``)
their slice, with two clock readings; the transport each message that leaves and arrives
(where it touches the header), each wait and each delivery of a held message. Nothing is
formatted, looked up, counted or matched while the program runs: :func:`.recorder.decode`
works out what the events mean together when the rank's file is made.

Every item costs on the latency path: on this project's 2-core machine a clock reading is
some 150-300 ns there (its cache lines are cold once per call), and every object the list
keeps is memory that the next allocation does not find in the cache. So the records hold
only what cannot be worked out later, and the most frequent ones are *flat*
(:data:`FLAT`): their items go into the list one after the other with one ``extend`` (one
call: no other thread's items come in between; no tuple is kept, none for the garbage
collector to visit). The message ends of the fast paths take no clock reading and name no
thread: the next moment recorded after them (almost always the end of their own call, or a
wait in it) stands for their time and thread (:func:`.recorder.place`). The records (the
first item is the kind; ``tid`` is ``threading.get_ident()``):

- flat ``BCAST, tid, t0, t1, ctx, seq, root, algorithm`` and ``BARRIER, tid, t0, t1, ctx,
  seq, algorithm``, ``CALL, tid, t0, t1, name, ctx, seq, root, algorithm, bytes``: a
  collective of the communicator of point-to-point context ``ctx``, numbered ``seq`` (-1:
  it took no number), run by ``algorithm`` (None: not chosen) with root ``root`` (-1:
  none) on ``bytes`` (-1: objects);
- flat ``P2P, tid, t0, t1, name, ctx``: a point-to-point call;
- flat ``SEND_INLINE, dest, ctx, tag, bytes`` and ``RECV_INLINE, source, ctx, tag, bytes``:
  a small message went out, or came in whole, on a transport's fast path;
- flat ``SEND, tid, ts, dest, ctx, tag, bytes`` and ``RECV, tid, ts, source, ctx, tag,
  bytes``: the same on the other paths (which run in whatever thread makes progress);
- ``(ERROR, tid, error)``: the next call of thread ``tid`` to end ended raising ``error``
  (the name of its class);
- ``(WRAPPED, tid, t0, t1, category, name, ctx, seq0, seq1, root, error)``: a call that the
  hooks wrap; ``seq0`` and ``seq1`` are the communicator's collective counter before and
  after it (see :func:`.recorder.own_numbers`);
- ``(WAIT, tid, t0, t1, what, peer, error)``: blocked (waits of 1 us or more), ``what``
  as the wait names it (a ``Call`` or a string), ``error`` the name of its exception's class;
- ``(ARRIVE, id, source, ctx, tag, bytes)``: a message (``id`` of its ``Incoming``) arrived
  and waits for its bytes or its receive; ``(DELIVER, tid, t0, t1, id, copied)``: it was
  delivered (``copied`` False: its bytes were copied into the receive buffer between t0
  and t1);
- ``(FILL, tid, ts, algorithm, bytes, collective)``: the running wrapped call runs
  ``algorithm``;
- ``(SLICE, tid, t0, t1, category, name, *details)``: anything else shown (copies, node
  memory).

The limit (``TREECAST_TRACE_EVENTS``) is checked off the fast paths (:meth:`.recorder.
Recorder.check`: at garbage collections, which the tuples of kept waits also bring on,
queued sends, held messages and wrapped calls): past it the transport's ``_rec`` becomes an :class:`Overflow` that only counts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import CodeType
from typing import Any, TypeVar

clock = time.perf_counter_ns
tid = get_ident = threading.get_ident
"""The recording thread (no system call, unlike its native id: the file has those)."""


(CALL, BCAST, BARRIER, P2P, ERROR, WRAPPED, WAIT) = range(7)
(SEND_INLINE, RECV_INLINE, SEND, RECV, ARRIVE, DELIVER, FILL, SLICE) = range(7, 15)
FLAT = {CALL: 10, BCAST: 8, BARRIER: 7, P2P: 6, SEND_INLINE: 5, RECV_INLINE: 5, SEND: 7, RECV: 7}
"""The kinds recorded flat, and how many items a record of each has (its kind first);
every other event is one tuple."""
WAIT_SLICE_NS = 1_000
"""A wait shorter than this (it found its operation done almost at once) is not kept."""
LARGE_BYTES = 1 << 16
"""Sends and receives from this size on are large: their copies are shown."""


class Overflow(list[Any]):
    """Where events go once the limit is reached: counted (a record or event as one), not
    kept."""

    __slots__ = ("dropped",)

    def __init__(self) -> None:
        super().__init__()
        self.dropped = 0

    def append(self, event: Any) -> None:
        self.dropped += 1

    def extend(self, record: Any) -> None:
        self.dropped += 1


class Unset:
    """What a recording call holds before its call is numbered and its algorithm chosen:
    ``seq`` -1, ``name`` None (as a ``Call`` and an ``Algorithm`` read)."""

    seq = -1
    name = None
    nbytes = -1
    root = -1


UNSET: Any = Unset()


def note_error(rec: list[Any], error: BaseException) -> None:
    """The call this thread is in is ending with ``error`` (its call event follows)."""
    rec.append((ERROR, get_ident(), type(error).__name__))


RECORDING: dict[CodeType, tuple[str, str]] = {}
"""The functions that record their own call's slice, by code object: ``(category, name)``
(name "": the function's local ``name``). The hooks wrap none of them, and find the calls
still running when the trace is written in their frames (locals ``rec``, ``t0``, ``self``,
``what``, ``root`` or the plan ``p``)."""

F = TypeVar("F", bound=Callable[..., Any])


def records(cat: str, name: str = "") -> Callable[[F], F]:
    """Register the decorated function in :data:`RECORDING` (it is returned unchanged)."""

    def register(fn: F) -> F:
        RECORDING[fn.__code__] = (cat, name)
        return fn

    return register
