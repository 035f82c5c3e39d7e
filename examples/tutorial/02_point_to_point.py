"""Point-to-point: rank 0 sends a Python object, a NumPy array and a non-blocking message
to rank 1.

treecast run -n 2 python examples/tutorial/02_point_to_point.py
"""

import numpy as np

import treecast

comm = treecast.world()

if comm.rank == 0:
    comm.send({"a": 7, "b": 3.14}, dest=1, tag=11)  # any picklable object
    comm.Send(np.arange(10, dtype="i"), dest=1, tag=77)  # a buffer: no pickling
    request = comm.isend("sent without waiting", dest=1, tag=12)
    request.wait()
elif comm.rank == 1:
    status = treecast.Status()
    data = comm.recv(source=0, tag=11, status=status)
    print(f"recv: {data} from rank {status.source} with tag {status.tag}")

    array = np.empty(10, dtype="i")  # the receiver provides the buffer
    comm.Recv(array, source=0, tag=77)
    print(f"Recv: {array}")

    request = comm.irecv(source=0, tag=12)
    print(f"irecv: {request.wait()!r}")
