"""The cost simulator against hand counts, the engine's simulator and itself (the symmetric
shortcut, the core limit)."""

from __future__ import annotations

import math

import pytest

from treecast.algorithms import registry
from treecast.algorithms.schedule import Recv, Send
from treecast.engine.simulate import simulate as engine_simulate
from treecast.model.costsim import (
    Costs,
    ScheduleError,
    lateness,
    simulate,
    simulate_symmetric,
)
from treecast.transports.wait import FIRST_SLEEP, MAX_SLEEP


def costs(alpha: float = 1.0, beta: float = 0.0, whole: float = 0.0, **kw: float) -> Costs:
    """Alpha-beta figures only: no overhead, no pipelining grain beyond the message."""
    fields = dict(
        half=alpha / 2,
        beta=beta,
        recv_beta=beta,
        gamma=0.0,
        chunk=1.0,
        overhead=0.0,
        block=1.0,
        whole=whole,
        sleep_extra=0.0,
    )
    fields.update(kw)
    return Costs(**fields)  # type: ignore[arg-type]


def steps_of(collective: str, name: str, size: int, nbytes: int = 8):
    algo = registry.get(collective, name)
    return lambda r: algo.schedule(*algo.arguments(r, size, 0, nbytes, True))


@pytest.mark.parametrize("size", [2, 4, 8, 16, 64])
def test_binomial_bcast_takes_ceil_lg_p_message_times(size):
    """A send costs its sender half of alpha and its receiver the other half, so a chain of
    forwards costs alpha per hop and the deepest leaf is ceil(lg p) hops away; the engine's
    simulator counts the same rounds."""
    alpha = 5e-6  # waits far shorter than the yielding phase: no sleeps
    got = simulate(size, steps_of("bcast", "binomial", size), costs(alpha=alpha))
    algo = registry.get("bcast", "binomial")
    steps = [algo.steps(r, size, 0, 8) for r in range(size)]
    rounds = engine_simulate(steps, payloads=[bytes(8)] + [None] * (size - 1)).rounds
    assert got.seconds == pytest.approx(math.ceil(math.log2(size)) * alpha)
    assert rounds == math.ceil(math.log2(size))
    assert got.messages == size - 1


def test_large_messages_order_the_broadcasts_as_the_engine_counts_do():
    """Bandwidth only, one core per rank: the engine's store-and-forward time and the model
    agree that scatter + allgather beats the binomial tree, which beats the root sending
    everything itself."""
    size, n = 8, 1 << 20
    order_model, order_engine = [], []
    for name in ("linear", "binomial", "scatter_ring_allgather"):
        algo = registry.get("bcast", name)
        model = simulate(size, steps_of("bcast", name, size, n), costs(0.0, 1e-9, whole=n))
        steps = [algo.steps(r, size, 0, n) for r in range(size)]
        payloads = [bytes(n)] + [None] * (size - 1)
        engine = engine_simulate(steps, payloads=payloads, alpha=0.0, beta=1e-9)
        order_model.append((model.seconds, name))
        order_engine.append((engine.time, name))
    assert [n for _, n in sorted(order_model)] == [n for _, n in sorted(order_engine)]
    assert sorted(order_model)[0][1] == "scatter_ring_allgather"


@pytest.mark.parametrize(
    ("collective", "name", "size"),
    [
        ("allreduce", "ring", 8),
        ("allreduce", "ring", 12),
        ("allgather", "ring", 9),
        ("allgather", "bruck", 8),
        ("barrier", "dissemination", 11),
        ("alltoall", "pairwise", 6),
        ("allreduce", "recursive_doubling", 16),
    ],
)
@pytest.mark.parametrize("cores", [0, 4])
def test_following_rank_0_of_a_symmetric_schedule_gives_the_full_simulation(
    collective, name, size, cores
):
    steps = steps_of(collective, name, size, 4096)
    c = costs(alpha=3e-6, beta=1e-9, overhead=2e-6)
    full = simulate(size, steps, c, 0)
    symmetry = "xor" if name == "recursive_doubling" else "rotation"
    others = [(r, steps(r)) for r in (1, size - 1)]
    short = simulate_symmetric(size, steps(0), c, cores, symmetry, others)
    assert short.messages == full.messages
    if cores:  # at least all the work over the cores; never less than the critical path
        assert short.seconds >= full.seconds
    else:
        assert short.seconds == pytest.approx(full.seconds)


def test_a_schedule_that_is_not_symmetric_is_refused():
    steps = steps_of("bcast", "binomial", 8)
    with pytest.raises(ScheduleError, match="not rank 0's"):
        simulate_symmetric(8, steps(0), costs(), 0, "rotation", [(1, steps(1))])


def test_ranks_beyond_the_cores_queue_for_them():
    """Eight ranks that only pay their overhead: on 2 cores it takes 4 overheads, on 1
    core 8, with a core each 1."""
    c = costs(overhead=1.0)
    for cores, expected in ((2, 4.0), (1, 8.0), (0, 1.0), (8, 1.0)):
        assert simulate(8, lambda r: [], c, cores).seconds == pytest.approx(expected)


def test_a_receive_whose_message_is_never_sent_is_reported():
    def steps(rank):
        return [Recv(1)] if rank == 0 else []

    with pytest.raises(ScheduleError, match="rank 0 waits for a message from rank 1"):
        simulate(2, steps, costs())


def test_a_pipelined_receive_ends_one_chunk_after_its_send():
    """A large message is copied out while it is copied in: the receiver ends a chunk's
    copy after the sender, not a whole message later."""
    n, beta = 10_000.0, 1.0

    def steps(rank):
        return [Send(1, 0, int(n))] if rank == 0 else [Recv(0, 0, int(n))]

    got = simulate(2, steps, costs(alpha=0.0, beta=beta, chunk=100.0)).seconds
    assert got == pytest.approx(n * beta + 100.0 * beta)


def test_lateness_follows_the_back_off_of_transports_wait():
    window = 2e-4
    assert lateness(window / 2, window, 0.0) == 0.0
    assert lateness(window + FIRST_SLEEP / 2, window, 0.0) == pytest.approx(FIRST_SLEEP / 2)
    # long waits end on a sleep of MAX_SLEEP: never later than that (plus the extra)
    for wait in (0.01, 0.1, 1.0):
        assert 0 <= lateness(wait, window, 5e-5) <= MAX_SLEEP + 5e-5
