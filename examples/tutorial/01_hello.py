"""Hello, world: every rank prints its rank and the number of ranks.

treecast run -n 4 --tag-output python examples/tutorial/01_hello.py
"""

import treecast

comm = treecast.world()  # every rank of the job (a world of one without the launcher)
print(f"Hello, World! I am process {comm.rank} of {comm.size}.")
