"""Two-level algorithms (``algorithms/hierarchical.py``): every schedule in the simulator on
uneven and interleaved node layouts for every root, with the messages that cross nodes
counted; the selection facts; and real communicators on in-process ranks that believe they
are on several nodes."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from simcheck import check

from treecast import plans
from treecast.algorithms import hierarchical
from treecast.algorithms.registry import ALGORITHMS, get
from treecast.comm import Comm
from treecast.engine.simulate import simulate_plans
from treecast.ops import SUM
from treecast.selection.rules import select
from treecast.transports.inproc import InprocWorld

LAYOUTS = [
    (0, 0, 0, 1),
    (0, 1, 1, 1, 1, 2),
    (0, 1, 0, 1, 0),
    (0, 0, 1, 1, 2, 2, 2),
    (0, 1, 2, 3, 4),
    (3, 3, 7, 3),
    (0, 1),
]
"""Uneven nodes, interleaved placement, a node of one rank, every rank its own node, node
ids that are not 0..k-1."""
TWO_LEVEL = [family["two_level"] for family in ALGORITHMS.values() if "two_level" in family]
ROOTED = {"bcast", "gather", "reduce"}
FLAT = {
    "barrier": "dissemination",
    "bcast": "binomial",
    "gather": "binomial",
    "allgather": "bruck",
    "reduce": "binomial",
    "allreduce": "recursive_doubling",
}
"""The flat algorithm each two-level one is compared with."""


def _ceil_lg(k: int) -> int:
    return (k - 1).bit_length()


def _inter_node(collective: str, k: int) -> int:
    """Messages between nodes of each two-level schedule over ``k`` nodes."""
    if collective in ("bcast", "gather", "reduce"):
        return k - 1
    if collective in ("barrier", "allgather"):
        return k * _ceil_lg(k)
    assert collective == "allreduce"
    pof2 = 1 << (k.bit_length() - 1)
    return pof2 * (pof2.bit_length() - 1) + 2 * (k - pof2)


def test_every_collective_with_a_two_level_pattern_has_one() -> None:
    assert {a.collective for a in TWO_LEVEL} == {
        "barrier",
        "bcast",
        "gather",
        "allgather",
        "reduce",
        "allreduce",
    }
    assert all(a.needs_nodes for a in TWO_LEVEL)


@pytest.mark.parametrize("nodes", LAYOUTS, ids=lambda n: "-".join(map(str, n)))
@pytest.mark.parametrize("algo", TWO_LEVEL, ids=lambda a: a.collective)
def test_two_level_schedules_match_numpy_and_cross_nodes_as_little_as_promised(
    algo: Any, nodes: tuple[int, ...]
) -> None:
    """Every root, a few counts: the result, no message left over (the simulator raises),
    and the count of messages between nodes; never more than the flat safe algorithm's."""
    p, k = len(nodes), len(set(nodes))
    flat = get(algo.collective, FLAT[algo.collective])
    roots = range(p) if algo.collective in ROOTED else (0,)
    for root in roots:
        for count in (0, 3, 17):
            counts = check(algo, p, root, count, np.int64, nodes=nodes)
            assert counts.inter_node == _inter_node(algo.collective, k), (root, count)
        flat_counts = check(flat, p, root, 3, np.int64, nodes=nodes)
        assert counts.inter_node <= flat_counts.inter_node


def test_bcast_sends_one_message_into_each_node_but_the_roots() -> None:
    bcast = get("bcast", "two_level")
    nodes = (0, 0, 1, 1, 2, 2, 2, 1, 0, 3)
    for root in range(len(nodes)):
        counts = check(bcast, len(nodes), root, 5, nodes=nodes)
        assert counts.inter_node == 3
        assert counts.messages == len(nodes) - 1  # a tree: every rank but the root hears once


def test_the_root_leads_its_node_and_the_lowest_rank_the_others() -> None:
    lay = hierarchical.node_layout(7, 5, (4, 2, 4, 2, 9, 4, 9))
    assert lay.node == (0, 1, 0, 1, 2, 0, 2)
    assert lay.members == ((0, 2, 5), (1, 3), (4, 6))
    assert lay.leaders == (5, 1, 4)
    steps = hierarchical.bcast(5, 7, 5, (4, 2, 4, 2, 9, 4, 9))
    assert all(s.peer in (1, 4, 0, 2) for s in steps)  # nothing goes to the root's node first


def test_object_collectives_on_a_layout_select_two_level_in_the_simulator() -> None:
    nodes = (0, 1, 1, 0, 2)
    p = len(nodes)
    for root in range(p):
        sim = simulate_plans(
            p, lambda c, root=root: plans.plan_bcast(c, {"x": root}, root), "bcast", nodes=nodes
        )
        assert sim.results == [{"x": root}] * p
        assert sim.counts.inter_node == 2
        sim = simulate_plans(
            p, lambda c, root=root: plans.plan_gather(c, [c.rank], root), "gather", nodes=nodes
        )
        assert sim.results[root] == [[r] for r in range(p)]
        assert sim.counts.inter_node == 2
    sim = simulate_plans(
        p, lambda c: plans.plan_allgather(c, c.rank * 10), "allgather", nodes=nodes
    )
    assert sim.results == [[r * 10 for r in range(p)]] * p
    made: list[str] = []

    def barrier(c: plans.Caller) -> plans.Plan:
        plan = plans.plan_barrier(c)
        made.append(plan.algo.name)
        return plan

    assert simulate_plans(p, barrier, "barrier", nodes=nodes).counts.inter_node == 6
    assert set(made) == {"two_level"}


