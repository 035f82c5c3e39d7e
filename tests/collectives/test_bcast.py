"""Broadcast, barrier, dup and split on real processes over shared memory."""

import numpy as np
import pytest

import treecast
from treecast.testing import run_ranks

pytestmark = pytest.mark.timeout(180)


def _bcast_every_root():
    comm = treecast.world()
    out = []
    for root in range(comm.size):
        obj = (
            {"root": root, "arr": np.arange(200_000) * root, "s": "x" * root}
            if comm.rank == root
            else None
        )
        got = comm.bcast(obj, root=root)
        assert got["root"] == root and got["s"] == "x" * root
        assert np.array_equal(got["arr"], np.arange(200_000) * root)
        for n in (0, 1, 1000, 300_001):
            buf = np.arange(n, dtype=np.float64) + root if comm.rank == root else np.full(n, -1.0)
            comm.Bcast(buf, root=root)
            assert np.array_equal(buf, np.arange(n, dtype=np.float64) + root), (root, n)
        out.append(root)
    comm.barrier()
    return out


@pytest.mark.parametrize("n", range(1, 8))
def test_bcast_correct_for_every_size_and_root(n):
    assert run_ranks(_bcast_every_root, n) == [list(range(n))] * n


def test_bcast_oversubscribed_eight_ranks_on_two_cores_finishes():
    assert run_ranks(_bcast_every_root, 8, timeout=170) == [list(range(8))] * 8


BIG = 64 << 20


def _big_payload():
    return np.frombuffer(np.random.default_rng(1).bytes(BIG), np.uint8).copy()


def _bcast_big():
    comm = treecast.world()
    buf = _big_payload() if comm.rank == 0 else np.empty(BIG, np.uint8)
    comm.Bcast(buf, root=0)
    obj = comm.bcast(buf if comm.rank == 0 else None, root=0)
    return int(buf.astype(np.uint64).sum()), int(obj.astype(np.uint64).sum())


def test_bcast_64_mib_buffer_and_object():
    results = run_ranks(_bcast_big, 3)
    want = int(_big_payload().astype(np.uint64).sum())
    assert results == [(want, want)] * 3


def _mismatched_bcast_size():
    comm = treecast.world()
    buf = np.zeros(10 if comm.rank == 0 else 5)
    if comm.rank == 0:
        comm.Bcast(buf, root=0)  # the root cannot tell; the receiver raises
    else:
        with pytest.raises(treecast.TruncationError, match="80 bytes"):
            comm.Bcast(buf, root=0)
    return True


def test_bcast_with_smaller_buffer_on_receiver_raises():
    assert run_ranks(_mismatched_bcast_size, 2) == [True, True]


def _dup_split():
    comm = treecast.world()
    dup = comm.dup()
    # user messages on comm never match traffic on dup, nor collective traffic
    if comm.rank == 0:
        comm.send("on-world", 1, tag=0)
        dup.send("on-dup", 1, tag=0)
    got = None
    if comm.rank == 1:
        got = (
            dup.recv(source=0, tag=treecast.ANY_TAG),
            comm.recv(source=treecast.ANY_SOURCE, tag=treecast.ANY_TAG),
        )
    sub = comm.split(color=comm.rank % 2, key=-comm.rank)
    val = sub.bcast(comm.rank, root=0)
    sub.barrier()
    none = comm.split(color=treecast.UNDEFINED if comm.rank == 0 else 1)
    sub.free()
    with pytest.raises(treecast.CommunicatorClosedError):
        sub.bcast(1)
    return got, sub.rank, sub.size, val, none is None


def test_dup_and_split_keep_message_spaces_apart():
    res = run_ranks(_dup_split, 4)
    assert res[1][0] == ("on-dup", "on-world")
    # split with key=-rank reverses the order: the highest old rank becomes rank 0
    assert [(r[1], r[2], r[3]) for r in res] == [(1, 2, 2), (1, 2, 3), (0, 2, 2), (0, 2, 3)]
    assert [r[4] for r in res] == [True, False, False, False]


def _every_bcast_algorithm():
    comm = treecast.world()
    from treecast.algorithms.registry import ALGORITHMS

    for algorithm in ALGORITHMS["bcast"]:
        for root in range(comm.size):
            for n in (0, 5, 256 * 1024, 256 * 1024 + 1, 3 * 256 * 1024 - 7):
                expect = (np.arange(n) * (root + 3)) % 251
                buf = expect.astype(np.uint8) if comm.rank == root else np.zeros(n, np.uint8)
                comm.Bcast(buf, root=root, algorithm=algorithm)
                assert np.array_equal(buf, expect.astype(np.uint8)), (algorithm, root, n)
    with pytest.raises(ValueError, match="unknown bcast algorithm 'fastest'"):
        comm.Bcast(np.zeros(3), algorithm="fastest")
    return True


@pytest.mark.parametrize("n", [2, 3, 5])
def test_every_bcast_algorithm_every_root_and_segment_edge(n):
    assert all(run_ranks(_every_bcast_algorithm, n))


def _bcast_every_root_and_the_algorithm_chosen():
    from treecast.selection.rules import select

    comm = treecast.world()
    roots = _bcast_every_root()
    # without the variable, small and large messages take other algorithms
    return roots, {select("bcast", comm.size, n).name for n in (0, 8, 8 << 20)}


def test_bcast_algorithm_from_the_environment(monkeypatch):
    monkeypatch.setenv("TREECAST_BCAST_ALGORITHM", "pipelined_chain")
    got = run_ranks(_bcast_every_root_and_the_algorithm_chosen, 3)
    assert got == [([0, 1, 2], {"pipelined_chain"})] * 3
