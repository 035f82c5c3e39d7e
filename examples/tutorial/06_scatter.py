"""Scatter from rank 0: one list item per rank with scatter, one row of an array per rank
with Scatter.

treecast run -n 4 --tag-output python examples/tutorial/06_scatter.py
"""

import numpy as np

import treecast

comm = treecast.world()
size = comm.size

data = [(i + 1) ** 2 for i in range(size)] if comm.rank == 0 else None
item = comm.scatter(data, root=0)  # rank i gets data[i]

rows = np.arange(size * 3, dtype="i").reshape(size, 3) if comm.rank == 0 else None
row = np.empty(3, dtype="i")
comm.Scatter(rows, row, root=0)  # rank i gets rows[i]
print(f"scatter: {item}  Scatter: {row}")
