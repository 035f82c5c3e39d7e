"""The receive-frame pool reuses memory only once nothing views it."""

import numpy as np

from treecast.message.pool import POOL_MIN, FramePool, alloc_frame, size_class


def test_memory_is_reused_only_after_every_view_is_gone():
    pool = FramePool(64 << 20)
    first = pool.take(3 << 20)
    arr = np.frombuffer(first, np.uint8)
    arr[:] = 7
    part = arr[10:20]  # a view of a view keeps the mapping in use too
    del first, arr
    second = pool.take(3 << 20)
    second[:] = b"\x01" * len(second)
    assert (part == 7).all()  # not handed out again while `part` lives
    assert pool.held == 2 * size_class(3 << 20)
    del part, second
    third = pool.take(3 << 20)  # one of the two idle mappings comes back
    assert pool.held == 2 * size_class(3 << 20) and len(third) == 3 << 20


def test_a_full_pool_releases_idle_mappings_or_declines():
    pool = FramePool(8 << 20)
    a = pool.take(6 << 20)
    assert pool.take(6 << 20) is None  # full of mappings in use: caller falls back
    del a
    b = pool.take(5 << 20)  # the idle 6 MiB mapping is unmapped to make room
    assert b is not None and pool.held == size_class(5 << 20)


def test_alloc_frame_sizes():
    assert len(alloc_frame(10)) == 10
    big = alloc_frame(POOL_MIN + 1)
    assert len(big) == POOL_MIN + 1 and not big.readonly
