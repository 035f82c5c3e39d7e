"""Rule tables from grids of times: select() gives the tuned choices, restrictions get
their conditions and a fallback, `treecast algorithms --rules` shows the changes, and the
calibration's fits recover the figures that made synthetic measurements."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest

from treecast.algorithms import registry
from treecast.bench.calibrate import fit_pingpong, fit_steal
from treecast.cli import main
from treecast.model.machine import Machine
from treecast.model.predict import predict_one
from treecast.model.tuning import (
    NODE_MEMORY,
    chain,
    effective,
    form_rules,
    packaged_table,
    ranked,
    tuned_table,
)
from treecast.selection import rules
from treecast.selection.rules import load_rules, select

SIZES = (8, 512, 32768, 1 << 21)
NS = (2, 3, 4, 8)


def best_by_size(n: int, nbytes: int) -> dict[str, float]:
    """A grid where the tree wins small sizes, scatter-ring mid sizes, the pof2-only
    algorithm at powers of two, and the node-level one the largest."""
    times = {"binomial": 1.0, "linear": 3.0, "scatter_ring_allgather": 2.0, "shm_one_write": 9.0}
    if nbytes >= 32768:
        times["scatter_ring_allgather"] = 0.5
    if n & (n - 1) == 0:
        times["scatter_recursive_doubling_allgather"] = 0.4 if nbytes >= 32768 else 5.0
    if nbytes >= 1 << 21:
        times["shm_one_write"] = 0.1
    return times


def grid() -> dict[tuple[int, int], dict[str, float]]:
    return {(n, s): best_by_size(n, s) for n in NS for s in SIZES}


def keep_nothing(n: int, nbytes: int) -> str:
    return "nothing"


def test_select_with_the_tuned_table_runs_the_best_algorithm_everywhere(tmp_path, monkeypatch):
    table = tuned_table({("bcast", "buffer"): grid()}, packaged_table())
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(table))
    monkeypatch.setenv("TREECAST_RULES", str(path))
    rules.clear_caches()
    try:
        for (n, s), times in grid().items():
            best = min(times, key=times.__getitem__)
            # the current table's choice stays where it is within the margin of the best
            now = effective(packaged_table(), "bcast", n, s, "buffer", NODE_MEMORY)
            expect = now if now in times and times[now] <= 1.1 * times[best] else best
            assert select("bcast", n, s, capabilities=NODE_MEMORY).name == expect, (n, s)
    finally:
        monkeypatch.delenv("TREECAST_RULES")
        rules.clear_caches()
    assert load_rules(str(path))["bcast"][0] == {"if": {"nodes_ge": 2}, "use": "two_level"}


def test_a_restricted_best_gets_its_condition_and_a_fallback():
    rules_ = form_rules("bcast", "buffer", grid(), keep_nothing)
    table = {**packaged_table(), "bcast": rules_}
    # n = 5..7 (band of 4 up to 8): the pof2-only one at 4 only; 5 falls to scatter-ring
    assert effective(table, "bcast", 4, 32768, "buffer", NODE_MEMORY).startswith("scatter_rec")
    assert effective(table, "bcast", 5, 32768, "buffer", NODE_MEMORY) == "scatter_ring_allgather"
    # node memory missing (an MPI transport): the rule is skipped, the next one runs
    assert effective(table, "bcast", 8, 1 << 21, "buffer", NODE_MEMORY) == "shm_one_write"
    no_node = effective(table, "bcast", 8, 1 << 21, "buffer", frozenset())
    assert no_node == "scatter_recursive_doubling_allgather"


def test_a_chain_stops_at_the_first_algorithm_that_always_runs():
    links = chain("allreduce", ["shm_reduce", "ring", "rabenseifner", "binomial_never"], False)
    assert links == [
        ("shm_reduce", {}),
        ("ring", {"commutative": True}),
        ("rabenseifner", {}),
    ]
    assert chain("bcast", ["shm_one_write"], False)[-1] == (registry.SAFE["bcast"], {})


def test_the_current_choice_stays_unless_another_is_clearly_faster():
    times = {"a": 1.0, "b": 1.05, "c": 2.0}
    assert ranked(times, "b")[0] == "b"
    assert ranked(times, "c")[0] == "a"
    assert ranked(times, "missing") == ["a", "b", "c"]


def test_algorithms_rules_shows_what_a_table_changes(capsys, tmp_path):
    same = tmp_path / "same.json"
    same.write_text(json.dumps(packaged_table()))
    assert main(["algorithms", "bcast", "--rules", str(same)]) == 0
    assert "bcast: no difference(s)" in capsys.readouterr().out
    changed = {**packaged_table(), "bcast": [{"use": "linear"}]}
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(changed))
    assert main(["algorithms", "bcast", "--rules", str(path)]) == 0
    out = capsys.readouterr().out
    assert "n=8    buffer          8 B: binomial -> linear" in out
    assert "n=2    object      objects: binomial -> linear" in out
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"bcast": [{"use": "psychic"}]}))
    assert main(["algorithms", "--rules", str(bad)]) == 2
    assert "unknown bcast algorithm 'psychic'" in capsys.readouterr().err


def test_tune_writes_a_table_that_loads_and_says_how_to_use_it(tmp_path):
    out = tmp_path / "rules.json"
    model = tmp_path / "model.json"
    model.write_text(json.dumps({"format": 1, **Machine(cores=2).__dict__}))
    options = ["--out", str(out), "--model", str(model), "--collectives", "bcast,allreduce"]
    options += ["--measure-n", "2", "--measure-max-bytes", "64", "--max-n", "8"]
    options += ["--budget", "0.005", "--sizes", "8,64,64K,8M"]
    run = subprocess.run(
        [sys.executable, "-m", "treecast", "tune", *options],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr
    assert f"TREECAST_RULES={out}" in run.stdout
    table = load_rules(str(out))
    assert table["gather"] == packaged_table()["gather"]  # not tuned: kept
    assert table["bcast"][0] == {"if": {"nodes_ge": 2}, "use": "two_level"}
    assert "measured on 2 ranks" in json.loads(out.read_text())["_about"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tune", "--collectives", "bcast,gossip"], "unknown collective(s) ['gossip']"),
        (["tune", "--budget", "0"], "--budget must be > 0"),
        (["tune", "--measure-n", "0"], "whole number >= 1, got 0"),
    ],
)
def test_tune_refuses_bad_options(capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_the_ping_pong_fit_recovers_alpha_and_both_betas():
    m = Machine(cache_bytes=16 << 20)
    alpha, beta, beta_mem, chunk = 6e-6, 1e-10, 3e-10, 256 << 10
    results = []
    for b in (8, 64 << 10, 1 << 20, 8 << 20, 64 << 20):
        per = beta if 2 * b <= m.cache_bytes else beta_mem
        half = alpha + (b + min(b, chunk)) * per if b > 8 else alpha
        results.append({"collective": "pingpong", "bytes": b, "seconds": 2 * half})
    got = fit_pingpong(results, m)
    assert got.alpha == pytest.approx(alpha)
    assert got.beta == pytest.approx(beta, rel=1e-3)
    assert got.beta_mem == pytest.approx(beta_mem, rel=1e-3)


def test_the_steal_fit_recovers_the_steal_that_made_the_times():
    truth = Machine(cores=2, steal=0.7)
    results = []
    for collective, algo, nbytes in (("bcast", "binomial", 8), ("allreduce", "ring", 1 << 20)):
        got = predict_one(registry.get(collective, algo), 6, nbytes, truth)
        assert not isinstance(got, str)
        results.append(
            {"collective": collective, "algorithm": algo, "bytes": nbytes, "form": "buffer"}
            | {"seconds": got.seconds}
        )
    assert fit_steal(replace(truth, steal=0.0), results, 6) == pytest.approx(0.7)
