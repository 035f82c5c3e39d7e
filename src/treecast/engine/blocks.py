"""Run a block schedule (gather, scatter, allgather, alltoall) with blocking waits.

A block is one rank's item as frames (a pickled object). A message carrying several blocks
is ``[index, frames of block a, frames of block b, ...]``, where the index gives the number
of blocks and each one's frame count; the receiver files them, in order, under the ids its
own ``Recv`` step lists (the ids differ between the two sides in alltoall).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

from ..algorithms.schedule import Recv, Send, Step
from ..errors import CollectiveMismatchError
from ..transports.base import Activity, SendOp, Transport, describe
from .blocking import mismatch_error, signature

Block = list[memoryview]


def _pack(blocks: Sequence[int], store: Sequence[Block | None]) -> list[memoryview]:
    frames: list[memoryview] = []
    index = [len(blocks)]
    for b in blocks:
        block = store[b]
        assert block is not None, f"block {b} is not here yet"
        index.append(len(block))
        frames += block
    return [memoryview(struct.pack(f"<{len(index)}I", *index)), *frames]


def _unpack(
    frames: Sequence[memoryview], what: Activity, peer: int, expected: tuple[int, ...]
) -> dict[int, Block]:
    head = frames[0]
    count = struct.unpack_from("<I", head)[0]
    if count != len(expected):
        raise CollectiveMismatchError(
            f"{describe(what)}: rank {peer} sent {count} blocks where {len(expected)} were "
            "expected; the ranks disagree on the collective's root or size"
        )
    lengths = struct.unpack_from(f"<{1 + count}I", head)[1:]
    out: dict[int, Block] = {}
    pos = 1
    for b, n in zip(expected, lengths, strict=True):
        out[b] = list(frames[pos : pos + n])
        pos += n
    return out


def run_blocks(
    schedule: Iterable[Step],
    transport: Transport,
    group: Sequence[int],
    ctx: int,
    tag: int,
    outgoing: list[Block | None],
    incoming: list[Block | None],
    what: Activity,
    timeout: float | None = None,
) -> None:
    """Execute a block schedule: ``Send`` takes blocks from ``outgoing``, ``Recv`` files
    them in ``incoming`` (the same list for gather, scatter and allgather).

    Raises:
        CollectiveMismatchError: a peer is in another collective or sent other blocks.
        TimeoutError, ProcessFailedError: as for any blocking wait.
    """
    sig = signature(what)
    sends: list[SendOp] = []
    for step in schedule:
        if type(step) is Send:
            sends.append(
                transport.isend(group[step.peer], ctx, tag, _pack(step.blocks, outgoing), sig)
            )
        elif type(step) is Recv:
            recv = transport.irecv(ctx, group[step.peer], tag, None)
            if not recv.done:
                transport.wait_op(recv, timeout, what)
            if recv.sig != sig:
                raise mismatch_error(what, step.peer, recv.sig, sig)
            for b, block in _unpack(recv.frames, what, step.peer, step.blocks).items():
                incoming[b] = block
    if sends:
        transport.waitall(sends, timeout, what)
