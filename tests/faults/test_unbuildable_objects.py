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
