"""Run a schedule to completion with blocking waits on a real transport."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..algorithms.schedule import Recv, Send, Step, WaitAll
from ..errors import CollectiveMismatchError, InvalidArgumentError
from ..transports.base import Activity, SendOp, Transport, describe

_NAMES = [
    "barrier",
    "bcast",
    "Bcast",
    "split",
    "check",
    "gather",
    "scatter",
    "allgather",
    "alltoall",
    "Gather",
    "Gatherv",
    "Scatter",
    "Scatterv",
    "Allgather",
    "Allgatherv",
    "Alltoall",
    "Alltoallv",
    "reduce",
    "Reduce",
    "allreduce",
    "Allreduce",
    "Reduce_scatter",
    "Reduce_scatter_block",
    "scan",
    "Scan",
    "exscan",
    "Exscan",
    "neighbor_allgather",
    "neighbor_alltoall",
    "Neighbor_allgather",
    "Neighbor_allgatherv",
    "Neighbor_alltoall",
    "Neighbor_alltoallv",
    "Ineighbor_allgather",
    "Ineighbor_allgatherv",
    "Ineighbor_alltoall",
    "Ineighbor_alltoallv",
]
COLLECTIVE_CODES = {name: code for code, name in enumerate(_NAMES, 1)}
COLLECTIVE_CODES.update(
    {
        ("i" + n if n[0].islower() else "I" + n[0].lower() + n[1:]): c + 64
        for n, c in COLLECTIVE_CODES.items()
    }
)
"""Codes of the collectives, carried in every collective message's signature."""


def signature(what: Activity) -> int:
    """The signature that every message of a collective carries: the collective and its
    root. A receiver that gets another signature knows the ranks disagree (cheap check,
    always on: an integer compare per received message)."""
    if isinstance(what, str):
        return 0
    return COLLECTIVE_CODES.get(what[0], 255) | ((what[3] + 1) << 8)


def describe_signature(sig: int) -> str:
    """Human-readable form of :func:`signature`'s value."""
    names = {code: name for name, code in COLLECTIVE_CODES.items()}
    root = (sig >> 8) - 1
    return names.get(sig & 0xFF, f"collective {sig & 0xFF}") + (
        f" with root {root}" if root >= 0 else ""
    )


def mismatch_error(what: Activity, peer: int, got: int, want: int) -> CollectiveMismatchError:
    return CollectiveMismatchError(
        f"{describe(what)}: rank {peer} sent a message of {describe_signature(got)} where this rank "
        f"is in {describe_signature(want)}; every rank must call the same collectives in the "
        "same order with the same root"
    )


class Payload:
    """The data a schedule moves.

    For a buffer collective ``buffer`` is the caller's byte view (received into, sent from)
    and ``frames`` is ``[buffer]``. For an object collective ``buffer`` is None and
    ``frames`` is the pickled object at the root, filled by the first receive elsewhere.
    """

    __slots__ = ("buffer", "frames")

    def __init__(
        self, frames: list[memoryview] | None = None, buffer: memoryview | None = None
    ) -> None:
        self.buffer = buffer
        self.frames: list[memoryview] = [buffer] if buffer is not None else (frames or [])


def run_blocking(
    schedule: Iterable[Step],
    transport: Transport,
    group: Sequence[int],
    ctx: int,
    tag: int,
    payload: Payload,
    what: Activity,
    timeout: float | None = None,
) -> None:
    """Execute ``schedule``; peers are translated to world ranks through ``group``.

    Raises:
        TruncationError, InvalidArgumentError: a received message has another size than
            the buffer (ranks passed buffers of different sizes).
        TimeoutError: ``timeout`` seconds passed.
    """
    sends: list[SendOp] = []
    buffer = payload.buffer
    frames = payload.frames
    sig = signature(what)
    for step in schedule:
        if type(step) is Send:
            world_peer = group[step.peer]
            out = frames if step.nbytes < 0 else [buffer[step.offset : step.offset + step.nbytes]]  # type: ignore[index]
            if len(out) == 1 and transport.send_inline(world_peer, ctx, tag, out[0], sig):
                continue
            sends.append(transport.isend(world_peer, ctx, tag, out, sig))
        elif type(step) is Recv:
            target = buffer
            if buffer is not None and step.nbytes >= 0:
                target = buffer[step.offset : step.offset + step.nbytes]
            got = transport.recv_inline(ctx, group[step.peer], tag, target)
            if got is not None:
                got_sig, nbytes = got[3], got[2]
                if buffer is None and got_sig == sig:
                    payload.frames = frames = [memoryview(got[0])]
                    continue
            else:
                recv = transport.irecv(ctx, group[step.peer], tag, target)
                if not recv.done:
                    transport.wait_op(recv, timeout, what)
                got_sig, nbytes = recv.sig, recv.nbytes
                if got_sig == sig and recv.error is not None:
                    raise recv.error
                if buffer is None and got_sig == sig:
                    payload.frames = frames = recv.frames
                    continue
            if got_sig != sig:
                raise mismatch_error(what, step.peer, got_sig, sig)
            if target is not None and nbytes != target.nbytes:
                raise InvalidArgumentError(
                    f"{describe(what)}: received {nbytes} bytes from rank {step.peer} where this "
                    f"rank expected {target.nbytes}; every rank must pass the same buffer size"
                )
        elif type(step) is WaitAll:
            transport.waitall(sends, timeout, what)
            sends.clear()
    if sends:
        transport.waitall(sends, timeout, what)
