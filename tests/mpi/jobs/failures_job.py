"""Failures across nodes: ``failures_job.py MODE``.

``raise``: rank 3 raises; the job must end (MPI_Abort) with its traceback.
``errors``: a timeout with its hang report, a collective mismatch and a failed sender,
each between ranks of different nodes, caught where they are raised; then ``rank R: ok``.
"""

from __future__ import annotations

import sys

import treecast

w = treecast.world()
r = w.rank
nodes = w._t.node_ids
other = min(q for q in range(w.size) if nodes[q] != nodes[0])  # first rank off node 0

if sys.argv[1] == "raise":
    w.barrier()
    if r == 3:
        raise ValueError("boom on rank 3")
    w.barrier()
    print("unreachable: the job should have been aborted", flush=True)
    sys.exit(0)

pair = w.Split(0 if r in (0, other) else 1, r)
if r == 0:
    try:
        w.recv(source=other, tag=5, timeout=1.5)
    except treecast.TimeoutError as exc:
        text = str(exc)
        assert "did not complete within 1.5 s" in text, text
        assert f"rank {other}: on node 1" in text, text
    else:
        raise AssertionError("a receive nobody sends to did not time out")
w.barrier()
if r in (0, other):
    if pair.rank == 0:
        pair.bcast("data", root=0)
    else:
        try:
            pair.barrier(timeout=20)
        except treecast.CollectiveMismatchError as exc:
            assert "rank 0 sent a message of bcast with root 0" in str(exc), exc
        else:
            raise AssertionError("a barrier that met a bcast raised nothing")
w.barrier()

# bcast(copy=False): the other node's leader cannot make its node's copy; every rank of
# every node raises (none waits), naming it; the next broadcast works
import numpy as np  # noqa: E402

from treecast.engine import sharing  # noqa: E402

made = sharing._segment_for
if r == other:

    def refuse(*args):
        raise OSError("no room in /dev/shm (injected)")

    sharing._segment_for = refuse
try:
    w.bcast({"a": np.arange(1000)} if r == 0 else None, root=0, copy=False)
except OSError as exc:
    assert r == other and "injected" in str(exc), (r, exc)
except treecast.SenderFailedError as exc:
    assert r != other and f"rank {other} could not send" in str(exc), (r, exc)
    assert "injected" in str(exc), exc
else:
    raise AssertionError(f"rank {r}: a failed node copy raised nothing")
sharing._segment_for = made
got = w.bcast({"a": np.arange(1000)} if r == 0 else None, root=0, copy=False)
assert int(got["a"].sum()) == 499500
del got
w.barrier()
print(f"rank {r}: ok", flush=True)
