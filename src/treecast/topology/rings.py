"""Rings, recursive-doubling partners and Bruck schedules: pure functions of (size, rank)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


def _check(size: int, rank: int) -> None:
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if not 0 <= rank < size:
        raise ValueError(f"rank must be in [0, {size - 1}], got {rank}")


def ring_neighbors(size: int, rank: int) -> tuple[int, int]:
    """``(left, right)`` of ``rank`` in the ring ``0 -> 1 -> ... -> p-1 -> 0``: a ring
    algorithm receives from the left and sends to the right, ``p - 1`` steps.

    Raises:
        ValueError: ``size < 1`` or ``rank`` outside ``[0, size)``.
    """
    _check(size, rank)
    return (rank - 1) % size, (rank + 1) % size


@dataclass(frozen=True)
class RecursiveDoubling:
    """A rank's part in recursive doubling over ``p`` ranks, for any ``p`` (MPICH's scheme).

    With ``pof2`` the largest power of two <= p, the first ``2 (p - pof2)`` ranks pair up:
    each odd one folds its data into its even neighbour before the exchange and gets the
    result back after it (``fold_partner``; ``active`` is False for the odd ones). The
    ``pof2`` remaining ranks get new ranks ``0..pof2-1`` and exchange with ``new ^ 2^i`` in
    round ``i`` (``partners``, as real ranks).

    Attributes:
        pof2: largest power of two <= p.
        active: whether this rank takes part in the exchange rounds.
        fold_partner: the rank it folds with before and after, or None.
        new_rank: its rank among the ``pof2`` active ranks, or None.
        partners: real rank of its partner in each round (empty when not active).
    """

    pof2: int
    active: bool
    fold_partner: int | None
    new_rank: int | None
    partners: tuple[int, ...]


@lru_cache(maxsize=1024)
def recursive_doubling(size: int, rank: int) -> RecursiveDoubling:
    """This rank's :class:`RecursiveDoubling` plan: ``lg pof2`` rounds, plus a fold step
    before and after when ``p`` is not a power of two.

    Raises:
        ValueError: ``size < 1`` or ``rank`` outside ``[0, size)``.
    """
    _check(size, rank)
    pof2 = 1 << (size.bit_length() - 1)
    rem = size - pof2

    def real(new: int) -> int:
        return new * 2 if new < rem else new + rem

    if rank < 2 * rem:
        if rank % 2:
            return RecursiveDoubling(pof2, False, rank - 1, None, ())
        new, fold = rank // 2, rank + 1
    else:
        new, fold = rank - rem, None
    partners = []
    mask = 1
    while mask < pof2:
        partners.append(real(new ^ mask))
        mask <<= 1
    return RecursiveDoubling(pof2, True, fold, new, tuple(partners))


@lru_cache(maxsize=1024)
def bruck_rounds(size: int, rank: int) -> tuple[tuple[int, int], ...]:
    """Bruck's allgather/alltoall rounds for ``rank``: in round ``k`` send to
    ``rank - 2^k`` and receive from ``rank + 2^k`` (mod p), ``ceil(lg p)`` rounds for any
    ``p``; returns ``((send_to, recv_from), ...)``.

    Raises:
        ValueError: ``size < 1`` or ``rank`` outside ``[0, size)``.
    """
    _check(size, rank)
    rounds = []
    dist = 1
    while dist < size:
        rounds.append(((rank - dist) % size, (rank + dist) % size))
        dist <<= 1
    return tuple(rounds)
