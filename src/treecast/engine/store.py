"""Run a block schedule over a store of blocks: one engine for objects and for buffers,
blocking or step by step.

:func:`execute` is a generator: it runs steps until it must wait, yields the transport
operation it waits for, and goes on when resumed. :func:`run` drives it with blocking
waits; :class:`engine.progress.CollectiveRequest` drives it from ``test``/``wait`` and from
the progress loop of other blocking calls (the ``I*`` collectives).

Stores (see ``algorithms/schedule.py`` for what block ids mean per collective):

- :class:`ObjectStore`: block id -> Python object and/or its pickled frames, each made
  when first needed (a gather's interior ranks forward frames without unpickling them). A
  message of one block is its frames; of several, ``[index, frames...]`` where the index
  lists the number of blocks and each block's frame count.
- :class:`BufferStore`: block id -> a byte range of one of a few flat buffers, with a dtype
  for reductions. Messages are raw bytes: blocks adjacent in memory travel as one frame and
  land straight in place; anything else goes through a scratch buffer.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Generator, Iterable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from ..algorithms.schedule import LEFT, OVERWRITE, Combine, Recv, Send, Step, WaitAll
from ..errors import CollectiveMismatchError, InvalidArgumentError, SerializationError
from ..message import frames as frames_mod
from ..transports.base import Activity, RecvOp, SendOp, Transport, describe
from .signatures import mismatch_error, signature

Wait = RecvOp | SendOp
WHOLE = (0,)
"""Block ids of a whole-payload step (bcast, barrier): the payload is block 0."""


class ObjectStore:
    """Blocks that are Python objects (lowercase collectives).

    Args:
        objects: initial blocks, id -> object.
        op: binary callable ``op(left, right)`` for reductions (an :class:`treecast.ops.Op`).
        where: the call, for error messages.
    """

    mutable = False

    def __init__(
        self,
        objects: dict[int, Any] | None = None,
        op: Callable[[Any, Any], Any] | None = None,
        where: str = "",
    ) -> None:
        self.objects: dict[int, Any] = dict(objects or {})
        self.frames: dict[int, list[memoryview]] = {}
        self.op = op
        self.where = where
        self.rank = -1
        """This rank in the collective's communicator (named by a marker it sends)."""
        self.failure: SerializationError | None = None
        """The first of this rank's blocks that could not be pickled: a marker went in its
        place, and the collective's caller raises this once the collective has ended."""

    def has(self, b: int) -> bool:
        return b in self.objects or b in self.frames

    def get(self, b: int) -> Any:
        """The object of block ``b`` (unpickled on first use).

        Raises:
            DeserializationError: its bytes cannot be rebuilt here.
        """
        try:
            return self.objects[b]
        except KeyError:
            obj = self.objects[b] = frames_mod.loads(self.frames[b], self.where)
            return obj

    def _frames_of(self, b: int) -> list[memoryview]:
        try:
            return self.frames[b]
        except KeyError:
            f, failure = frames_mod.dumps_or_marker(self.objects[b], self.where, self.rank)
            if failure is not None and self.failure is None:
                self.failure = failure
            self.frames[b] = f
            return f

    def freeze(self, ids: Iterable[int] | None = None) -> None:
        """Pickle these blocks now (default: all), before anything is sent: one that cannot
        be pickled becomes a marker (:attr:`failure`), so that every rank still ends the
        collective in step."""
        for b in list(self.objects) if ids is None else ids:
            if b in self.objects:
                self._frames_of(b)

    def release(self) -> None:
        """Nothing to give back (objects own their frames)."""

    def set_frames(self, b: int, frames: list[memoryview]) -> None:
        self.frames[b] = frames
        self.objects.pop(b, None)

    def pack(self, blocks: Sequence[int]) -> list[memoryview]:
        if len(blocks) == 1:
            frames = self.frames.get(blocks[0])
            return frames if frames is not None else self._frames_of(blocks[0])
        out: list[memoryview] = []
        index = [len(blocks)]
        for b in blocks:
            f = self._frames_of(b)
            index.append(len(f))
            out += f
        return [memoryview(struct.pack(f"<{len(index)}I", *index)), *out]

    def segment(self, offset: int, nbytes: int) -> memoryview:
        raise InvalidArgumentError("byte segments need a buffer payload, not objects")

    def target(self, step: Recv, blocks: Sequence[int]) -> memoryview | None:
        return None

    def deliver(
        self, step: Recv, blocks: Sequence[int], frames: list[memoryview], what: Activity
    ) -> None:
        if len(blocks) == 1:
            parts = [frames]
        else:
            head = frames[0]
            count = struct.unpack_from("<I", head)[0]
            if count != len(blocks):
                raise CollectiveMismatchError(
                    f"{describe(what)}: rank {step.peer} sent {count} blocks where {len(blocks)} "
                    "were expected; the ranks disagree on the collective's root or size"
                )
            lengths = struct.unpack_from(f"<{1 + count}I", head)[1:]
            parts, pos = [], 1
            for n in lengths:
                parts.append(frames[pos : pos + n])
                pos += n
        for b, part in zip(blocks, parts, strict=True):
            if step.reduce == OVERWRITE or not self.has(b):
                self.set_frames(b, part)
            else:
                incoming = frames_mod.loads(part, self.where)
                self._combine(incoming, b, step.reduce)

    def _combine(self, incoming: Any, b: int, side: int) -> None:
        assert self.op is not None, "a reduction step needs an operator"
        local = self.get(b)
        if type(incoming) is frames_mod.SendFailed or type(local) is frames_mod.SendFailed:
            # a part is missing: the reduction has no value, pass the marker on
            result = local if type(local) is frames_mod.SendFailed else incoming
        else:
            result = self.op(incoming, local) if side == LEFT else self.op(local, incoming)
        self.objects[b] = result
        self.frames.pop(b, None)

    def combine(self, step: Combine) -> None:
        if not self.has(step.dst):
            self.objects[step.dst] = self.get(step.src)
            self.frames.pop(step.dst, None)
        else:
            self._combine(self.get(step.src), step.dst, step.side)


