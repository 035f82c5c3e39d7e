"""Broadcast schedules."""

from __future__ import annotations

from functools import lru_cache

from ..topology.trees import Tree, binomial_tree, chain_tree, kary_tree, knomial_tree, two_trees
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


SEGMENT_BYTES = 256 * 1024
"""Segment of the pipelined algorithms (the shared-memory transport's copy grain)."""


def linear(rank: int, size: int, root: int) -> Schedule:
    """Flat broadcast: the root sends the whole payload to every other rank::

        root -> 1, 2, 3, ..., p-1   (one level)

    Cost: (p - 1)(alpha + n beta) over messages; as a node-level shared-memory broadcast
    (``shm_one_write``: the root writes once, every rank reads) about 2 n beta. Any p.
    """
    if rank != root:
        yield Recv(root)
        return
    for k in range(1, size):
        yield Send((root + k) % size)


def knomial(rank: int, size: int, root: int, k: int = 4) -> Schedule:
    """K-nomial-tree broadcast of the whole payload (Open MPI's default radix 4)::

        size 9, k 3:   0 -> 3, 6, 1, 2;  3 -> 4, 5;  6 -> 7, 8

    Cost: about ceil(log_k p)(k - 1)(alpha + n beta): fewer levels than binomial, more sends
    per level. Any p, any root, objects too.
    """
    tree = knomial_tree(size, root, k)
    parent = tree.parents[rank]
    if parent is not None:
        yield Recv(parent)
    for child in tree.children[rank]:
        yield Send(child)