def test_selection_uses_the_node_count() -> None:
    for collective in ("bcast", "barrier", "gather", "allgather", "reduce", "allreduce"):
        for buffer in (True, False):
            assert select(collective, 4, 100, buffer=buffer, nodes=2).name == "two_level"
            assert select(collective, 4, 100, buffer=buffer, nodes=1).name != "two_level"
    for collective in ("reduce", "allreduce"):
        assert select(collective, 4, 100, commutative=False, nodes=3).name != "two_level"
    assert select("scatter", 4, 100, nodes=2).name == "binomial"
    assert select("bcast", 4, -1, buffer=False).name == "binomial"


def test_a_two_level_algorithm_on_one_node_says_why(caplog: pytest.LogCaptureFixture) -> None:
    algo = get("bcast", "two_level")
    why = algo.unusable(4, 100, True, True, None, 1)
    assert why is not None and "spans several nodes" in why
    assert algo.unusable(4, 100, True, True, None, 2) is None
    with caplog.at_level(logging.DEBUG, logger="treecast.selection"):
        assert select("bcast", 5, 100, forced="two_level", nodes=1).name == "binomial"
    assert "two_level cannot run here (needs a communicator that spans several nodes" in caplog.text
    with pytest.raises(ValueError, match="runs on a node layout; got nodes=None"):
        algo.steps(0, 4, 0, 100)
    with pytest.raises(ValueError, match=r"nodes must be a tuple of 3 ints >= 0.*\(0, 1\)"):
        algo.steps(0, 3, 0, 100, True, (0, 1))
    with pytest.raises(ValueError, match=r"rank must be in \[0, 3\], got -1"):
        algo.steps(-1, 4, 0, 100, True, (0, 0, 1, 1))
    with pytest.raises(ValueError, match=r"root must be in \[0, 3\], got 4"):
        algo.steps(0, 4, 4, 100, True, (0, 0, 1, 1))


class _CountingWorld(InprocWorld):
    """An in-process world that counts the messages posted between nodes."""

    def __init__(self, size: int, nodes: tuple[int, ...] | None) -> None:
        super().__init__(size, nodes)
        self.inter_node = 0
        self._count_lock = threading.Lock()

    def _post(self, src: int, dst: int, msg: Any) -> None:
        if self.nodes is not None and self.nodes[src] != self.nodes[dst]:
            with self._count_lock:
                self.inter_node += 1
        super()._post(src, dst, msg)


