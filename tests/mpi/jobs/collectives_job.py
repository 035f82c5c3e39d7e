"""Every collective across fake nodes, every root, objects and buffers: ``collectives_job.py``.

Run under ``mpiexec -n 4`` with ``TREECAST_FAKE_NODES``; each rank checks what it got and
prints ``rank R: collectives ok`` at the end. Any wrong value raises (and, under MPI, aborts
the job with the traceback).
"""

from __future__ import annotations

import numpy as np

import treecast
from treecast import MPI

w = treecast.world()
r, n = w.rank, w.size
assert n == 4, n
t = w._t
nodes = w._nodes
assert nodes is not None and sorted(set(nodes)) == [0, 1], nodes

# the node communicator is the real node
node = w.Split_type(MPI.COMM_TYPE_SHARED)
mine = [q for q in range(n) if t.node_ids[q] == t.node_ids[r]]
assert node.size == len(mine) and node.allgather(r) == mine, (node.allgather(r), mine)
assert node._nodes is None and "node_memory" in node._caps and "node_memory" not in w._caps

big = np.arange(3 << 18, dtype=np.float64)  # 6 MiB
for root in range(n):
    # objects: small, with large out-of-band buffers, and unpicklable at the root
    got = w.bcast({"root": root, "k": [1, 2]} if r == root else None, root=root)
    assert got == {"root": root, "k": [1, 2]}
    got = w.bcast({"a": big + root} if r == root else None, root=root)
    assert np.array_equal(got["a"], big + root)
    try:
        w.bcast((lambda: 0) if r == root else None, root=root)
    except (treecast.SerializationError, treecast.SenderFailedError) as exc:
        assert (r == root) == isinstance(exc, treecast.SerializationError), exc
    else:
        raise AssertionError("an unpicklable bcast raised nothing")
    # buffers: small and large
    for size in (3, 1 << 20):
        buf = (
            np.arange(size, dtype=np.int64) * (root + 1) if r == root else np.zeros(size, np.int64)
        )
        w.Bcast(buf, root=root)
        assert np.array_equal(buf, np.arange(size, dtype=np.int64) * (root + 1))
    # zero-copy: one shared copy per node
    shared = w.bcast({"x": big * 2} if r == root else None, root=root, copy=False)
    assert np.array_equal(shared["x"], big * 2) and not shared["x"].flags.writeable
    del shared
    # rooted reductions and data movement
    assert w.reduce(r + 1, op=MPI.SUM, root=root) == (10 if r == root else None)
    assert w.reduce([r], op=MPI.SUM, root=root) == ([0, 1, 2, 3] if r == root else None)
    vec = np.full(100_000, r + 1.0)
    out = np.zeros_like(vec)
    w.Reduce(vec, out if r == root else None, op=MPI.SUM, root=root)
    if r == root:
        assert np.all(out == 10.0), out[:4]
    gathered = w.gather(r * 10, root=root)
    assert gathered == ([0, 10, 20, 30] if r == root else None)
    assert w.scatter([q * 3 for q in range(n)] if r == root else None, root=root) == r * 3
    recv = np.zeros((n, 5), np.int32) if r == root else None
    w.Gather(np.full(5, r, np.int32), recv, root=root)
    if r == root:
        assert np.array_equal(recv, np.repeat(np.arange(n, dtype=np.int32), 5).reshape(n, 5))

# rootless collectives, objects and buffers
assert w.allreduce(r + 1) == 10 and w.allreduce(r, op=MPI.MAX) == 3
assert w.allgather(r) == [0, 1, 2, 3]
assert w.alltoall([r * 10 + q for q in range(n)]) == [q * 10 + r for q in range(n)]
for size in (4, 1 << 18):
    a = np.full(size, r + 1, np.float64)
    b = np.empty_like(a)
    w.Allreduce(a, b, op=MPI.SUM)
    assert np.all(b == 10.0)
    w.Allreduce(a, b, op=MPI.PROD)
    assert np.all(b == 24.0)
ag = np.empty((n, 3), np.int64)
w.Allgather(np.full(3, r, np.int64), ag)
assert np.array_equal(ag, np.repeat(np.arange(n), 3).reshape(n, 3))
assert w.scan(r + 1) == sum(range(1, r + 2)) and w.exscan(r + 1) == (sum(range(1, r + 1)) or None)
rs = np.empty(2, np.int64)
w.Reduce_scatter_block(np.arange(2 * n, dtype=np.int64), rs, op=MPI.SUM)
assert np.array_equal(rs, np.arange(2 * r, 2 * r + 2) * n)
w.barrier()
w.Barrier()
# non-blocking forms
req = w.ibcast({"v": r} if r == 2 else None, root=2)
assert req.wait() == {"v": 2}
assert w.iallreduce(r).wait() == 6
ib = np.empty(4, np.float64)
w.Iallreduce(np.full(4, float(r)), ib).Wait()
assert np.all(ib == 6.0)
w.Ibarrier().Wait()

# a communicator split across the nodes (even ranks) and the node ones
sub = w.Split(r % 2, r)
assert sub.allgather(r) == [q for q in range(n) if q % 2 == r % 2]
assert sub.bcast(r if sub.rank == 0 else None, root=0) == r % 2
assert node.allreduce(r) == sum(mine)
arr = treecast.shared_array(node, 8, dtype=np.int64)
if node.rank == 0:
    arr[:] = 7
node.barrier()
assert arr.sum() == 56
try:
    treecast.shared_array(w, 8)
except treecast.MissingCapabilityError as exc:
    assert "Split_type" in str(exc), exc
else:
    raise AssertionError("shared_array on a communicator over two nodes raised nothing")

# point-to-point across both channels
if r == 0:
    srcs = sorted(w.recv(source=MPI.ANY_SOURCE, tag=7) for _ in range(n - 1))
    assert srcs == [1, 2, 3], srcs
else:
    w.send(r, dest=0, tag=7)
peer = (r + 2) % n  # on the other node in both placements of 2 x 2
sync = w.issend(b"x" * 200_000, dest=peer, tag=MPI.TAG_UB)
assert w.recv(source=peer, tag=MPI.TAG_UB) == b"x" * 200_000
sync.wait()
status = MPI.Status()
if r % 2 == 0:
    w.send(np.arange(10), dest=r + 1, tag=3)
else:
    w.probe(source=r - 1, tag=3, status=status)
    assert status.Get_source() == r - 1
    small = np.empty(4, np.int64)
    try:
        w.Recv(small, source=r - 1, tag=3)
    except treecast.TruncationError:
        pass
    except Exception:
        got = w.recv(source=r - 1, tag=3)
        assert np.array_equal(got, np.arange(10))
w.barrier()
print(f"rank {r}: collectives ok", flush=True)