_SCRATCH_POOL: list[memoryview] = []
"""Scratch buffers of finished collectives, reused: a fresh large allocation costs a page
fault per 4 KiB on first touch, more than the copy it serves."""
_POOL_KEEP = 4


def _take_scratch(n: int) -> memoryview:
    pool = _SCRATCH_POOL
    for i, buf in enumerate(pool):
        if buf.nbytes >= n:
            return pool.pop(i)
    if len(pool) >= _POOL_KEEP:
        pool.pop(0)
    return memoryview(np.empty(max(n, 4096), np.uint8)).cast("B")  # type: ignore[arg-type]


class BufferStore:
    """Blocks that are byte ranges of flat buffers (capitalised collectives).

    Args:
        bases: the flat writable byte views that blocks live in (the receive buffer, a
            work copy, ...); block ``b`` is ``bases[layout[b][0]][off : off + n]``.
        layout: id -> ``(base index, byte offset, byte count)``.
        dtype: element type, for reductions.
        op: an :class:`treecast.ops.Op` for reductions.
        present: ids that hold data at the start (default: all).
    """

    mutable = True

    def __init__(
        self,
        bases: Sequence[memoryview],
        layout: dict[int, tuple[int, int, int]],
        dtype: np.dtype | None = None,
        op: Any = None,
        present: Iterable[int] | None = None,
    ) -> None:
        self.bases = bases
        self.layout = layout
        self.dtype = dtype
        self.op = op
        self.present = set(layout if present is None else present)
        self._scratch: memoryview | None = None
        self._in_place = False
        self._landed = memoryview(b"")

    def view(self, b: int) -> memoryview:
        base, off, n = self.layout[b]
        return self.bases[base][off : off + n]

    def _span(self, blocks: Sequence[int]) -> memoryview | None:
        """One view covering ``blocks`` if they are adjacent in memory, in order."""
        base, start, n = self.layout[blocks[0]]
        end = start + n
        for b in blocks[1:]:
            bb, off, nb = self.layout[b]
            if bb != base or off != end:
                return None
            end += nb
        return self.bases[base][start:end]

    def nbytes(self, blocks: Sequence[int]) -> int:
        return sum(self.layout[b][2] for b in blocks)

    def pack(self, blocks: Sequence[int]) -> list[memoryview]:
        span = self._span(blocks)
        return [span] if span is not None else [self.view(b) for b in blocks]

    def _scratch_of(self, n: int) -> memoryview:
        if self._scratch is None or self._scratch.nbytes < n:
            if self._scratch is not None:
                _SCRATCH_POOL.append(self._scratch)
            self._scratch = _take_scratch(n)
        return self._scratch[:n]

    def release(self) -> None:
        """Give the scratch buffer back to the pool (the collective has finished)."""
        if self._scratch is not None:
            _SCRATCH_POOL.append(self._scratch)
            self._scratch = None

    def segment(self, offset: int, nbytes: int) -> memoryview:
        return self.view(0)[offset : offset + nbytes]

    def target(self, step: Recv, blocks: Sequence[int]) -> memoryview | None:
        """Where the message lands: in place if it can (then ``_in_place``), else scratch."""
        self._in_place = True
        if step.nbytes >= 0:
            return self.segment(step.offset, step.nbytes)
        if step.reduce == OVERWRITE:
            span = self._span(blocks)
            if span is not None:
                return span
        self._in_place = False
        self._landed = self._scratch_of(self.nbytes(blocks))
        return self._landed

    def _array(self, view: memoryview) -> np.ndarray:
        return np.frombuffer(view, dtype=self.dtype)

    def deliver(
        self, step: Recv, blocks: Sequence[int], frames: list[memoryview], what: Activity
    ) -> None:
        if self._in_place:
            self.present.update(blocks)
            return
        landed = self._landed
        pos = 0
        for b in blocks:
            dst = self.view(b)
            piece = landed[pos : pos + dst.nbytes]
            pos += dst.nbytes
            if step.reduce == OVERWRITE or b not in self.present:
                dst[:] = piece
                self.present.add(b)
            elif dst.nbytes:
                self.op.apply_buffer(self._array(piece), self._array(dst), step.reduce == LEFT)

    def combine(self, step: Combine) -> None:
        src, dst = self.view(step.src), self.view(step.dst)
        if step.dst not in self.present:
            dst[:] = src
            self.present.add(step.dst)
        elif dst.nbytes:
            self.op.apply_buffer(self._array(src), self._array(dst), step.side == LEFT)


