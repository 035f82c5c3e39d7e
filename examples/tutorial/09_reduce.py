"""Reductions: reduce with SUM and MAX to rank 0, Allreduce of NumPy arrays to every rank.

treecast run -n 4 --tag-output python examples/tutorial/09_reduce.py
"""

import numpy as np

import treecast

comm = treecast.world()
rank = comm.rank

value = [3, 1, 4, 1, 5, 9, 2, 6][rank % 8]  # 3, 1, 4, 1 on 4 ranks
total = comm.reduce(value, op=treecast.SUM, root=0)  # on rank 0; None elsewhere
largest = comm.reduce(value, op=treecast.MAX, root=0)
if rank == 0:
    print(f"reduce: SUM {total}, MAX {largest}")

sendbuf = np.arange(4, dtype="d") * (rank + 1)
recvbuf = np.empty(4, dtype="d")
comm.Allreduce(sendbuf, recvbuf, op=treecast.SUM)  # element-wise sum, on every rank
print(f"Allreduce: {recvbuf}")
