"""Property tests: any algorithm, size, root and count gives the NumPy answer, and any
reduction that is not commutative-only keeps rank order."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from simcheck import EVERY, REDUCTIONS, check, check_order, usable

from treecast.algorithms.registry import Algorithm

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def runs(draw: st.DrawFn, algos: list[Algorithm]) -> tuple[Algorithm, int, int]:
    algo = draw(st.sampled_from(algos))
    size = draw(st.integers(1, 24).filter(lambda n: usable(algo, n)))
    root = draw(st.integers(0, size - 1))
    return algo, size, root


@SETTINGS
@given(
    run=runs(EVERY),
    count=st.integers(0, 70),
    dtype=st.sampled_from([np.int8, np.int32, np.uint16, np.float32, np.float64]),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_run_matches_numpy(
    run: tuple[Algorithm, int, int], count: int, dtype: type, seed: int
) -> None:
    algo, size, root = run
    check(algo, size, root, count, dtype, np.random.default_rng(seed))


@SETTINGS
@given(
    run=runs([a for a in EVERY if a.collective in REDUCTIONS and not a.commutative_only]),
    nbytes=st.one_of(st.just(-1), st.integers(0, 600_000)),
)
def test_non_commutative_reductions_keep_rank_order(
    run: tuple[Algorithm, int, int], nbytes: int
) -> None:
    algo, size, root = run
    if algo.buffer_only:
        nbytes = max(nbytes, 0)
    check_order(algo, size, root, nbytes, commutative=False)
