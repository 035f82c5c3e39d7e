"""A deadlock: both ranks receive first, so neither ever sends.

treecast run -n 2 --tag-output python examples/tutorial/03_deadlock.py
"""

import treecast

comm = treecast.world()
partner = comm.rank ^ 1  # pairs of ranks: 0 <-> 1 (and 2 <-> 3, ...)

message = comm.recv(source=partner)  # both ranks wait here for the other to send,
comm.send(f"hello from {comm.rank}", dest=partner)  # so neither ever gets here
print(message)
