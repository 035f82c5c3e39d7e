"""Ring exchange with sendrecv: each process sends to its right and receives from its left."""

from mpi4py import MPI

comm = MPI.COMM_WORLD
size = comm.Get_size()
rank = comm.Get_rank()

right = (rank + 1) % size
left = (rank - 1) % size
received = comm.sendrecv(f"greetings from {rank}", dest=right, source=left)
print(f"rank {rank} got {received!r}")
