"""Neighbourhood exchange (topology communicators): one message per edge of the graph.

::

    out-edges of r:  r --block j--> outs[j]      in-edges of r:  ins[i] --block nout+i--> r

Every rank first posts a send along each out-edge (in ``order``: messages between one pair
of ranks match in order, so a rank sends them in the order its neighbour's in-edges list
it), then receives along each in-edge, in order. Edges to or from ``PROC_NULL`` (the border
of a non-periodic grid) carry nothing. Cost: one round, ``max(len(outs), len(ins))``
messages per rank: ``a + n b`` per edge, all in flight at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ..constants import PROC_NULL
from .schedule import Recv, Send, Step


def exchange(
    outs: Sequence[int], ins: Sequence[int], order: Sequence[int], same: bool
) -> Iterator[Step]:
    """The steps of one rank: block ``j`` (block 0 for every edge when ``same``: an
    allgather sends one value) to ``outs[j]`` for ``j`` in ``order``, then block
    ``len(outs) + i`` from ``ins[i]``."""
    for j in order:
        if outs[j] != PROC_NULL:
            yield Send(outs[j], blocks=(0 if same else j,))
    base = len(outs)
    for i, src in enumerate(ins):
        if src != PROC_NULL:
            yield Recv(src, blocks=(base + i,))
