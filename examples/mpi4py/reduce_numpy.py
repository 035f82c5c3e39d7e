"""Sum NumPy arrays from every process onto rank 0 with Reduce and MPI.SUM."""

import numpy as np
from mpi4py import MPI

comm = MPI.COMM_WORLD
size = comm.Get_size()
rank = comm.Get_rank()

sendbuf = np.arange(5, dtype="d") + rank
recvbuf = np.empty(5, dtype="d") if rank == 0 else None
comm.Reduce(sendbuf, recvbuf, op=MPI.SUM, root=0)
if rank == 0:
    expected = size * np.arange(5, dtype="d") + sum(range(size))
    assert np.allclose(recvbuf, expected)
    print(f"sum over {size} processes: {recvbuf.tolist()}")
