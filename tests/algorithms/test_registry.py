"""The registry's interface: lookup, restrictions, safe choices, documentation."""

from __future__ import annotations

import pytest
from simcheck import EVERY, check, usable

from treecast.algorithms import registry
from treecast.algorithms.registry import ALGORITHMS, SAFE, get
from treecast.errors import InvalidArgumentError

COLLECTIVES = {
    "barrier",
    "bcast",
    "gather",
    "scatter",
    "allgather",
    "alltoall",
    "reduce",
    "allreduce",
    "reduce_scatter",
    "reduce_scatter_block",
    "scan",
    "exscan",
}


def test_every_collective_has_algorithms_and_a_safe_one() -> None:
    assert set(ALGORITHMS) == COLLECTIVES == set(SAFE)
    for collective, family in ALGORITHMS.items():
        for name, algo in family.items():
            assert (algo.collective, algo.name) == (collective, name)
        safe = get(collective, SAFE[collective])
        for size in (1, 2, 3, 6, 7, 12):
            assert safe.unusable(size, -1, False, False) is None, (collective, size)
            assert safe.chunks(size, -1) == 1


def test_the_existing_bcast_algorithms_are_registered() -> None:
    from treecast.algorithms import bcast

    assert get("bcast", "binomial").schedule is bcast.binomial
    assert get("bcast", "pipelined_chain").schedule is bcast.pipelined_chain
    assert get("bcast", "pipelined_binary").schedule is bcast.pipelined_binary
    assert get("bcast", "pipelined_chain").steps(1, 3, 0, 600) == tuple(
        bcast.pipelined_chain(1, 3, 0, 600, bcast.SEGMENT_BYTES)
    )


def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(InvalidArgumentError, match=r"unknown allreduce algorithm 'nope'.*ring"):
        get("allreduce", "nope")
    with pytest.raises(InvalidArgumentError, match=r"unknown collective 'allgatherv'.*bcast"):
        get("allgatherv", "ring")
    with pytest.raises(ValueError):
        get("bcast", "fastest")


@pytest.mark.parametrize("algo", EVERY, ids=lambda a: f"{a.collective}-{a.name}")
def test_every_schedule_documents_pattern_cost_and_restrictions(algo: registry.Algorithm) -> None:
    doc = algo.schedule.__doc__ or ""
    assert doc.strip(), algo.name
    assert "Cost" in doc, f"{algo.collective}/{algo.name}: no cost in the docstring"
    assert "::" in doc, f"{algo.collective}/{algo.name}: no picture in the docstring"
    assert algo.summary and "\n" not in algo.summary
    flags = (algo.pof2_only, algo.commutative_only, algo.buffer_only, algo.needs_nodes)
    assert bool(algo.restriction) == any(flags), algo.name


def test_restrictions_are_reported_in_words() -> None:
    rd = get("allgather", "recursive_doubling")
    assert rd.unusable(6, 100, True, True) == "needs a power-of-two size, got 6"
    assert rd.unusable(8, 100, True, True) is None
    assert rd.unusable(1, 100, True, True) is None
    ring = get("allreduce", "ring")
    assert ring.unusable(6, 100, False, True) == "needs a commutative operator"
    assert "buffer" in (ring.unusable(6, -1, True, False) or "")
    assert "buffer" in (ring.unusable(6, -1, True, True) or "")
    halving = get("reduce_scatter", "recursive_halving")
    assert "power-of-two" in (halving.unusable(12, 8, True, True) or "")
    assert halving.unusable(4, 8, False, True) == "needs a commutative operator"
    assert get("reduce", "binomial").unusable(6, -1, False, False) is None
    srd = get("bcast", "scatter_recursive_doubling_allgather")
    assert srd.unusable(12, 1 << 20, True, True) == "needs a power-of-two size, got 12"
    assert srd.unusable(16, -1, True, False) is not None


def test_flags_match_what_the_schedules_need() -> None:
    """An algorithm marked pof2_only refuses other sizes (a schedule raises rather than
    running wrong); every other algorithm runs for every size."""
    for algo in EVERY:
        if algo.pof2_only:
            with pytest.raises(ValueError, match="power-of-two"):
                algo.steps(0, 6, 0, 100)
        else:
            for size in (3, 6, 7):
                assert usable(algo, size)
                check(algo, size, size - 1, 3)


def test_steps_are_cached_tuples() -> None:
    algo = get("allreduce", "rabenseifner")
    first = algo.steps(3, 7, 0, 800)
    assert isinstance(first, tuple)
    assert algo.steps(3, 7, 0, 800) is first
