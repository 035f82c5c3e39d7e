"""A 2 x 3 Cartesian grid, periodic along its rows: neighbours with Shift, and a halo
exchange of one value with each neighbour.

treecast run -n 6 --tag-output python examples/tutorial/10_cartesian.py
"""

import treecast

comm = treecast.world()
cart = comm.Create_cart(dims=[2, 3], periods=[False, True])  # rank = 3 * row + column
row, column = cart.Get_coords(cart.rank)

up, down = cart.Shift(0, 1)  # direction 0, across the rows: (source, dest) of a +1 shift
left, right = cart.Shift(1, 1)  # direction 1, along a row (periodic: it wraps around)

# Halo exchange: send my value one way, receive my neighbour's from the other way.
# Past the grid's top and bottom edges the neighbour is treecast.PROC_NULL: nothing is
# sent to it, and what comes from it is None.
value = 100 + cart.rank
from_up = cart.sendrecv(value, dest=down, source=up)
from_down = cart.sendrecv(value, dest=up, source=down)
from_left = cart.sendrecv(value, dest=right, source=left)
from_right = cart.sendrecv(value, dest=left, source=right)

# The same exchange in one call: the neighbours' values in the order up, down, left, right.
assert cart.neighbor_allgather(value) == [from_up, from_down, from_left, from_right]


def name(rank):
    return "PROC_NULL" if rank == treecast.PROC_NULL else rank


print(f"at ({row}, {column}): up {name(up)}, down {name(down)}, left {left}, right {right}")
print(f"halo: up {from_up}, down {from_down}, left {from_left}, right {from_right}")
cart.free()
