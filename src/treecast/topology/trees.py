"""Communication trees as pure functions.

A :class:`Tree` gives every rank its parent (``None`` for the root) and its children in
the order they should be served (largest subtree first, so the deepest branch starts
earliest).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Tree:
    """A rooted spanning tree over ranks ``0..size-1``."""

    size: int
    root: int
    parents: tuple[int | None, ...]
    children: tuple[tuple[int, ...], ...]

    def depth(self) -> int:
        """Number of edges on the longest root-to-leaf path."""
        best = 0
        for rank in range(self.size):
            d = 0
            p = self.parents[rank]
            while p is not None:
                d += 1
                p = self.parents[p]
            best = max(best, d)
        return best

    def render(self) -> str:
        """ASCII picture of the tree, one rank per line, children indented below parents."""
        lines: list[str] = []

        def walk(rank: int, prefix: str, last: bool, top: bool) -> None:
            lines.append(f"{prefix}{'' if top else ('`-- ' if last else '|-- ')}{rank}")
            kids = self.children[rank]
            for i, child in enumerate(kids):
                walk(
                    child,
                    prefix + ("" if top else ("    " if last else "|   ")),
                    i == len(kids) - 1,
                    False,
                )

        walk(self.root, "", True, True)
        return "\n".join(lines)


def _check(size: int, root: int) -> None:
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if not 0 <= root < size:
        raise ValueError(f"root must be in [0, {size - 1}], got {root}")


@lru_cache(maxsize=256)
def binomial_tree(size: int, root: int = 0) -> Tree:
    """The binomial tree (MPICH's and Open MPI's small-message broadcast tree)::

        size 8, root 0:   0
                          |-- 4
                          |   |-- 6
                          |   |   `-- 7
                          |   `-- 5
                          |-- 2
                          |   `-- 3
                          `-- 1

    In ranks relative to the root, rank ``r``'s parent is ``r`` with its lowest set bit
    cleared, and its children are ``r + 2^j`` for every ``2^j`` below that bit. Depth is
    ``floor(lg p)``; the root has ``ceil(lg p)`` children, and a broadcast takes
    ``ceil(lg p)`` rounds.

    Raises:
        ValueError: ``size < 1`` or ``root`` outside ``[0, size)``.
    """
    _check(size, root)
    parents: list[int | None] = [None] * size
    children: list[tuple[int, ...]] = [()] * size
    for vr in range(size):
        rank = (vr + root) % size
        low = vr & -vr if vr else 1 << max(size - 1, 0).bit_length()
        if vr:
            parents[rank] = ((vr - low) + root) % size
        kids = []
        mask = low >> 1
        while mask:
            if vr + mask < size:
                kids.append((vr + mask + root) % size)
            mask >>= 1
        children[rank] = tuple(kids)
    return Tree(size, root, tuple(parents), tuple(children))
