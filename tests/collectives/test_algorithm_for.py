"""``comm.algorithm_for`` names what the broadcasts actually run, on real ranks."""

from __future__ import annotations

import pytest

from treecast.testing import run_ranks

pytestmark = pytest.mark.timeout(120)


def _observe_broadcasts() -> list[tuple[str, list[str], list[str]]]:
    """Per broadcast: (case, what the route announced, what ran): the schedules' algorithm
    names and ``node:bcast`` for a node-level path."""
    import numpy as np

    import treecast
    from treecast.algorithms.registry import Algorithm
    from treecast.collectives import Collectives

    comm = treecast.world()
    array = np.arange(1 << 17, dtype=np.float64)  # 1 MiB
    buf = array.copy() if comm.rank == 0 else np.empty_like(array)
    comm.Bcast(buf, root=0)  # the node's arena is made collectively, before watching
    seen: list[str] = []
    steps, run_node = Algorithm.steps, Collectives._run_node

    def spy_steps(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(self.name)
        return steps(self, *args, **kwargs)

    def spy_node(self, node, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(f"node:{node.kind}")
        return run_node(self, node, *args, **kwargs)

    Algorithm.steps = spy_steps  # type: ignore[method-assign]
    Collectives._run_node = spy_node  # type: ignore[method-assign]
    cases = {
        "small object": (lambda: comm.bcast("hi" if comm.rank == 0 else None), ("bcast", -1)),
        "array object": (
            lambda: comm.bcast(array if comm.rank == 0 else None),
            ("bcast", array.nbytes),
        ),
        "small array object": (
            lambda: comm.bcast(array[:8] if comm.rank == 0 else None),
            ("bcast", 64),
        ),
        "Bcast": (lambda: comm.Bcast(buf, root=0), ("Bcast", buf.nbytes)),
        "small Bcast": (lambda: comm.Bcast(buf[:8], root=0), ("Bcast", 64)),
    }
    out = []
    for case, (call, (name, nbytes)) in cases.items():
        route = comm.algorithm_for(name, nbytes)
        announced = [
            "node:bcast" if s.algorithm.node_level else s.algorithm.name for s in route.stages
        ]
        comm.barrier()
        seen.clear()
        call()
        out.append((case, announced, list(seen)))
    return out


@pytest.mark.parametrize("n", [2, 4])
def test_algorithm_for_names_what_each_broadcast_runs(n):
    for rank, cases in enumerate(run_ranks(_observe_broadcasts, n, timeout=90)):
        for case, announced, ran in cases:
            assert announced == ran, f"rank {rank}, {case}: announced {announced}, ran {ran}"
        assert dict((c, a) for c, a, _ in cases)["array object"] == ["binomial", "node:bcast"]