def two_tree(rank: int, size: int, root: int, nbytes: int, segment: int) -> Schedule:
    """Two-tree broadcast (Sanders, Speck and Traff 2009): the two complementary binary
    trees of :func:`~treecast.topology.trees.two_trees` each carry half of the bytes, both
    pipelined in segments, so a rank interior in one tree and a leaf in the other sends
    about n bytes in all instead of the 2 n of one binary tree::

        size 8:   tree A, bytes [0, n/2):   0 -> 4;  4 -> 2, 6;  2 -> 1, 3;  6 -> 5, 7
                  tree B, bytes [n/2, n):   0 -> 5;  5 -> 3, 7;  3 -> 2, 4;  7 -> 6, 1

    Period ``j`` handles segment ``j`` of both trees. A rank that is a leaf in one tree and
    interior in the other receives its leaf-tree segments ``d`` periods late (``d`` the
    trees' depth), so a late leaf segment never holds up forwarding in the other tree;
    it does so only when its two parents differ, which keeps one message order per pair of
    ranks. Cost in the single-port model: about (2 s + lg p)(alpha + n beta / (2 s)) for s
    segments per half, near n beta for large n. Restriction: buffer payloads (byte
    segments); empty segments are skipped on both sides.
    """
    first, second = two_trees(size, root)
    half = (nbytes + 1) // 2
    halves = ((first, 0, half), (second, half, nbytes - half))
    count = -(-half // segment)
    lagged, lag = -1, 0
    interior = (bool(first.children[rank]), bool(second.children[rank]))
    if interior[0] != interior[1] and first.parents[rank] != second.parents[rank]:
        lagged, lag = (0 if interior[1] else 1), _two_trees_depth(size, root)
    for period in range(count + lag):
        for t, (tree, start, length) in enumerate(halves):
            j = period - lag if t == lagged else period
            off = j * segment
            if not 0 <= off < length:
                continue
            n = min(segment, length - off)
            parent = tree.parents[rank]
            if parent is not None:
                yield Recv(parent, start + off, n)
            for child in tree.children[rank]:
                yield Send(child, start + off, n)


@lru_cache(maxsize=256)
def _two_trees_depth(size: int, root: int) -> int:
    """The deeper of the two trees' depths (walking every rank's path: computed once per
    size and root, not once per rank)."""
    first, second = two_trees(size, root)
    return max(first.depth(), second.depth())


def _chunk_offset(nbytes: int, size: int, i: int) -> int:
    """Byte offset of chunk ``i`` of ``size`` near-equal chunks (the first ``nbytes % size``
    chunks one byte longer); chunk ``size`` ends the buffer."""
    q, r = divmod(nbytes, size)
    return i * q + min(i, r)


def _chunks_segment(
    step: type[Send] | type[Recv], peer: int, nbytes: int, size: int, lo: int, hi: int
) -> Schedule:
    """The byte segment of chunks ``lo .. hi-1`` (relative ranks), if not empty."""
    start = _chunk_offset(nbytes, size, lo)
    n = _chunk_offset(nbytes, size, hi) - start
    if n:
        yield step(peer, start, n)


def _subtree_end(vr: int, size: int) -> int:
    """End of relative rank ``vr``'s binomial subtree ``vr .. end-1``."""
    return size if vr == 0 else min(vr + (vr & -vr), size)


def _scatter_chunks(rank: int, size: int, root: int, nbytes: int) -> Schedule:
    """Binomial scatter of the root's buffer: relative rank ``v`` ends holding chunks
    ``v .. end-1`` of its subtree (one contiguous byte segment)."""
    tree = binomial_tree(size, root)
    vr = (rank - root) % size
    parent = tree.parents[rank]
    if parent is not None:
        yield from _chunks_segment(Recv, parent, nbytes, size, vr, _subtree_end(vr, size))
    for child in tree.children[rank]:
        vc = (child - root) % size
        yield from _chunks_segment(Send, child, nbytes, size, vc, _subtree_end(vc, size))


def scatter_recursive_doubling_allgather(rank: int, size: int, root: int, nbytes: int) -> Schedule:
    """Van de Geijn broadcast: binomial scatter of p chunks, then recursive-doubling
    allgather of the chunks (MPICH's medium-message broadcast)::

        scatter (p 4):   0 -> 2 chunks 2-3;  0 -> 1 chunk 1;  2 -> 3 chunk 3
        allgather:       round 1: 0 <-> 1, 2 <-> 3;   round 2: 0-1 <-> 2-3

    Chunks are in ranks relative to the root. A rank sends only what its partner lacks, so
    the root never receives (its buffer may be read-only) and a scatter parent is not sent
    back its own chunks. Cost: 2 lg p alpha + 2 (p - 1)/p n beta.
    Restrictions: p a power of two; buffer payloads.

    Raises:
        ValueError: ``size`` is not a power of two.
    """
    if size & (size - 1):
        raise ValueError(
            f"scatter_recursive_doubling_allgather needs a power-of-two size, got {size}"
        )
    yield from _scatter_chunks(rank, size, root, nbytes)
    vr = (rank - root) % size

    def held(v: int, mask: int) -> tuple[int, int]:
        """The aligned range of chunks relative rank ``v`` holds before round ``mask``."""
        if v == 0:
            return 0, size
        span = max(mask, v & -v)
        lo = v & ~(span - 1)
        return lo, lo + span

    mask = 1
    while mask < size:
        vp = vr ^ mask
        peer = (vp + root) % size
        mine, theirs = vr & ~(mask - 1), vp & ~(mask - 1)
        plo, phi = held(vp, mask)
        if not plo <= mine < phi:
            yield from _chunks_segment(Send, peer, nbytes, size, mine, mine + mask)
        lo, hi = held(vr, mask)
        if not lo <= theirs < hi:
            yield from _chunks_segment(Recv, peer, nbytes, size, theirs, theirs + mask)
        mask <<= 1


def scatter_ring_allgather(rank: int, size: int, root: int, nbytes: int) -> Schedule:
    """Broadcast by binomial scatter of p chunks, then a ring allgather (MPICH's long-message
    broadcast)::

        scatter as in scatter_recursive_doubling_allgather, then p - 1 steps of
        v -> v + 1 (relative ranks), step k passing chunk v - k

    A rank skips receiving the chunks its scatter subtree already gave it (and its left
    neighbour skips sending them), so the root never receives. Cost:
    (lg p + p - 1) alpha + 2 (p - 1)/p n beta. Any p; buffer payloads.
    """
    yield from _scatter_chunks(rank, size, root, nbytes)
    vr = (rank - root) % size
    vright, vleft = (vr + 1) % size, (vr - 1) % size
    right, left = (vright + root) % size, (vleft + root) % size
    right_end, my_end = _subtree_end(vright, size), _subtree_end(vr, size)
    for k in range(size - 1):
        out = (vr - k) % size
        if not vright <= out < right_end:
            yield from _chunks_segment(Send, right, nbytes, size, out, out + 1)
        into = (vr - k - 1) % size
        if not vr <= into < my_end:
            yield from _chunks_segment(Recv, left, nbytes, size, into, into + 1)
