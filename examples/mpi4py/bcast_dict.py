"""Broadcast a Python dictionary from rank 0 to every process."""

from mpi4py import MPI

comm = MPI.COMM_WORLD
rank = comm.Get_rank()

data = {"key1": [7, 2.72, 2 + 3j], "key2": ("abc", "xyz")} if rank == 0 else None
data = comm.bcast(data, root=0)
print(f"rank {rank}: {data}")
