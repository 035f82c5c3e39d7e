"""Layout of the world segment: a control page, then one SPSC byte ring per ordered pair.

::

    offset 0        control page (PAGE bytes)
                      u64 magic, u64 version, u64 size, u64 ring_capacity
                      u64 state[size]       per rank: 0 not yet attached, 1 attached, 2 finalized,
                                            3 dead (written by the launcher when the process ended
                                            with an error or a signal)
                      activity[size]        per rank, 64 bytes: what the rank is blocked in
                                            (48-byte name, u64 sequence number, i64 root), all
                                            zero when it is not blocked; read for hang reports
                      board[size]           per rank, 4 x u64: the deadlock detector's words
                                            (see :mod:`.deadlock`)
    offset PAGE+    ring(src=0, dst=0), ring(0, 1), ..., ring(size-1, size-1)
                      each ring: u64 head @0 (bytes ever written, writer-owned)
                                 u64 tail @64 (bytes ever read, reader-owned)
                                 data[ring_capacity] @128

Pages of tmpfs are allocated on first touch, so rings that are never used cost nothing.
The diagonal rings (src == dst) are never used: a rank's messages to itself stay in-process.
"""

from __future__ import annotations

import mmap
import struct

from .deadlock import WORDS
from .segments import create_segment, segment_name

MAGIC = 0x7472656563617374  # "treecast"
VERSION = 3
CTRL_FMT = "<QQQQ"
RING_HEADER = 128
HEAD_OFFSET = 0
TAIL_OFFSET = 64
STATE_OFFSET = 32
ACTIVITY_BYTES = 64
ACTIVITY_FMT = "<48sQq"
STATE_NEW, STATE_ATTACHED, STATE_FINALIZED, STATE_DEAD = 0, 1, 2, 3
DEFAULT_RING_CAPACITY = 1 << 20
SMALL_RING_CAPACITY = 1 << 18
MIN_RING_CAPACITY = 4096


def activity_offset(size: int) -> int:
    """Offset of rank 0's activity record in the control page."""
    return STATE_OFFSET + 8 * size


def board_offset(size: int) -> int:
    """Offset of the deadlock detector's board (:mod:`.deadlock`) in the control page."""
    return activity_offset(size) + ACTIVITY_BYTES * size


def page_bytes(size: int) -> int:
    """Bytes of the control page for ``size`` ranks, a multiple of the OS page size."""
    need = board_offset(size) + 8 * WORDS * size
    page = mmap.PAGESIZE
    return (need + page - 1) // page * page


def default_ring_capacity(size: int) -> int:
    """Ring size per ordered pair: 1 MiB up to 8 ranks, 256 KiB above (memory grows as size^2)."""
    return DEFAULT_RING_CAPACITY if size <= 8 else SMALL_RING_CAPACITY


def ring_offset(size: int, capacity: int, src: int, dst: int) -> int:
    """Offset of ring (src -> dst) inside the world segment."""
    return page_bytes(size) + (src * size + dst) * (RING_HEADER + capacity)


def world_bytes(size: int, capacity: int) -> int:
    """Total bytes of the world segment."""
    return page_bytes(size) + size * size * (RING_HEADER + capacity)


def create_world_segment(job: str, size: int, ring_capacity: int | None = None) -> str:
    """Create and initialise the world segment of ``job`` for ``size`` ranks; return its name.

    Called by the launcher, which owns the segment's lifetime.

    Raises:
        ValueError: ``size`` < 1 or ``ring_capacity`` < MIN_RING_CAPACITY.
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    cap = default_ring_capacity(size) if ring_capacity is None else int(ring_capacity)
    if cap < MIN_RING_CAPACITY:
        raise ValueError(f"ring_capacity must be >= {MIN_RING_CAPACITY}, got {cap}")
    cap = (cap + 63) // 64 * 64
    name = segment_name(job, "world")
    mm = create_segment(name, world_bytes(size, cap))
    try:
        struct.pack_into(CTRL_FMT, mm, 0, MAGIC, VERSION, size, cap)
    finally:
        mm.close()
    return name


def mark_rank_exited(segment: str, rank: int) -> None:
    """Record that ``rank`` exited with status 0: ``finalized`` unless it said so itself
    (or is dead), so that a rank that ended without finalising (``os._exit(0)``, or no
    ``world()`` at all) is not waited for as a running one. Called by the launcher."""
    from .segments import attach_segment

    try:
        mm = attach_segment(segment)
    except FileNotFoundError:
        return
    try:
        offset = STATE_OFFSET + 8 * rank
        (state,) = struct.unpack_from("<Q", mm, offset)
        if state in (STATE_NEW, STATE_ATTACHED):  # the rank has exited: nothing races this
            struct.pack_into("<Q", mm, offset, STATE_FINALIZED)
    finally:
        mm.close()


def mark_rank_dead(segment: str, rank: int) -> None:
    """Record in the world segment that ``rank`` died, so that peers waiting on it raise
    :class:`~treecast.errors.ProcessFailedError` instead of waiting forever. Called by the
    launcher; a missing segment (job already cleaned up) is ignored."""
    from .segments import attach_segment

    try:
        mm = attach_segment(segment)
    except FileNotFoundError:
        return
    try:
        struct.pack_into("<Q", mm, STATE_OFFSET + 8 * rank, STATE_DEAD)
    finally:
        mm.close()
