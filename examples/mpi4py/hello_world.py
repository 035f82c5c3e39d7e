"""Hello world: every process reports its rank and the size of COMM_WORLD."""

from mpi4py import MPI

comm = MPI.COMM_WORLD
print(f"Hello, World! I am process {comm.Get_rank()} of {comm.Get_size()}.")
