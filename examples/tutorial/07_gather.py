"""Gather to rank 0: one object per rank with gather, one array row per rank with Gather.

treecast run -n 4 python examples/tutorial/07_gather.py
"""

import numpy as np

import treecast

comm = treecast.world()

squares = comm.gather((comm.rank + 1) ** 2, root=0)  # a list on rank 0, None elsewhere

row = np.full(3, comm.rank, dtype="i")
rows = np.empty((comm.size, 3), dtype="i") if comm.rank == 0 else None
comm.Gather(row, rows, root=0)  # row i of rows comes from rank i

if comm.rank == 0:
    print(f"gather: {squares}")
    print(f"Gather:\n{rows}")