Store = ObjectStore | BufferStore


def execute(
    steps: Iterable[Step],
    transport: Transport,
    group: Sequence[int],
    ctx: int,
    tag: int,
    store: Store,
    what: Activity,
) -> Generator[Wait, None, None]:
    """Run ``steps`` over ``store``; yield each operation that must complete before going on.

    Raises (from the generator):
        CollectiveMismatchError: a peer is in another collective or sent other blocks.
        InvalidArgumentError: a peer sent another number of bytes than this rank expects
            (ranks passed different counts).
        DeserializationError: an object received cannot be rebuilt here.
    """
    sig = signature(what)
    sends: list[tuple[SendOp, tuple[int, ...]]] = []
    mutable = store.mutable
    steps = tuple(steps)
    posted: RecvOp | None = None  # the next step's receive, posted before this step's send
    target: memoryview | None = None
    try:
        for i, step in enumerate(steps):
            if type(step) is Send:
                blocks = step.blocks or WHOLE if step.nbytes < 0 else (-1 - step.offset,)
                out = (
                    store.pack(blocks)
                    if step.nbytes < 0
                    else [store.segment(step.offset, step.nbytes)]
                )
                wdest = group[step.peer]
                if len(out) == 1 and transport.send_inline(wdest, ctx, tag, out[0], sig):
                    continue  # sent whole at once: nothing in flight
                nxt = steps[i + 1] if i + 1 < len(steps) else None
                if type(nxt) is Recv and (not mutable or _disjoint(_ids_of(nxt), blocks, sends)):
                    # post the receive first: the peer's data then lands in place, not in
                    # a fresh unexpected-message buffer that must be copied again
                    target = store.target(nxt, _ids_of(nxt))
                    posted = transport.irecv(ctx, group[nxt.peer], tag, target)
                sends.append((transport.isend(wdest, ctx, tag, out, sig), blocks))
            elif type(step) is Recv:
                blocks = step.blocks or WHOLE if step.nbytes < 0 else (-1 - step.offset,)
                if posted is not None:
                    recv, posted = posted, None
                else:
                    if mutable and sends:
                        yield from _wait_sends(sends, blocks)
                    target = store.target(step, blocks)
                    got = transport.recv_inline(ctx, group[step.peer], tag, target)
                    if got is not None:  # a small message already there: no request
                        _check(got[3], got[2], step, target, sig, what)
                        store.deliver(step, blocks, [memoryview(got[0])], what)
                        continue
                    recv = transport.irecv(ctx, group[step.peer], tag, target)
                if not recv.done:
                    yield recv
                if recv.sig == sig and recv.error is not None:
                    raise recv.error  # truncation: says more than a size mismatch
                _check(recv.sig, recv.nbytes, step, target, sig, what)
                store.deliver(step, blocks, recv.frames, what)
            elif type(step) is Combine:
                if mutable and sends:
                    yield from _wait_sends(sends, (step.dst,))
                store.combine(step)
            elif type(step) is WaitAll:
                for op, _ in sends:
                    if not op.done:
                        yield op
                sends.clear()
        for op, _ in sends:
            if not op.done:
                yield op
    finally:
        if mutable:  # only buffer stores hold scratch memory to give back
            store.release()


