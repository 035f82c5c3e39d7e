"""Inter-node traffic and node memory of a broadcast on treecast's MPI transport.

Run under an MPI launcher, e.g. two fake nodes of two ranks on one machine::

    MPIR_CVAR_NUM_CLIQUES=2 mpiexec -n 4 python benchmarks/mpi_nodes.py 64

For a NumPy payload of the given MiB (default 64) it prints, from rank 0:

- the bytes that crossed nodes for one object ``bcast`` and one buffer ``Bcast`` (every
  rank's count of bytes sent to other nodes, summed), against one payload per node beyond
  the root's;
- the memory per node after ``bcast(copy=False)``: the sum of Pss (proportional set size:
  shared pages split between the processes that map them) over the node's ranks, before and
  after, against one payload.
"""

from __future__ import annotations

import sys

import numpy as np
from copy_false import pss as pss_bytes  # this directory is on sys.path when run as a script

import treecast
from treecast import MPI


def main() -> None:
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 64
    w = treecast.world()
    t = w._t
    nodes = len(set(t.node_ids or (0,)))
    node = w.Split_type(MPI.COMM_TYPE_SHARED)
    payload = mib << 20
    data = np.full(payload // 8, 1.5) if w.rank == 0 else None
    lines = [f"n = {w.size} ranks on {nodes} node(s), payload {mib} MiB, root 0"]

    for name, call in (
        ("bcast (object)", lambda: w.bcast(data, root=0)),
        ("Bcast (buffer)", lambda: w.Bcast(data if w.rank == 0 else np.empty(payload // 8), 0)),
    ):
        w.barrier()
        before = getattr(t, "inter_node_bytes", 0)
        call()
        w.barrier()
        crossed = w.allreduce(getattr(t, "inter_node_bytes", 0) - before)
        lines.append(
            f"{name}: {crossed / payload:.3f} payloads crossed nodes "
            f"(one per node beyond the root's: {nodes - 1})"
        )

    w.barrier()
    base = node.allreduce(pss_bytes())
    shared = w.bcast({"x": data} if w.rank == 0 else None, root=0, copy=False)
    w.barrier()
    after = node.allreduce(pss_bytes())
    copies = node.allgather((after - base) / payload)
    per_node = w.gather(copies[0] if node.rank == 0 else None, root=0)
    assert shared["x"].nbytes == payload
    if w.rank == 0:
        grown = [f"{c:.2f}" for c in per_node if c is not None]
        lines.append(
            f"bcast(copy=False): node memory (sum of Pss over its ranks) grew by "
            f"{', '.join(grown)} payload(s) per node (one shared copy per node: 1.00)"
        )
        print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
