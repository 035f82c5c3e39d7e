"""The simulator itself: the errors it reports and the costs it counts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from treecast.algorithms.registry import get
from treecast.algorithms.schedule import LEFT, RIGHT, Combine, Recv, Send, WaitAll
from treecast.engine.simulate import SimulationError, simulate
from treecast.errors import TreecastError


def test_moves_and_reduces_blocks_in_fifo_order() -> None:
    steps = [
        [Send(1, blocks=(0,)), Send(1, blocks=(1,)), WaitAll()],
        [Recv(0, blocks=(0,), reduce=LEFT), Recv(0, blocks=(1,), reduce=RIGHT), Combine(0, 1)],
    ]
    stores = [{0: ("a",), 1: ("b",)}, {0: ("x",), 1: ("y",)}]
    counts = simulate(steps, stores, lambda a, b: a + b)
    assert stores[1] == {0: ("a", "x"), 1: ("a", "x", "y", "b")}
    assert (counts.messages, counts.blocks, counts.rounds, counts.max_sent) == (2, 2, 2, 2)


def test_sent_values_are_copied_when_sent() -> None:
    a = np.arange(4)
    steps = [
        [Send(1, blocks=(0,)), Recv(1, blocks=(0,), reduce=RIGHT)],
        [Recv(0, blocks=(0,)), Send(0, blocks=(0,))],
    ]
    stores = [{0: a}, {}]
    counts = simulate(steps, stores, np.add)
    np.testing.assert_array_equal(stores[0][0], 2 * np.arange(4))
    np.testing.assert_array_equal(stores[1][0], np.arange(4))
    assert counts.bytes == 2 * a.nbytes


def test_segments_fill_a_payload_and_forwarding_an_unreceived_one_fails() -> None:
    payloads: list[bytes | bytearray | None] = [b"abcdef", None, None]
    steps = [[Send(1, 0, 3), Send(1, 3, 3)], [Recv(0, 0, 3), Recv(0, 3, 3), Send(2)], [Recv(1)]]
    simulate(steps, payloads=payloads)
    assert bytes(payloads[1] or b"") == bytes(payloads[2] or b"") == b"abcdef"
    with pytest.raises(SimulationError, match=r"rank 1, step 1 .*never received"):
        simulate(
            [[Send(1, 0, 3)], [Recv(0, 0, 3), Send(2, 2, 3)], [Recv(1, 2, 3)]],
            payloads=[b"abcdef", None, None],
        )


def test_a_mismatched_message_names_both_steps() -> None:
    steps = [[Send(1, blocks=(0, 1))], [Recv(0, blocks=(1, 0))]]
    with pytest.raises(SimulationError) as err:
        simulate(steps, [{0: 1, 1: 2}, {}])
    text = str(err.value)
    assert "rank 1, step 0 (Recv from rank 0 of blocks (1, 0))" in text
    assert "its step 0 (Send to rank 1 of blocks (0, 1))" in text
    with pytest.raises(SimulationError, match=r"bytes 0\.\.4"):
        simulate([[Send(1, 0, 4)], [Recv(0, 0, 3)]], payloads=[b"abcd", None])


def test_renamed_blocks_are_accepted_only_when_allowed() -> None:
    steps = [[Send(1, blocks=(1,))], [Recv(0, blocks=(2,))]]
    with pytest.raises(SimulationError):
        simulate(steps, [{1: 5}, {}])
    stores: list[dict[int, int]] = [{1: 5}, {}]
    simulate(steps, stores, renames={(1, 2)})
    assert stores[1] == {2: 5}


def test_a_deadlock_names_every_waiting_rank() -> None:
    steps = [
        [Recv(1, blocks=(0,)), Send(1, blocks=(0,))],
        [Recv(0, blocks=(0,)), Send(0, blocks=(0,))],
        [],
    ]
    with pytest.raises(SimulationError) as err:
        simulate(steps, [{0: 1}, {0: 2}, {}])
    text = str(err.value)
    assert text.startswith("deadlock")
    assert "rank 0 at step 0 waits to Recv from rank 1 of blocks (0,)" in text
    assert "rank 1 at step 0 waits to Recv from rank 0" in text
    assert isinstance(err.value, TreecastError)


def test_messages_never_received_are_reported() -> None:
    with pytest.raises(SimulationError, match=r"never received: rank 0 -> rank 1: step 1 \(Send"):
        simulate([[Send(1), Send(1)], [Recv(0)]], payloads=[b"x", None])


def test_reading_an_absent_block_or_payload_fails() -> None:
    with pytest.raises(SimulationError, match="block 3 is absent"):
        simulate([[Send(1, blocks=(3,))], [Recv(0, blocks=(3,))]], [{0: 1}, {}])
    with pytest.raises(SimulationError, match="block 2 is absent"):
        simulate([[Combine(2, 0)]], [{0: 1}])
    with pytest.raises(SimulationError, match="no payload"):
        simulate([[Send(1)], [Recv(0)]])
    with pytest.raises(SimulationError, match="no op"):
        simulate([[Send(1, blocks=(0,))], [Recv(0, blocks=(0,), reduce=LEFT)]], [{0: 1}, {0: 2}])
    with pytest.raises(SimulationError, match="not another rank"):
        simulate([[Send(0)]], payloads=[b""])


def test_an_absent_destination_takes_the_incoming_value() -> None:
    stores = [{1: ("x",)}, {}]
    simulate(
        [[Send(1, blocks=(1,))], [Recv(0, blocks=(1,), reduce=LEFT), Combine(1, 0, RIGHT)]],
        stores,
        lambda a, b: a + b,
    )
    assert stores[1] == {0: ("x",), 1: ("x",)}


def test_counts_follow_the_cost_model() -> None:
    """Rounds are the alpha term: ceil(lg p) for a binomial bcast and for recursive
    doubling, p - 1 + segments - 1 for a pipelined chain; time adds beta per byte."""
    for size in (2, 5, 8, 13):
        lg = (size - 1).bit_length()
        bcast = get("bcast", "binomial")
        steps = [bcast.steps(r, size, 0, -1) for r in range(size)]
        payloads: list[bytes | bytearray | None] = [b"x" * 10] + [None] * (size - 1)
        counts = simulate(steps, payloads=payloads, alpha=2.0, beta=0.5)
        assert counts.rounds == lg and counts.messages == size - 1
        assert counts.time == lg * (2.0 + 0.5 * 10)
        allreduce = get("allreduce", "recursive_doubling")
        steps = [allreduce.steps(r, size, 0, 8) for r in range(size)]
        counts = simulate(steps, [{0: np.ones(1)} for _ in range(size)], np.add)
        fold = 2 if size & (size - 1) else 0
        assert counts.rounds == (size.bit_length() - 1) + fold
    chain = get("bcast", "pipelined_chain")
    nbytes = 5 * (256 << 10)
    steps = [chain.steps(r, 6, 0, nbytes) for r in range(6)]
    payloads = [bytes(nbytes)] + [None] * 5
    assert simulate(steps, payloads=payloads).rounds == 5 + 5 - 1


def test_two_tree_streams_at_twice_the_pipelined_binary_rate() -> None:
    """Each rank forwards in one tree only, so a two-tree broadcast of s segments takes
    about s + depth single-port rounds, where one binary tree takes 2 s."""
    from treecast.algorithms.bcast import SEGMENT_BYTES

    nbytes = 64 * SEGMENT_BYTES
    for size in (4, 8, 16):
        rounds = {}
        for name in ("two_tree", "pipelined_binary"):
            algo = get("bcast", name)
            steps = [algo.steps(r, size, 0, nbytes) for r in range(size)]
            payloads: list[bytes | bytearray | None] = [bytes(nbytes)] + [None] * (size - 1)
            rounds[name] = simulate(steps, payloads=payloads).rounds
        assert rounds["two_tree"] <= 64 + 2 * size.bit_length(), rounds
        assert rounds["pipelined_binary"] >= 128, rounds


def test_a_dead_rank_or_a_lost_message_ends_in_a_report_naming_it() -> None:
    bcast = get("bcast", "binomial")
    steps = [bcast.steps(r, 4, 0, -1) for r in range(4)]

    def run(faults: Any) -> str:
        with pytest.raises(SimulationError) as err:
            simulate(steps, payloads=[b"abc", None, None, None], faults=faults)
        return str(err.value)

    parent = steps[3][0].peer  # rank 3's first step receives from its parent
    assert parent != 0
    text = run(lambda world: world.kill(parent))
    assert text.startswith(f"deadlock: rank 3 at step 0 waits to Recv from rank {parent}")
    assert text.endswith(f"(rank(s) {parent} died)")
    text = run(lambda world: world.drop(0, 2))
    assert text.startswith("deadlock: rank 2 at step 0 waits to Recv from rank 0")
    leaf = next(r for r in range(1, 4) if not any(type(s) is Send for s in steps[r]))
    text = run(lambda world: world.kill(leaf))
    assert text.startswith("messages never received: rank 0 -> rank ")
    assert f"-> rank {leaf}: " in text and text.endswith(f"(rank(s) {leaf} died)")


def test_the_real_plans_of_a_call_run_on_the_engine() -> None:
    """simulate_plans: the user's buffers, laid out by plans.py, through the engine."""
    from treecast import plans
    from treecast.engine.simulate import simulate_plans

    size = 5
    send = [np.full(3, r, np.int64) for r in range(size)]
    recv = [np.zeros(3, np.int64) for _ in range(size)]
    run = simulate_plans(
        size, lambda c: plans.plan_Allreduce(c, send[c.rank], recv[c.rank]), "Iallreduce"
    )
    assert all((r == sum(range(size))).all() for r in recv)
    assert run.results == [None] * size and run.counts.messages > 0
    objs = simulate_plans(size, lambda c: plans.plan_allgather(c, {"r": c.rank}), "iallgather")
    assert objs.results == [[{"r": r} for r in range(size)]] * size


