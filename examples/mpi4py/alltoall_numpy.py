"""All-to-all exchange of NumPy arrays: process i sends element j to process j."""

import numpy as np
from mpi4py import MPI

comm = MPI.COMM_WORLD
size = comm.Get_size()
rank = comm.Get_rank()

sendbuf = np.arange(size, dtype="i") + 10 * rank
recvbuf = np.empty(size, dtype="i")
comm.Alltoall(sendbuf, recvbuf)
assert np.array_equal(recvbuf, np.arange(size, dtype="i") * 10 + rank)
print(f"rank {rank}: sent {sendbuf.tolist()} received {recvbuf.tolist()}")
