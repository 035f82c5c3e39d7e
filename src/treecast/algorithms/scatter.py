"""Scatter schedules. Block ``b`` is the item for rank ``b``; the root starts with all."""

from __future__ import annotations

from . import blocks
from .schedule import Recv, Schedule, Send


def binomial(rank: int, size: int, root: int) -> Schedule:
    """Binomial-tree scatter, the gather reversed: receive your subtree's blocks from the
    parent, then pass each child its subtree's blocks (largest subtree first)::

        size 8, root 0:   0 -> 4 {4,5,6,7};  0 -> 2 {2,3};  4 -> 6 {6,7};  0 -> 1 {1}; ...

    Cost: ceil(lg p) alpha + (p - 1)/p n beta (n = all blocks). Any p, any root.
    """
    return blocks.binomial_scatter(rank, size, root)


def linear(rank: int, size: int, root: int) -> Schedule:
    """Linear scatter: the root sends every other rank its block directly::

        0 -> 1, 0 -> 2, 0 -> 3, ...

    Cost: (p - 1)(alpha + n beta / p) at the root. Any p; best for few ranks.
    """
    if rank != root:
        yield Recv(root, blocks=(rank,))
        return
    for peer in range(size):
        if peer != root:
            yield Send(peer, blocks=(peer,))
