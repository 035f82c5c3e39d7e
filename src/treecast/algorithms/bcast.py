"""Broadcast schedules."""

from __future__ import annotations

from ..topology.trees import Tree, binomial_tree, chain_tree, kary_tree
from .schedule import Recv, Schedule, Send, Step, steps_of


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


def _pipelined(tree: Tree, rank: int, nbytes: int, segment: int) -> Schedule:
    parent = tree.parents[rank]
    children = tree.children[rank]
    for offset in range(0, nbytes, segment):
        n = min(segment, nbytes - offset)
        if parent is not None:
            yield Recv(parent, offset, n)
        for child in children:
            yield Send(child, offset, n)


def pipelined_chain(rank: int, size: int, root: int, nbytes: int, segment: int) -> Schedule:
    """Pipelined chain broadcast of a buffer in segments::

        root -> r+1 -> r+2 -> ... -> r-1, segment k+1 leaving the root while segment k
        is one hop further down

    Cost: (p - 2 + s)(alpha + n beta / s) for s segments; approaches n beta for large n.
    Restriction: buffer payloads (the size must be known on every rank).
    """
    return _pipelined(chain_tree(size, root), rank, nbytes, segment)


def pipelined_binary(rank: int, size: int, root: int, nbytes: int, segment: int) -> Schedule:
    """Pipelined binary-tree broadcast of a buffer in segments (heap-ordered binary tree)::

        0 -> 1, 2;  1 -> 3, 4;  2 -> 5, 6   (each segment forwarded as soon as it arrives)

    Cost: about (lg p + s)(alpha + 2 n beta / s): interior ranks send every segment twice.
    Restriction: buffer payloads.
    """
    return _pipelined(kary_tree(size, root, 2), rank, nbytes, segment)


BUFFER_ALGORITHMS = {"binomial", "pipelined_chain", "pipelined_binary"}
"""Names accepted by ``TREECAST_BCAST_ALGORITHM`` and ``Bcast(algorithm=...)``."""
SEGMENT_BYTES = 256 * 1024
"""Segment of the pipelined algorithms (the shared-memory transport's copy grain)."""


def select_buffer(size: int, nbytes: int, forced: str | None = None) -> str:
    """Name of the buffer-broadcast algorithm to run: ``forced`` (from
    ``TREECAST_BCAST_ALGORITHM`` or the call) if given, else binomial.

    Binomial is the default at every size on purpose: measured on this 2-core machine
    (docs/performance.md), pipelining loses at 64 MiB (n = 4: binomial 42 ms, chain 59 ms,
    binary 74 ms), because every algorithm copies the same 2 (p - 1) n bytes through the
    rings and the cores, not the latency, are the bottleneck. ``size`` and ``nbytes`` are
    the inputs of the rule for machines where that differs.

    Raises:
        ValueError: ``forced`` is not a known algorithm name.
    """
    if forced:
        if forced not in BUFFER_ALGORITHMS:
            raise ValueError(
                f"unknown Bcast algorithm {forced!r}; expected one of {sorted(BUFFER_ALGORITHMS)}"
            )
        return forced
    return "binomial"


def buffer_steps(name: str, rank: int, size: int, root: int, nbytes: int) -> tuple[Step, ...]:
    """The (cached) steps of buffer-broadcast algorithm ``name``."""
    if name == "binomial":
        return steps_of(binomial, rank, size, root)
    algorithm = pipelined_chain if name == "pipelined_chain" else pipelined_binary
    return steps_of(algorithm, rank, size, root, nbytes, SEGMENT_BYTES)
