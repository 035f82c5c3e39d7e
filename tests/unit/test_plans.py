"""Planning is pure: every rank's plan of every collective, built without processes."""

import inspect

import numpy as np
import pytest

import treecast
from treecast import MPI, plans
from treecast.algorithms import registry
from treecast.engine.store import BufferStore, ObjectStore
from treecast.errors import InvalidArgumentError, InvalidArgumentTypeError, InvalidRootError
from treecast.plans import Caller
from treecast.selection.rules import select

NODE = frozenset({"node_memory"})
NONE = frozenset()


def caller(rank, size, name, caps=NODE):
    return Caller(rank, size, name, caps)


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_every_rank_plans_a_gather_whose_root_store_is_the_receive_buffer(size):
    root = size - 1
    recv = np.zeros(4 * size, np.int32)
    for r in range(size):
        send = np.full(4, r, np.int32)
        plan = plans.plan_Gather(caller(r, size, "Gather"), send, recv if r == root else None, root)
        assert isinstance(plan.store, BufferStore)
        assert plan.root == root and plan.nbytes == 16 * size and plan.check_bytes == 16
        steps = plan.steps(caller(r, size, "Gather"))
        assert isinstance(steps, tuple)
        if r == root:
            # the root's own block is copied in place while planning; the others' blocks
            # are views of its receive buffer
            assert list(recv[4 * root : 4 * root + 4]) == [root] * 4
            assert plan.store.layout == {b: (0, 16 * b, 16) for b in range(size)}


def test_a_bad_argument_raises_while_planning_naming_the_call_and_the_value():
    c = caller(0, 3, "Igather")
    with pytest.raises(InvalidRootError, match=r"Igather: root=3 is not a valid rank"):
        plans.plan_gather(c, 1, root=3)
    with pytest.raises(InvalidArgumentTypeError, match=r"Igather: root must be an int, got str"):
        plans.plan_gather(c, 1, root="0")
    with pytest.raises(InvalidArgumentError, match=r"Scatter: the send buffer's 7 items"):
        plans.plan_Scatter(caller(0, 3, "Scatter"), np.zeros(7), np.zeros(2))
    with pytest.raises(InvalidArgumentError, match=r"expected a sequence of 3 items .* got 2"):
        plans.plan_alltoall(caller(1, 3, "alltoall"), [1, 2])
    with pytest.raises(InvalidArgumentError, match=r"IN_PLACE is only valid at the root"):
        plans.plan_Reduce(caller(1, 3, "Reduce"), treecast.IN_PLACE, None, root=0)
    with pytest.raises(InvalidArgumentError, match=r"recvcounts must be 3 non-negative"):
        plans.plan_Reduce_scatter(caller(0, 3, "Reduce_scatter"), np.zeros(6), np.zeros(2), [1, 2])


def test_reduction_plans_lay_out_chunks_and_copy_the_input_into_the_output():
    inp = np.arange(10, dtype=np.float64)
    out = np.zeros(10)
    plan = plans.plan_Allreduce(caller(1, 4, "Iallreduce"), inp, out)
    assert plan.node is None  # the I* form never runs node-level
    assert isinstance(plan.store, BufferStore)
    assert np.array_equal(out, inp)  # the output is the work buffer
    assert sum(n for _, _, n in plan.store.layout.values()) == inp.nbytes
    scan = plans.plan_Scan(caller(2, 4, "Scan"), inp, out)
    assert scan.store.present == {0, 1}
    exscan = plans.plan_Exscan(caller(2, 4, "Exscan"), inp, out)
    assert exscan.store.present == {1}


def test_object_plans_hold_this_ranks_blocks_and_give_results_from_the_store():
    plan = plans.plan_alltoall(caller(1, 3, "alltoall"), ["a", "b", "c"])
    assert isinstance(plan.store, ObjectStore)
    assert plan.store.objects == {3: "a", 4: "b", 5: "c"}
    plan.store.objects.update({1: "x", 7: "y"})
    assert plan.result() == ["x", "b", "y"]
    red = plans.plan_reduce(caller(2, 3, "reduce"), 5, root=0)
    assert red.result() is None  # not the root
    assert red.commutative is False  # objects combine in rank order


def test_node_level_algorithms_only_on_transports_with_node_memory():
    forced = "shm_one_write"
    assert registry.get("bcast", forced).requires == NODE
    buf = np.zeros(1 << 20, np.uint8)
    with_node = plans.plan_Bcast(caller(1, 2, "Bcast", NODE), buf, algorithm=forced)
    assert with_node.algo.name == forced and with_node.node is not None
    without = plans.plan_Bcast(caller(1, 2, "Bcast", NONE), buf, algorithm=forced)
    assert not without.algo.node_level and without.node is None
    # the rule table skips node-level rules too, for every size
    for nbytes in (8, 1 << 20, 64 << 20):
        for coll in ("bcast", "allreduce"):
            assert not select(coll, 4, nbytes, capabilities=NONE).node_level
    assert select("allreduce", 2, 8 << 20, forced="shm_reduce", capabilities=NONE).name != (
        "shm_reduce"
    )


def test_both_forms_of_a_collective_have_the_plans_signature():
    blocking = inspect.signature(treecast.Comm.Gather)
    assert list(blocking.parameters) == [
        "self",
        "sendbuf",
        "recvbuf",
        "root",
        "timeout",
        "algorithm",
    ]
    assert blocking.parameters["timeout"].kind is inspect.Parameter.KEYWORD_ONLY
    started = inspect.signature(treecast.Comm.Igather)
    assert "timeout" not in started.parameters and started.return_annotation == "Request"
    assert treecast.Comm.Reduce.__doc__ == plans.plan_Reduce.__doc__
    assert treecast.Comm.Ialltoallv.__name__ == "Ialltoallv"
    for name in ("igather", "Iscatterv", "Ireduce_scatter_block", "ibarrier", "Ibcast"):
        assert callable(getattr(treecast.Comm, name)), name


def test_a_single_rank_never_plans_a_node_level_call() -> None:
    """A communicator of one (COMM_SELF, a singleton split) has nothing to share."""
    buf = np.zeros(1 << 17)
    plan = plans.plan_Bcast(caller(0, 1, "Bcast"), buf, algorithm="shm_one_write")
    assert plan.node is None
    out = np.zeros(1 << 17)
    assert (
        plans.plan_Allreduce(caller(0, 1, "Allreduce"), buf, out, algorithm="shm_reduce").node
        is None
    )
    comm = MPI.COMM_SELF
    seq = comm._coll_seq
    comm.Bcast(buf)
    assert getattr(comm, "_node_arena", None) is None and comm._coll_seq == seq + 1


def test_reduce_scatter_without_counts_checks_every_argument_before_exchanging() -> None:
    c = caller(0, 3, "Reduce_scatter")
    assert plans.reduce_scatter_count(c, np.zeros(6), np.zeros(2)) == 2
    with pytest.raises(InvalidArgumentTypeError, match="Reduce_scatter"):
        plans.reduce_scatter_count(c, np.zeros(6), np.zeros(2), op=object())
    with pytest.raises(InvalidArgumentError, match="dtype"):
        plans.reduce_scatter_count(c, np.zeros(6), np.zeros(2, np.int32))
    comm = MPI.COMM_SELF
    seq = comm._coll_seq
    with pytest.raises(InvalidArgumentTypeError):
        comm.Reduce_scatter(np.zeros(2), np.zeros(2), op=object())
    assert comm._coll_seq == seq  # nothing was exchanged
