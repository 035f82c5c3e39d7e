"""calibrate's pieces that need no ranks: the cache size from sysfs, the rank count of the
steal fit."""

from __future__ import annotations

from dataclasses import replace

import pytest

from treecast.algorithms import registry
from treecast.bench.calibrate import cache_bytes, fit_steal, steal_ranks
from treecast.model.machine import Machine
from treecast.model.predict import predict_one


def _cache(root, entry, size):
    (root / entry).mkdir()
    (root / entry / "size").write_text(f"{size}\n")


def test_the_cache_size_is_the_largest_index_entry_and_other_entries_are_ignored(tmp_path):
    for i, size in enumerate(("32K", "32K", "1024K", "36M")):
        _cache(tmp_path, f"index{i}", size)
    (tmp_path / "uevent").write_text("")  # a file, as sysfs has: not a cache
    (tmp_path / "power").mkdir()  # a directory without a size
    assert cache_bytes(str(tmp_path)) == 36 << 20


def test_the_cache_size_falls_back_to_16_mib(tmp_path):
    assert cache_bytes(str(tmp_path / "none")) == 16 << 20
    assert cache_bytes(str(tmp_path)) == 16 << 20  # no index entry
    _cache(tmp_path, "index0", "lots")
    assert cache_bytes(str(tmp_path)) == 16 << 20


def test_an_unreadable_cache_entry_is_passed_over(tmp_path):
    _cache(tmp_path, "index0", "48K")
    (tmp_path / "index1").mkdir()  # no size
    _cache(tmp_path, "index2", "??")
    _cache(tmp_path, "index3", "2048K")
    assert cache_bytes(str(tmp_path)) == 2 << 20


@pytest.mark.parametrize(
    ("cores", "ranks"),
    [(1, 3), (2, 6), (8, 24), (21, 63), (22, 64), (32, 64), (40, 64), (63, 65), (64, 66)],
)
def test_the_steal_fit_runs_three_ranks_per_core_up_to_64_and_always_two_more_than_cores(
    cores, ranks
):
    assert steal_ranks(cores) == ranks


def _times(truth, size):
    results = []
    for collective, algo, nbytes in (("bcast", "binomial", 8), ("allreduce", "ring", 1 << 20)):
        got = predict_one(registry.get(collective, algo), size, nbytes, truth)
        assert not isinstance(got, str)
        results.append(
            {"collective": collective, "algorithm": algo, "bytes": nbytes, "form": "buffer"}
            | {"seconds": got.seconds}
        )
    return results


def test_a_steal_the_times_cannot_see_keeps_the_prior():
    """65 ranks on 63 cores stretch work by 65/63 whatever the steal beyond 0.03: the fit
    cannot say 0.05 rather than 0.8, so the prior stands."""
    truth = Machine(cores=63, steal=0.8)
    assert fit_steal(replace(truth, steal=0.5), _times(truth, 65), 65) == 0.5
    none = Machine(cores=63, steal=0.0)
    assert fit_steal(replace(none, steal=0.5), _times(none, 65), 65) == 0.0


def test_a_steal_at_the_edge_of_what_the_times_show_is_a_lower_bound():
    truth = Machine(cores=2, steal=2.5)  # 6 ranks on 2 cores: no more than 3 times slower
    assert fit_steal(replace(truth, steal=0.8), _times(truth, 6), 6) == 2.0
    assert fit_steal(replace(truth, steal=2.6), _times(truth, 6), 6) == 2.6
    inside = Machine(cores=2, steal=1.2)
    assert fit_steal(replace(inside, steal=0.8), _times(inside, 6), 6) == pytest.approx(1.2)
