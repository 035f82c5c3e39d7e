"""Scan and exscan schedules. Block 0 is my result, block 1 the partial result over a
window of ranks ending at me, block 2 scratch; each is a whole vector. Scan starts with
0 and 1 holding my operand; exscan with 1 only (block 0 absent, and rank 0's stays so).

A window from a lower rank is needed twice (folded into the result and into the window),
and steps cannot copy, so the receiver lands the partner's block 1 in its block 2: the one
place where sender and receiver list different ids (same count and size). The engines
match blocks by position; the simulator is told with ``renames={(1, 2)}``."""

from __future__ import annotations

from .schedule import LEFT, RIGHT, Combine, Recv, Schedule, Send

RESULT, WINDOW, SCRATCH = 0, 1, 2


def _recursive_doubling(rank: int, size: int) -> Schedule:
    """MPICH's recursive-doubling prefix: in round k, swap windows with ``rank XOR 2^k``;
    a window from a lower rank is combined on the left into both the window and the result,
    one from a higher rank on the right into the window only."""
    mask = 1
    while mask < size:
        peer = rank ^ mask
        if peer < size:
            yield Send(peer, blocks=(WINDOW,))
            if peer < rank:
                yield Recv(peer, blocks=(SCRATCH,))
                yield Combine(SCRATCH, RESULT, LEFT)
                yield Combine(SCRATCH, WINDOW, LEFT)
            else:
                yield Recv(peer, blocks=(WINDOW,), reduce=RIGHT)
        mask <<= 1


def scan_recursive_doubling(rank: int, size: int) -> Schedule:
    """Recursive-doubling inclusive scan (MPICH): in round k exchange windows with
    ``rank XOR 2^k`` (when it exists); a lower partner's window is folded into my result::

        p 4:  round 0: 0 <-> 1, 2 <-> 3   (1: x0 x1;  3: x2 x3)
              round 1: 0 <-> 2, 1 <-> 3   (2: x0 x1 x2;  3: x0 x1 x2 x3)

    Operands combine in rank order (lower windows on the left), so any operator works.
    Cost: ceil(lg p)(alpha + n beta + 2 n gamma). Any p, objects too.
    """
    return _recursive_doubling(rank, size)


def exscan_recursive_doubling(rank: int, size: int) -> Schedule:
    """Recursive-doubling exclusive scan (MPICH): the scan's rounds with the result starting
    absent, so the first window from a lower rank becomes the result as it is; rank 0's
    result stays absent::

        p 4:  round 0: 0 <-> 1, 2 <-> 3   (1: x0;  3: x2)
              round 1: 0 <-> 2, 1 <-> 3   (2: x0 x1;  3: x0 x1 x2)

    Cost: ceil(lg p)(alpha + n beta + 2 n gamma). Any p, any operator, objects too.
    """
    return _recursive_doubling(rank, size)
