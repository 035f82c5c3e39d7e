"""The deadlock of 03_deadlock.py, fixed twice: by ordering the calls, and with sendrecv.

treecast run -n 2 --tag-output python examples/tutorial/04_deadlock_fixed.py
"""

import treecast

comm = treecast.world()
partner = comm.rank ^ 1  # pairs of ranks: 0 <-> 1 (and 2 <-> 3, ...)

# Fix 1: order the calls so that one rank sends while the other receives.
if comm.rank % 2 == 0:  # the even rank of each pair sends first
    comm.send(f"hello from {comm.rank}", dest=partner)
    message = comm.recv(source=partner)
else:
    message = comm.recv(source=partner)
    comm.send(f"hello from {comm.rank}", dest=partner)
print(f"ordered:  {message}")

# Fix 2: sendrecv sends and receives at once, whatever the partner does first.
message = comm.sendrecv(f"hi again from {comm.rank}", dest=partner, source=partner)
print(f"sendrecv: {message}")
