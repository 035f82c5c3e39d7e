"""Scatter a list of Python objects from rank 0, one item per process."""

from mpi4py import MPI

comm = MPI.COMM_WORLD
size = comm.Get_size()
rank = comm.Get_rank()

data = [(i + 1) ** 2 for i in range(size)] if rank == 0 else None
data = comm.scatter(data, root=0)
assert data == (rank + 1) ** 2
print(f"rank {rank}: got {data}")
