"""A periodic 2 x 2 Cartesian grid: each process prints its coordinates and neighbours."""

from mpi4py import MPI

comm = MPI.COMM_WORLD
assert comm.Get_size() == 4, "run with exactly 4 processes"

cart = comm.Create_cart(dims=[2, 2], periods=[True, True], reorder=False)
rank = cart.Get_rank()
coords = cart.Get_coords(rank)
up, down = cart.Shift(0, 1)
left, right = cart.Shift(1, 1)
print(f"rank {rank} at {coords}: up {up} down {down} left {left} right {right}")
cart.Free()
