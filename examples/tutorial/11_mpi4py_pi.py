"""Compute pi by integrating 4 / (1 + x**2) over [0, 1]: mpi4py code, unchanged.

treecast run --mpi4py -n 4 python examples/tutorial/11_mpi4py_pi.py
"""

import math

import numpy as np
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()

n = np.array(100_000 if rank == 0 else 0, dtype="i")  # number of intervals, chosen on rank 0
comm.Bcast([n, MPI.INT], root=0)

h = 1.0 / n
x = h * (np.arange(rank, n, size, dtype="d") + 0.5)  # this rank's share of the midpoints
mypi = np.array(h * np.sum(4.0 / (1.0 + x**2)), dtype="d")

pi = np.array(0.0, dtype="d")
comm.Reduce([mypi, MPI.DOUBLE], [pi, MPI.DOUBLE], op=MPI.SUM, root=0)
if rank == 0:
    print(f"pi is approximately {pi:.12f}, error {abs(pi - math.pi):.1e}")
