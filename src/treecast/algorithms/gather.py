"""Gather schedules. Block ``b`` is rank ``b``'s item; the root ends holding every block."""

from __future__ import annotations

from . import blocks
from .schedule import Recv, Schedule, Send


def binomial(rank: int, size: int, root: int) -> Schedule:
    """Binomial-tree gather: a rank receives its children's subtrees (smallest first), then
    sends its whole subtree, one message, to its parent::

        size 8, root 0:   1 -> 0 {1};  3 -> 2 {3};  2 -> 0 {2,3};  5 -> 4 {5}; 7 -> 6 {7};
                          6 -> 4 {6,7};  4 -> 0 {4,5,6,7}

    Cost: ceil(lg p) alpha + (p - 1)/p n beta (n = all blocks). Any p, any root.
    """
    return blocks.binomial_gather(rank, size, root)


def linear(rank: int, size: int, root: int) -> Schedule:
    """Linear gather: every rank sends its block straight to the root, which receives them in
    rank order::

        1 -> 0, 2 -> 0, 3 -> 0, ...

    Cost: (p - 1)(alpha + n beta / p) at the root. Any p; best for few ranks.
    """
    if rank != root:
        yield Send(root, blocks=(rank,))
        return
    for peer in range(size):
        if peer != root:
            yield Recv(peer, blocks=(peer,))
