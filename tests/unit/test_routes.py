"""``routes.route`` (``Comm.algorithm_for``) answers what the calls' own planning chooses."""

from __future__ import annotations

import numpy as np
import pytest

from treecast import plans
from treecast.errors import InvalidArgumentError
from treecast.ops import Op
from treecast.plans import Caller
from treecast.routes import route

NODE = frozenset({"node_memory", "inline_small"})
PLAIN = frozenset({"inline_small"})
SIZES = [0, 8, 1000, 1024, 12288, 32768, 100_000, 600_000, 4 << 20]


@pytest.mark.parametrize("caps", [NODE, PLAIN])
@pytest.mark.parametrize("size", [1, 2, 3, 4, 7, 8, 9])
def test_bcast_route_is_the_plans_choice(size, caps):
    for nbytes in SIZES:
        c = Caller(0, size, "Bcast", caps)
        plan = plans.plan_Bcast(c, np.zeros(nbytes, np.uint8))
        got = route(c, nbytes)
        assert got.algorithm is plan.algo
        assert len(got.stages) == 1
        assert (plan.node is not None) == (size > 1 and got.algorithm.node_level)
        assert got.stages[0].carries == ("the buffer" if size > 1 else "nothing: one rank")


@pytest.mark.parametrize("size", [2, 4, 8])
def test_object_bcast_route_sends_large_buffers_through_node_memory(size):
    c = Caller(0, size, "bcast", NODE)
    small = route(c, -1)
    assert [s.algorithm.name for s in small.stages] == ["binomial"]
    assert small.stages[0].carries == "the pickled object"
    big = route(c, 1 << 20)
    assert [s.algorithm.name for s in big.stages] == ["binomial", "shm_one_write"]
    assert str(big) == "binomial (the pickle stream) + shm_one_write (the out-of-band buffers)"
    assert big.algorithm.node_level
    few = route(c, 100)  # a small array rides along with the pickle stream
    assert str(few) == "binomial (the pickle stream with its out-of-band buffers)"
    without = route(Caller(0, size, "bcast", PLAIN), 1 << 20)  # no node memory
    assert [s.algorithm.name for s in without.stages] == ["binomial"]
    forced = route(c, 1 << 20, algorithm="knomial")  # algorithm=: everything by that
    assert [s.algorithm.name for s in forced.stages] == ["knomial"]


def test_a_tree_stage_gives_each_rank_its_parent_and_children():
    stage = route(Caller(0, 8, "bcast", NODE), -1).stages[0]
    assert stage.peers(0) == ([], [4, 2, 1])
    assert stage.peers(6) == ([4], [7])
    assert stage.peers(3, root=3) == ([], [7, 5, 4])


def test_across_nodes_a_broadcast_goes_among_the_leaders_then_inside_each_node():
    nodes = (0, 0, 0, 0, 1, 1, 1, 1)
    c = Caller(5, 8, "Bcast", PLAIN, nodes)  # a communicator across nodes has no node memory
    got = route(c, 4 << 20, node_capabilities=NODE)
    assert [(s.carries, s.algorithm.name, s.size) for s in got.stages] == [
        ("the buffer among the node leaders", "two_level", 2),
        ("the buffer inside each node", "shm_one_write", 4),
    ]
    plan = plans.plan_Bcast(c, np.zeros(4 << 20, np.uint8))
    assert plan.node is not None  # the plan runs those two stages
    small = route(c, 1000, node_capabilities=NODE)
    assert [s.algorithm.name for s in small.stages] == ["two_level"]
    obj = route(Caller(5, 8, "bcast", PLAIN, nodes), 4 << 20, node_capabilities=NODE)
    assert [s.algorithm.name for s in obj.stages] == ["two_level", "two_level", "shm_one_write"]


def test_other_collectives_match_their_plans():
    for size in (2, 3, 4, 8):
        for n in (1, 100, 100_000):
            c = Caller(0, size, "Allreduce", NODE)
            data = np.ones(n, np.float64)
            assert route(c, data.nbytes).algorithm is plans.plan_Allreduce(c, data, data * 0).algo
            c = Caller(0, size, "Gather", NODE)
            recv = np.zeros(n * size)
            plan = plans.plan_Gather(c, data, recv)
            assert route(c, recv.nbytes).algorithm is plan.algo
        mine = Op.Create(lambda a, b, datatype: None, commute=False)
        c = Caller(0, size, "Allreduce", NODE)
        data = np.ones(1000)
        plan = plans.plan_Allreduce(c, data, data * 0, mine)
        assert route(c, data.nbytes, commutative=False).algorithm is plan.algo
        c = Caller(0, size, "allreduce", NODE)
        assert route(c).algorithm is plans.plan_allreduce(c, 1).algo
        c = Caller(0, size, "Alltoallv", NODE)
        assert route(c, 100).algorithm.name == "pairwise"
        assert route(Caller(0, size, "Ibcast", NODE), 100).algorithm.name == "binomial"


def test_a_name_that_is_no_collective_is_refused():
    with pytest.raises(InvalidArgumentError, match="'send' is not a collective"):
        route(Caller(0, 4, "send", NODE))
    with pytest.raises(
        InvalidArgumentError, match="'gatherv' has no object form; ask for 'Gatherv'"
    ):
        route(Caller(0, 4, "gatherv", NODE))
    with pytest.raises(InvalidArgumentError, match="unknown"):
        route(Caller(0, 4, "Bcast", NODE), 8, algorithm="no_such_algorithm")