def _on_ranks(
    n: int,
    nodes: tuple[int, ...] | None,
    body: Callable[[Comm], Any],
    timeout: float = 60.0,
    world: InprocWorld | None = None,
) -> list[Any]:
    """``body(comm)`` on every rank of ``world`` (default ``InprocWorld(n, nodes)``), one
    thread each, over a world communicator; every rank's result."""
    world = world if world is not None else InprocWorld(n, nodes)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(rank: int) -> None:
        world[rank].default_timeout = timeout
        try:
            results[rank] = body(Comm(world[rank], range(n), 0, "world"))
        except BaseException as exc:
            errors.append(exc)
            world.kill(rank)

    threads = [threading.Thread(target=run, args=(r,), daemon=True) for r in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a rank is still running"
    if errors:
        raise errors[0]
    return results


def _collectives(comm: Comm) -> dict[str, Any]:
    """Every two-level collective, objects and buffers, every root, on ``comm``."""
    p, me = comm.size, comm.rank
    out: dict[str, Any] = {"bcast": [], "Bcast": [], "reduce": [], "Reduce": [], "gather": []}
    for root in range(p):
        out["bcast"].append(comm.bcast({"root": root} if me == root else None, root))
        buf = np.arange(6, dtype=np.float64) * (root + 1) if me == root else np.zeros(6)
        comm.Bcast(buf, root)
        out["Bcast"].append(buf.tolist())
        out["reduce"].append(comm.reduce(me + 1, SUM, root))
        got = np.zeros(3, np.int64) if me == root else None
        comm.Reduce(np.full(3, me + 1, np.int64), got, SUM, root)
        out["Reduce"].append(None if got is None else got.tolist())
        out["gather"].append(comm.gather(me * me, root))
        comm.barrier()
    total = np.zeros(4, np.int32)
    comm.Allreduce(np.full(4, me, np.int32), total, SUM)
    out["Allreduce"] = total.tolist()
    out["allreduce"] = comm.allreduce(me, SUM)
    out["allgather"] = comm.allgather(f"r{me}")
    everyone = np.zeros(2 * p, np.int64)
    comm.Allgather(np.array([me, -me], np.int64), everyone)
    out["Allgather"] = everyone.tolist()
    out["ibcast"] = comm.ibcast("nb" if me == 1 else None, 1).wait()
    later = np.zeros(2, np.int64)
    comm.Iallreduce(np.array([1, me], np.int64), later, SUM).wait()
    out["Iallreduce"] = later.tolist()
    comm.Ibarrier().wait()
    caller = comm._caller("check")
    out["chosen"] = {
        "bcast": plans.plan_bcast(caller, None, 0).algo.name,
        "Bcast": plans.plan_Bcast(caller, np.zeros(1 << 20), 0).algo.name,
        "Allreduce": plans.plan_Allreduce(caller, np.ones(1 << 16), np.ones(1 << 16)).algo.name,
        "barrier": plans.plan_barrier(caller).algo.name,
        "gather": plans.plan_gather(caller, 1, 0).algo.name,
        "allgather": plans.plan_allgather(caller, 1).algo.name,
        "reduce": plans.plan_Reduce(caller, np.ones(4), np.ones(4), SUM, 0).algo.name,
    }
    return out


@pytest.mark.timeout(120)
@pytest.mark.parametrize("nodes", [(0, 0, 1, 1), (0, 1, 0, 1)])
def test_real_communicators_on_two_nodes_run_two_level_collectives(
    nodes: tuple[int, ...],
) -> None:
    p = len(nodes)
    results = _on_ranks(p, nodes, _collectives)
    for me, got in enumerate(results):
        assert got["bcast"] == [{"root": root} for root in range(p)]
        assert got["Bcast"] == [(np.arange(6) * (root + 1)).tolist() for root in range(p)]
        assert got["reduce"] == [10 if me == root else None for root in range(p)]
        assert got["Reduce"] == [[10] * 3 if me == root else None for root in range(p)]
        assert got["gather"] == [[0, 1, 4, 9] if me == root else None for root in range(p)]
        assert got["Allreduce"] == [6] * 4
        assert got["allreduce"] == 6
        assert got["allgather"] == ["r0", "r1", "r2", "r3"]
        assert got["Allgather"] == [0, 0, 1, -1, 2, -2, 3, -3]
        assert got["ibcast"] == "nb"
        assert got["Iallreduce"] == [4, 6]
        assert set(got["chosen"].values()) == {"two_level"}, got["chosen"]


@pytest.mark.timeout(60)
def test_real_communicators_on_one_node_keep_the_flat_algorithms() -> None:
    def chosen(comm: Comm) -> dict[str, str]:
        assert comm._nodes is None
        caller = comm._caller("check")
        return {
            "bcast": plans.plan_bcast(caller, None, 0).algo.name,
            "barrier": plans.plan_barrier(caller).algo.name,
            "gather": plans.plan_gather(caller, 1, 0).algo.name,
            "allgather": plans.plan_allgather(caller, 1).algo.name,
            "reduce": plans.plan_Reduce(caller, np.ones(4), np.ones(4), SUM, 0).algo.name,
        }

    for nodes in (None, (0, 0, 0, 0), (5, 5, 5, 5)):
        results = _on_ranks(4, nodes, chosen)
        assert all("two_level" not in r.values() for r in results)
        assert results[0] == {
            "bcast": "binomial",
            "barrier": "dissemination",
            "gather": "binomial",
            "allgather": "recursive_doubling",
            "reduce": "binomial",
        }


@pytest.mark.timeout(60)
@pytest.mark.parametrize("nodes", [(0, 0, 1, 1), (0, 1, 0, 1), (0, 1, 1, 2, 2, 2)])
def test_the_blocking_fast_paths_cross_nodes_as_the_schedules_say(
    nodes: tuple[int, ...],
) -> None:
    """The object bcast and barrier paths (which select and run steps themselves) and
    the planned Bcast and Allreduce send the two-level schedules' inter-node messages."""
    p, k = len(nodes), len(set(nodes))

    def crossing(body: Callable[[Comm], Any]) -> int:
        world = _CountingWorld(p, nodes)
        _on_ranks(p, nodes, body, world=world)
        return world.inter_node

    assert crossing(lambda c: c.bcast("x" if c.rank == p - 1 else None, p - 1)) == k - 1
    assert crossing(lambda c: c.Bcast(np.zeros(10), 1)) == k - 1
    assert crossing(lambda c: c.barrier()) == _inter_node("barrier", k)
    assert crossing(lambda c: c.Allreduce(np.ones(3), np.ones(3))) == _inter_node("allreduce", k)
    assert crossing(lambda c: c.Gather(np.ones(2), np.ones(2 * p), 2)) == k - 1


def test_node_count_counts_distinct_nodes_of_any_layout() -> None:
    assert hierarchical.node_count(None) == 1
    layout = (0, 1, 1, 0, 2)
    assert hierarchical.node_count(layout) == 3
    assert hierarchical.node_count(layout) == 3  # the same tuple again: remembered
    assert hierarchical.node_count((7, 7, 7)) == 1
    for n in range(1, 200):  # many layouts, some equal but distinct objects
        assert hierarchical.node_count(tuple(range(n % 9 + 1))) == n % 9 + 1
