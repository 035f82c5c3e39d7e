"""Objects that pickle at the sender but cannot be rebuilt at a receiver: the receiver
raises an error naming the type, and no other rank is left waiting."""

import numpy as np
import pytest

import treecast
from treecast.testing import run_ranks

pytestmark = pytest.mark.timeout(120)

# What unpickling runs: fine on rank 0, an ImportError elsewhere. eval is a builtin, so the
# reduce tuple pickles by reference although this test module travels to the ranks by value.
REBUILD = (
    "w if __import__('os').environ.get('TREECAST_RANK') == '0' else "
    "(_ for _ in ()).throw(ImportError('class LocalOnlyModel is not available here'))"
)


class LocalOnlyModel:
    """Stands for a class defined only where the root runs (a notebook cell, say)."""

    def __init__(self, weights):
        self.weights = weights

    def __reduce__(self):
        return (eval, (REBUILD, {"w": self.weights}))


def _broadcast_unbuildable():
    comm = treecast.world()
    outcomes = []
    # in-band pickle; out-of-band buffers through node memory; copy=False in a new shared
    # segment, then in one reused
    cases = [(3, True), (300_000, True), (300_000, False), (300_000, False)]
    for n, copy in cases:
        obj = LocalOnlyModel(np.arange(n, dtype=np.float64)) if comm.rank == 0 else None
        try:
            got = comm.bcast(obj, root=0, copy=copy)
            outcomes.append(("ok", type(got).__name__))
        except treecast.DeserializationError as exc:
            outcomes.append(("error", str(exc)))
    try:
        comm.gather(LocalOnlyModel(np.arange(comm.rank + 1)), root=0)
        outcomes.append(("ok", "gather"))
    except treecast.DeserializationError as exc:
        outcomes.append(("error", str(exc)))
    comm.barrier(timeout=30)  # nobody was left waiting: every rank gets here
    return outcomes


def test_receivers_that_cannot_rebuild_raise_naming_the_type_and_nobody_hangs():
    results = run_ranks(_broadcast_unbuildable, 3)
    # copy=False rebuilds at the root too (its views are on the shared copy)
    assert results[0][:4] == [("ok", "LocalOnlyModel")] * 2 + [("ok", "ndarray")] * 2
    for rank in (1, 2):
        for kind, text in results[rank][:4]:
            assert kind == "error", text
            assert "LocalOnlyModel" in text and "bcast" in text
    # gather: only the root rebuilds (and here it can); the others only pickle
    assert [r[4][0] for r in results] == ["ok", "ok", "ok"]


# Objects that cannot be pickled at their sender: the sender raises SerializationError, the
# ranks whose result needed the object raise SenderFailedError (a marker went in its place),
# and every rank stays in step for the next call.


def _outcome(call):
    try:
        return ("ok", call())
    except treecast.SenderFailedError as exc:
        return ("told", "rank 0 could not send its part" in str(exc) or str(exc))
    except treecast.SerializationError as exc:
        return ("own", "_thread.lock" in str(exc))


def _roots_that_cannot_pickle():
    import threading

    comm = treecast.world()
    bad = {"lock": threading.Lock(), "w": np.arange(5)}
    mine = bad if comm.rank == 0 else None
    got = {}
    got["bcast"] = _outcome(lambda: comm.bcast(mine, root=0))
    got["ibcast"] = _outcome(lambda: comm.ibcast(mine, root=0).wait())
    got["copy=False"] = _outcome(lambda: comm.bcast(mine, root=0, copy=False))
    got["binomial"] = _outcome(lambda: comm.bcast(mine, root=0, algorithm="binomial"))
    items = [0, bad, 2] if comm.rank == 0 else None  # rank 1's item cannot be pickled
    got["scatter"] = _outcome(lambda: comm.scatter(items, root=0))
    after = comm.bcast("next" if comm.rank == 0 else None, root=0)  # still in step
    shared_after = comm.bcast(np.arange(4) if comm.rank == 0 else None, root=0, copy=False)
    return got, after, shared_after.tolist()


def test_a_root_that_cannot_pickle_tells_the_others_and_all_stay_in_step():
    results = run_ranks(_roots_that_cannot_pickle, 3)
    for rank, (got, after, shared_after) in enumerate(results):
        expect = ("own", True) if rank == 0 else ("told", True)
        for name in ("bcast", "ibcast", "copy=False", "binomial"):
            assert got[name] == expect, (rank, name, got[name])
        assert got["scatter"] == {0: ("own", True), 1: ("told", True), 2: ("ok", 2)}[rank]
        assert after == "next" and shared_after == [0, 1, 2, 3]


def _contributions_that_cannot_pickle():
    import threading

    comm = treecast.world()
    mine = threading.Lock() if comm.rank == 1 else comm.rank
    got = {}
    for name, call in (
        ("gather", lambda: comm.gather(mine, root=0)),
        ("allgather", lambda: comm.allgather(mine)),
        ("allreduce", lambda: comm.allreduce(mine)),
        ("reduce", lambda: comm.reduce(mine, root=2)),
        ("alltoall", lambda: comm.alltoall([mine] * comm.size)),
    ):
        try:
            got[name] = ("ok", call())
        except treecast.SenderFailedError as exc:
            got[name] = ("told", "rank 1 could not send its part" in str(exc))
        except treecast.SerializationError as exc:
            got[name] = ("own", "_thread.lock" in str(exc))
    return got, comm.allreduce(comm.rank)


def test_a_contribution_that_cannot_be_pickled_fails_only_where_it_is_needed():
    results = run_ranks(_contributions_that_cannot_pickle, 3)
    own, told = ("own", True), ("told", True)
    assert [got["gather"] for got, _ in results] == [told, own, ("ok", None)]
    assert [got["reduce"] for got, _ in results] == [("ok", None), own, told]
    for name in ("allgather", "allreduce", "alltoall"):
        assert [got[name] for got, _ in results] == [told, own, told], name
    assert [after for _, after in results] == [3, 3, 3]  # in step afterwards
