"""Point-to-point between pairs of processes: a Python object, then a NumPy array."""

import numpy as np
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
partner = rank ^ 1  # pairs (0, 1), (2, 3), ...

# Python objects (pickled): even ranks send, odd ranks receive.
if rank % 2 == 0:
    data = {"a": 7, "b": 3.14, "from": rank}
    comm.send(data, dest=partner, tag=11)
else:
    data = comm.recv(source=partner, tag=11)
    print(f"rank {rank} received {data}")

# NumPy arrays (buffers, fast): odd ranks send back, even ranks receive.
if rank % 2 == 1:
    data = np.arange(10, dtype="i") * rank
    comm.Send([data, MPI.INT], dest=partner, tag=77)
else:
    data = np.empty(10, dtype="i")
    comm.Recv([data, MPI.INT], source=partner, tag=77)
    print(f"rank {rank} received {data.tolist()}")