def _check(
    got_sig: int, nbytes: int, step: Recv, target: memoryview | None, sig: int, what: Activity
) -> None:
    """Raise if a received message belongs to another collective, or has another size than
    this rank expects."""
    if got_sig != sig:
        raise mismatch_error(what, step.peer, got_sig, sig)
    if target is not None and nbytes != target.nbytes:
        raise InvalidArgumentError(
            f"{describe(what)}: received {nbytes} bytes from rank {step.peer} "
            f"where this rank expected {target.nbytes}; the ranks passed different "
            "counts or buffer sizes"
        )


@lru_cache(maxsize=1024)
def sent_ids(steps: tuple[Step, ...]) -> tuple[int, ...]:
    """Block ids a rank's steps send (first occurrence order): what an object store must
    pickle before the run (:meth:`ObjectStore.freeze`)."""
    seen: dict[int, None] = {}
    for s in steps:
        if type(s) is Send:
            seen.update(dict.fromkeys(s.blocks or WHOLE))
    return tuple(seen)


def _ids_of(step: Send | Recv) -> tuple[int, ...]:
    """The block ids a step reads or writes; a byte segment gets an id of its own (negative,
    from its offset), so a pipeline's receive waits only for sends of that same segment."""
    if step.nbytes >= 0:
        return (-1 - step.offset,)
    return step.blocks or WHOLE


def _disjoint(
    blocks: Sequence[int], sending: Sequence[int], sends: list[tuple[SendOp, tuple[int, ...]]]
) -> bool:
    """True if no send in flight (nor the one being posted) reads any of ``blocks``."""
    touched = set(blocks)
    return touched.isdisjoint(sending) and all(
        op.done or touched.isdisjoint(sent) for op, sent in sends
    )


def _wait_sends(
    sends: list[tuple[SendOp, tuple[int, ...]]], blocks: Sequence[int]
) -> Generator[Wait, None, None]:
    """Wait for the sends in flight that still read any of ``blocks`` (write-after-send)."""
    touched = set(blocks)
    for op, sent in sends:
        if not op.done and not touched.isdisjoint(sent):
            yield op


def run(
    steps: Iterable[Step],
    transport: Transport,
    group: Sequence[int],
    ctx: int,
    tag: int,
    store: Store,
    what: Activity,
    timeout: float | None = None,
) -> None:
    """Run ``steps`` to completion with blocking waits.

    Raises:
        TimeoutError, ProcessFailedError: as any blocking wait.
        CollectiveMismatchError, InvalidArgumentError, DeserializationError: see :func:`execute`.
    """
    for op in execute(steps, transport, group, ctx, tag, store, what):
        transport.wait_op(op, timeout, what)
