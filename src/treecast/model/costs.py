"""How many bytes each step of a schedule moves or reduces.

``nbytes`` is what the rule table sees (``selection/default.json``'s ``bytes_*``): the buffer
of a broadcast, the vector of a reduction or scan, the whole gathered buffer of gather,
scatter and allgather, the send buffer of alltoall and of the reduce-scatters. A step moves
either a byte segment (its own ``nbytes``), the whole payload, or blocks whose meaning the
collective fixes (``algorithms/schedule.py``); :func:`block_bytes` gives one block's size.
"""

from __future__ import annotations

from ..algorithms.registry import Algorithm
from ..algorithms.schedule import Step

PER_RANK_BLOCKS = frozenset(
    {"gather", "scatter", "allgather", "alltoall", "reduce_scatter", "reduce_scatter_block"}
)
"""Collectives whose blocks are one rank's share of ``nbytes``."""
WHOLE_VECTOR_BLOCKS = frozenset({"scan", "exscan"})
"""Collectives whose every block is a whole vector."""


def block_bytes(algo: Algorithm, size: int, nbytes: int) -> float:
    """Bytes of one block id of ``algo`` on ``size`` ranks with ``nbytes`` in all (the mean
    where blocks differ by an item)."""
    if algo.collective == "barrier":
        return 0.0
    if algo.collective in WHOLE_VECTOR_BLOCKS:
        return float(nbytes)
    if algo.collective in PER_RANK_BLOCKS:
        return nbytes / size
    return nbytes / algo.chunks(size, nbytes)


def step_bytes(step: Step, block: float, whole: float) -> float:
    """Bytes a Send or Recv moves (a Combine: bytes it reduces): its segment, its blocks of
    ``block`` bytes each, or the ``whole`` payload."""
    n = getattr(step, "nbytes", -1)
    if n >= 0:
        return float(n)
    blocks = getattr(step, "blocks", None)
    if blocks:
        return len(blocks) * block
    if blocks is None:  # Combine: one block
        return block
    return whole
