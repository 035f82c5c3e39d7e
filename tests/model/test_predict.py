"""Predictions: ranked, fast at 100,000 ranks, refusing bad calls; the stored figures."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from treecast.cli import main
from treecast.errors import InvalidArgumentError
from treecast.model import machine as stored
from treecast.model.machine import Machine
from treecast.model.predict import node_allreduce, node_bcast, predict

ONE_CORE_EACH = Machine(cores=0)


def test_predictions_come_best_first_with_every_applicable_algorithm():
    got = predict("bcast", 8, 1 << 20, ONE_CORE_EACH)
    seconds = [p.seconds for p in got.predictions]
    assert seconds == sorted(seconds) and all(s > 0 for s in seconds)
    names = {p.algorithm for p in got.predictions}
    assert {"binomial", "linear", "shm_one_write", "scatter_ring_allgather"} <= names
    skipped = dict(got.skipped)
    assert "spans several nodes" in skipped["two_level"]
    odd = dict(predict("bcast", 7, 1 << 20, ONE_CORE_EACH).skipped)
    assert "power-of-two" in odd["scatter_recursive_doubling_allgather"]


def test_the_object_form_skips_buffer_only_and_node_level_algorithms():
    got = predict("allreduce", 4, 4096, ONE_CORE_EACH, form="object")
    assert {p.algorithm for p in got.predictions} == {"recursive_doubling", "reduce_bcast"}
    skipped = dict(got.skipped)
    assert "commutative" in skipped["ring"]  # objects combine in rank order
    assert "buffer" in skipped["shm_reduce"]


def test_large_payloads_make_the_one_write_broadcast_win_and_small_ones_the_tree():
    big = predict("bcast", 8, 64 << 20, ONE_CORE_EACH).predictions[0].algorithm
    assert big == "shm_one_write"
    linear = next(
        p for p in predict("bcast", 64, 8, ONE_CORE_EACH).predictions if p.algorithm == "linear"
    )
    binomial = next(
        p for p in predict("bcast", 64, 8, ONE_CORE_EACH).predictions if p.algorithm == "binomial"
    )
    assert binomial.seconds < linear.seconds


def test_sharing_cores_slows_everything_down():
    m = Machine(cores=2)
    for nbytes in (8, 1 << 20):
        alone = {
            p.algorithm: p.seconds
            for p in predict("allreduce", 8, nbytes, replace(m, cores=0)).predictions
        }
        shared = {p.algorithm: p.seconds for p in predict("allreduce", 8, nbytes, m).predictions}
        assert all(shared[a] > alone[a] for a in alone)
    assert node_bcast(m, 8, 1 << 20) > node_bcast(replace(m, cores=8), 8, 1 << 20)
    assert node_allreduce(m, 8, 1 << 20) > node_allreduce(replace(m, cores=8), 8, 1 << 20)


def test_a_hundred_thousand_ranks_answer_in_seconds():
    t0 = time.perf_counter()
    got = predict("bcast", 100_000, 1 << 20, Machine(cores=2))
    assert time.perf_counter() - t0 < 30
    assert {"binomial", "shm_one_write"} <= {p.algorithm for p in got.predictions}
    skipped = dict(got.skipped)
    assert "budget" in skipped["scatter_ring_allgather"]


def test_a_ring_at_scale_is_followed_on_rank_0():
    got = predict("allreduce", 20_000, 1 << 20, ONE_CORE_EACH, max_steps=100_000)
    ring = next(p for p in got.predictions if p.algorithm == "ring")
    assert "symmetric" in ring.how and ring.messages == 2 * 19_999 * 20_000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("gossip", 4, 8), "unknown collective 'gossip'"),
        (("bcast", 0, 8), "int >= 1, got 0"),
        (("bcast", 4, -1), "int >= 0, got -1"),
    ],
)
def test_bad_calls_are_refused_naming_the_value(args, message):
    with pytest.raises(InvalidArgumentError, match=message):
        predict(*args, ONE_CORE_EACH)


def test_a_form_the_collective_lacks_is_refused():
    with pytest.raises(InvalidArgumentError, match="reduce_scatter has no object form"):
        predict("reduce_scatter", 4, 64, ONE_CORE_EACH, form="object")
    with pytest.raises(InvalidArgumentError, match="form must be one of"):
        predict("bcast", 4, 64, ONE_CORE_EACH, form="pickle")


def test_the_model_file_round_trips_and_bad_files_are_named(tmp_path):
    path = str(tmp_path / "m.json")
    m = Machine(alpha=1e-5, cores=3, note="test", overheads={"bcast/buffer": 2e-6})
    stored.save(m, path, measured=[{"in_process": {}}])
    assert stored.load(path) == (m, True)
    assert stored.load(str(tmp_path / "none.json")) == (stored.DEFAULTS, False)
    data = json.loads((tmp_path / "m.json").read_text())
    data["beta"] = -1
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(InvalidArgumentError, match="beta must be a finite number >= 0"):
        stored.load(str(tmp_path / "bad.json"))
    (tmp_path / "text.json").write_text("alpha = 1")
    with pytest.raises(InvalidArgumentError, match="not JSON"):
        stored.load(str(tmp_path / "text.json"))


def test_the_model_lives_in_the_xdg_config_dir_unless_told(monkeypatch, tmp_path):
    monkeypatch.delenv("TREECAST_MODEL", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert stored.default_path() == str(tmp_path / "treecast" / "model.json")
    monkeypatch.setenv("TREECAST_MODEL", "/somewhere/m.json")
    assert stored.default_path() == "/somewhere/m.json"


def test_predict_command_prints_the_ranking_and_says_where_figures_come_from(
    capsys, monkeypatch, tmp_path
):
    monkeypatch.setenv("TREECAST_MODEL", str(tmp_path / "none.json"))
    assert main(["predict", "bcast", "-n", "8", "--bytes", "64K"]) == 0
    out = capsys.readouterr().out
    assert "model: defaults" in out and "treecast calibrate" in out
    lines = [line.split() for line in out.splitlines() if line.startswith("  ")][1:]
    assert lines[0][0] in {"binomial", "shm_one_write", "knomial", "linear"}
    assert "rule table's choice" in out
    assert "skipped two_level" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["predict", "bcast", "-n", "4", "--bytes", "1X"],
            "'1X' is not a size; expected a number of bytes",
        ),
        (["predict", "bcast", "-n", "0"], "int >= 1, got 0"),
        (["predict", "gossip", "-n", "4"], "unknown collective 'gossip'"),
    ],
)
def test_predict_command_refuses_bad_input(capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_calibrate_quick_writes_a_model_that_predict_uses(tmp_path):
    path = tmp_path / "model.json"
    run = subprocess.run(
        [sys.executable, "-m", "treecast", "calibrate", "--quick", "--out", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    machine, found = stored.load(str(path))
    assert found and machine.alpha > 0 and machine.beta > 0 and "quick" in machine.note
    assert machine.overheads["allreduce/buffer"] >= 0 and len(machine.overheads) > 10
    measured = json.loads(path.read_text())["measured"]
    assert any(m.get("collective") == "pingpong" for m in measured)
    out = subprocess.run(
        [sys.executable, "-m", "treecast", "predict", "allreduce", "-n", "4", "--model", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert f"model: {path}" in out
