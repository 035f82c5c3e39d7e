"""All-to-all: every rank sends item j of its list (or array) to rank j.

treecast run -n 4 --tag-output python examples/tutorial/08_alltoall.py
"""

import numpy as np

import treecast

comm = treecast.world()
rank, size = comm.rank, comm.size

received = comm.alltoall([f"{rank}->{j}" for j in range(size)])
print(f"alltoall: {received}")

sendbuf = np.arange(size, dtype="i") + 10 * rank
recvbuf = np.empty(size, dtype="i")
comm.Alltoall(sendbuf, recvbuf)
print(f"Alltoall: sent {sendbuf} received {recvbuf}")
