"""The rule table, forced algorithms and restriction fallbacks."""

import json
import logging

import pytest

from treecast.algorithms import registry
from treecast.errors import InvalidArgumentError
from treecast.selection import rules
from treecast.selection.rules import load_rules, select


def test_default_table_is_valid_and_covers_every_collective():
    table = load_rules()
    assert set(table) == set(registry.ALGORITHMS)
    for collective, entries in table.items():
        assert entries[-1].get("if") is None, f"{collective}: the last rule must be unconditional"


@pytest.mark.parametrize(
    ("collective", "size", "nbytes", "expected"),
    [
        ("bcast", 4, 100, "binomial"),
        ("bcast", 16, 20_000, "scatter_recursive_doubling_allgather"),
        ("bcast", 12, 20_000, "scatter_ring_allgather"),
        ("bcast", 2, 4096, "shm_one_write"),
        ("bcast", 12, 1 << 20, "shm_one_write"),
        ("allreduce", 4, 8, "recursive_doubling"),
        ("allreduce", 4, 16384, "rabenseifner"),
        ("allreduce", 4, 1 << 20, "shm_reduce"),
        ("allreduce", 2, 8, "shm_reduce"),
        ("allgather", 4, 1000, "recursive_doubling"),
        ("allgather", 5, 1000, "bruck"),
        ("allgather", 5, 1 << 20, "ring"),
        ("barrier", 7, 0, "dissemination"),
    ],
)
def test_rules_follow_mpich_switch_points(collective, size, nbytes, expected):
    assert select(collective, size, nbytes).name == expected


def test_non_commutative_operators_never_get_commutative_only_algorithms():
    for collective in ("allreduce", "reduce", "reduce_scatter", "reduce_scatter_block"):
        for size in (2, 3, 4, 8, 13):
            for nbytes in (8, 4096, 1 << 20):
                algo = select(collective, size, nbytes, commutative=False)
                assert not algo.commutative_only, (collective, size, nbytes, algo.name)


def test_forced_algorithm_per_call_and_by_environment(monkeypatch):
    assert select("allreduce", 4, 8, forced="ring").name == "ring"
    monkeypatch.setenv("TREECAST_ALLREDUCE_ALGORITHM", "reduce_bcast")
    rules.clear_caches()
    try:
        assert select("allreduce", 4, 8).name == "reduce_bcast"
        assert select("allreduce", 4, 8, forced="ring").name == "ring"
    finally:
        monkeypatch.delenv("TREECAST_ALLREDUCE_ALGORITHM")
        rules.clear_caches()


def test_forced_algorithm_whose_restriction_fails_falls_back_and_logs(caplog):
    with caplog.at_level(logging.DEBUG, logger="treecast.selection"):
        algo = select("allgather", 6, 100, forced="recursive_doubling")
    assert algo.name == registry.SAFE["allgather"]
    assert "recursive_doubling" in caplog.text and "6" in caplog.text
    assert (
        select("allreduce", 4, 1 << 20, commutative=False, forced="ring").name
        == (registry.SAFE["allreduce"])
    )


def test_object_payloads_never_get_chunked_algorithms():
    for name in registry.ALGORITHMS["allreduce"]:
        algo = select("allreduce", 4, -1, buffer=False, forced=name)
        assert algo.chunks(4, -1) == 1


def test_unknown_names_are_rejected_with_the_known_ones():
    with pytest.raises(InvalidArgumentError, match="telepathy") as info:
        select("bcast", 4, 8, forced="telepathy")
    assert "binomial" in str(info.value)
    with pytest.raises(InvalidArgumentError, match="teleport"):
        registry.get("teleport", "binomial")


def test_custom_table_from_file(tmp_path, monkeypatch):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"allreduce": [{"use": "ring"}]}))
    monkeypatch.setenv("TREECAST_RULES", str(path))
    rules.clear_caches()
    try:
        assert select("allreduce", 4, 8).name == "ring"
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"allreduce": [{"if": {"colour": 1}, "use": "ring"}]}))
        with pytest.raises(InvalidArgumentError, match="colour"):
            rules.load_rules(str(bad))
    finally:
        rules.clear_caches()
