"""Collective signatures: the collective and root that every collective message carries,
so that a receiver notices ranks that called different collectives."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from ..errors import CollectiveMismatchError
from ..transports.base import ACK_CTX, Activity, Incoming, describe

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


def is_collective(ctx: int) -> bool:
    """Whether context ``ctx`` carries collective messages (a communicator's ``ctx + 1``;
    point-to-point contexts are even, and acknowledgements use their own)."""
    return ctx % 2 == 1 and ctx != ACK_CTX


def describe_leftovers(
    messages: Iterable[Incoming], names: Mapping[int, str], sender: Callable[[int], str]
) -> list[str]:
    """One line per message that no receive took: the collective (or ``point-to-point``),
    its sequence number (tag), the communicator and the sender (``sender(world rank)``)."""
    lines = []
    for m in messages:
        comm = names.get(m.ctx - 1 if is_collective(m.ctx) else m.ctx, f"context {m.ctx:#x}")
        what = (
            f"{describe_signature(m.sig)} #{m.tag}"
            if is_collective(m.ctx)
            else f"point-to-point message (tag {m.tag})"
        )
        lines.append(f"  {what} on {comm} from {sender(m.src)} ({m.nbytes} bytes)")
    return lines
