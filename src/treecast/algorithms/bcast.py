"""Broadcast schedules."""

from __future__ import annotations

from ..topology.trees import binomial_tree
from .schedule import Recv, Schedule, Send


def binomial(rank: int, size: int, root: int) -> Schedule:
    """Binomial-tree broadcast: receive from the parent, then send to every child::

        step 1: 0 -> 4      step 2: 0 -> 2, 4 -> 6      step 3: 0 -> 1, 2 -> 3, 4 -> 5, 6 -> 7

    Cost: ceil(lg p) (alpha + n beta). Best for small messages; no restriction on p.
    Sends to all children are posted together, so on shared memory the children copy in
    parallel while the sender fills their rings.
    """
    tree = binomial_tree(size, root)
    parent = tree.parents[rank]
    if parent is not None:
        yield Recv(parent)
    for child in tree.children[rank]:
        yield Send(child)
