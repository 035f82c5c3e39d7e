"""gather, scatter, allgather and alltoall of Python objects on real processes."""

import numpy as np
import pytest

import treecast
from treecast.testing import run_ranks

pytestmark = pytest.mark.timeout(180)


def _item(src, dst=None):
    base = {"from": src, "arr": np.arange(src + 1) * 10}
    if dst is not None:
        base["to"] = dst
        base["big"] = np.full(100_000 if (src + dst) % 2 else 3, src * 100 + dst)
    return base


def _same(a, b):
    return a.keys() == b.keys() and all(
        np.array_equal(a[k], b[k]) if isinstance(a[k], np.ndarray) else a[k] == b[k] for k in a
    )


def _blocks_every_root():
    comm = treecast.world()
    r, p = comm.rank, comm.size
    for root in range(p):
        got = comm.gather(_item(r), root=root)
        if r == root:
            assert len(got) == p and all(_same(got[i], _item(i)) for i in range(p))
        else:
            assert got is None
        mine = comm.scatter([_item(root, i) for i in range(p)] if r == root else None, root=root)
        assert _same(mine, _item(root, r))
    for algorithm in ("bruck", "ring"):
        everyone = comm.allgather(_item(r), algorithm=algorithm)
        assert all(_same(everyone[i], _item(i)) for i in range(p))
    received = comm.alltoall([_item(r, i) for i in range(p)])
    assert all(_same(received[i], _item(i, r)) for i in range(p))
    return True


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_gather_scatter_allgather_alltoall_every_root(n):
    assert all(run_ranks(_blocks_every_root, n))


def _bad_sequences():
    comm = treecast.world()
    errors = []
    for call in (
        lambda: comm.alltoall([1, 2, 3]),
        lambda: comm.alltoall(5),
        lambda: comm.scatter([1] * (comm.size + 1), root=comm.rank),
        lambda: comm.gather(1, root=comm.size),
        lambda: comm.allgather(1, algorithm="telepathy"),
    ):
        with pytest.raises((ValueError, TypeError)) as info:
            call()
        errors.append(str(info.value))
    assert comm.allgather(comm.rank) == list(range(comm.size))  # nothing was sent
    return errors


def test_wrong_length_sequences_raise_before_sending():
    errors = run_ranks(_bad_sequences, 2)[0]
    assert "alltoall: expected a sequence of 2 items (one per rank), got 3" in errors[0]
    assert "alltoall: expected a sequence of 2 items, got int" in errors[1]
    assert "scatter: expected a sequence of 2 items (one per rank), got 3" in errors[2]
    assert "root=2" in errors[3]
    assert "unknown allgather algorithm 'telepathy'" in errors[4]
