"""Large broadcasts on nodes of three ranks (``mpiexec -n 6``, two fake nodes): among the
node leaders, then through each node's arena; every root, objects and buffers, one payload
across nodes per broadcast. Prints ``rank R: node stage ok``."""

from __future__ import annotations

import numpy as np

import treecast

w = treecast.world()
r, n = w.rank, w.size
t = w._t
payload = np.arange(1 << 17, dtype=np.float64)  # 1 MiB
for root in range(n):
    before = t.inter_node_bytes
    buf = payload + root if r == root else np.zeros_like(payload)
    w.Bcast(buf, root=root)
    assert np.array_equal(buf, payload + root), (root, buf[:3])
    crossed = w.allreduce(t.inter_node_bytes - before)
    # one payload, and a few small messages (the first call also makes the sub-communicators)
    assert payload.nbytes <= crossed < payload.nbytes + 4096, (root, crossed)
    got = w.bcast({"x": payload * root, "tag": root} if r == root else None, root=root)
    assert got["tag"] == root and np.array_equal(got["x"], payload * root)
print(f"rank {r}: node stage ok", flush=True)
