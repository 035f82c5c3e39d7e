"""Broadcast from rank 0: a Python dict with bcast, a NumPy array with Bcast.

treecast run -n 4 --tag-output python examples/tutorial/05_bcast.py
"""

import numpy as np

import treecast

comm = treecast.world()

data = {"key1": [7, 2.72, 2 + 3j], "key2": ("abc", "xyz")} if comm.rank == 0 else None
data = comm.bcast(data, root=0)  # returns rank 0's object on every rank
print(f"bcast: {data}")

array = np.arange(5, dtype="d") if comm.rank == 0 else np.empty(5, dtype="d")
comm.Bcast(array, root=0)  # fills every rank's array in place
print(f"Bcast: {array}")
