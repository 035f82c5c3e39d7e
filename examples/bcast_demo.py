"""Broadcast demo: rank 0's data reaches every rank through a binomial tree.

treecast run -n 4 python examples/bcast_demo.py
"""

import time

import numpy as np

import treecast
from treecast.topology import binomial_tree

comm = treecast.world()
rank, size = comm.rank, comm.size

if rank == 0:
    print(f"treecast {treecast.__version__}: {size} ranks, binomial broadcast tree from root 0:")
    print(binomial_tree(size, 0).render())
    print()

# 1. A Python object, as in the MPI recipe: data = comm.bcast(data, root=0)
data = {"step": 1, "params": {"lr": 0.01, "layers": [64, 32]}} if rank == 0 else None
data = comm.bcast(data, root=0)
assert data["params"]["layers"] == [64, 32]

# 2. Timings: a small object, and a 64 MiB NumPy array (object and buffer form).
tree = binomial_tree(size, 0)
payload = np.arange(8 << 20, dtype=np.float64)  # 64 MiB
reps = 5


def timed(fn):
    comm.barrier()
    best = float("inf")
    for _ in range(reps):
        comm.barrier()
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


small = timed(lambda: comm.bcast("hello" if rank == 0 else None, root=0))
obj = timed(lambda: comm.bcast(payload if rank == 0 else None, root=0))
buf = payload.copy() if rank == 0 else np.empty_like(payload)
Bcast = timed(lambda: comm.Bcast(buf, root=0))
assert np.array_equal(buf, payload)
dst = np.empty_like(payload)
memcpy = timed(lambda: np.copyto(dst, payload))

parent = tree.parents[rank]
line = (
    f"rank {rank}: parent {'-' if parent is None else parent}, children {list(tree.children[rank]) or '-'}; "
    f"bcast small {small * 1e6:7.1f} us | bcast 64 MiB array {obj * 1e3:6.1f} ms | "
    f"Bcast 64 MiB {Bcast * 1e3:6.1f} ms | one memcpy {memcpy * 1e3:5.1f} ms"
)
if rank == 0:
    print(line)
    for r in range(1, size):
        print(comm.recv(source=r, tag=99))
else:
    comm.send(line, 0, tag=99)
if rank == 0:
    print(
        f"\nall {size} ranks received rank 0's data (best of {reps} runs, 2 cores shared by {size} ranks)"
    )