def test_simulated_plans_report_messages_nobody_received_and_run_node_level_calls() -> None:
    from treecast import plans
    from treecast.engine.simulate import simulate_plans

    bufs = [np.full(4, r) for r in range(3)]

    def disagree(c: Any) -> Any:  # rank 2 thinks it is the root
        return plans.plan_Bcast(c, bufs[c.rank], 2 if c.rank == 2 else 0, algorithm="linear")

    with pytest.raises(SimulationError, match="never received"):
        simulate_plans(3, disagree, "Bcast")
    n = 100_000
    send = [np.full(n, r, np.float64) for r in range(4)]
    recv = [np.zeros(n) for _ in range(4)]
    simulate_plans(
        4,
        lambda c: plans.plan_Allreduce(c, send[c.rank], recv[c.rank], algorithm="shm_reduce"),
        "Allreduce",
    )
    assert all((r == 6.0).all() for r in recv)


def test_a_rank_that_finished_early_still_gets_a_report() -> None:
    from treecast.algorithms.schedule import Send as S

    assert simulate([[], []], faults=lambda w: w.finish(1)).messages == 0
    with pytest.raises(SimulationError, match="never received"):
        simulate([[S(1, blocks=(0,))], []], [{0: "x"}, {}], faults=lambda w: w.finish(1))
