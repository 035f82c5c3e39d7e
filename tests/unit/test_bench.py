import csv
import json
import shutil
import subprocess
import sys

import pytest

from treecast.bench import size_range, summarize, table
from treecast.bench.worker import iterations


def test_sizes_parse_with_binary_suffixes():
    # each size as treecast.units.parse_size reads it (tests/unit/test_units.py)
    assert size_range("1MiB,2k") == [1 << 20, 2048]
    assert size_range("1:16") == [1, 2, 4, 8, 16]
    assert size_range("0:4") == [0, 1, 2, 4]
    assert size_range("8,1K,1M") == [8, 1024, 1 << 20]
    with pytest.raises(ValueError, match="'lots'"):
        size_range("1:lots")
    with pytest.raises(ValueError, match="empty"):
        size_range("1M:1K")
    with pytest.raises(ValueError, match="name no size"):
        size_range(" , ")


def test_iterations_shrink_with_size():
    small, _ = iterations(8)
    large, warm = iterations(64 << 20)
    assert small == 1000 and 5 <= large < small and warm >= 2


@pytest.mark.timeout(180)
@pytest.mark.parametrize("compare", [False, True])
def test_bench_end_to_end_writes_table_csv_and_json(tmp_path, compare):
    if compare and shutil.which("mpiexec") is None:
        pytest.skip("mpiexec (mpich) is not installed")
    out_csv, out_json = tmp_path / "r.csv", tmp_path / "r.json"
    cmd = [
        sys.executable,
        "-m",
        "treecast",
        "bench",
        "-n",
        "2",
        "--op",
        "Bcast",
        "--sizes",
        "8,64K",
        "--csv",
        str(out_csv),
        "--json",
        str(out_json),
    ]
    if compare:
        cmd += ["--compare", "mpi4py", "--repeat", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=170)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Bcast, n = 2, root 0")  # no progress bar in a pipe
    assert "" not in proc.stdout.splitlines()
    rows = list(csv.DictReader(out_csv.open()))
    assert [int(r["bytes"]) for r in rows] == [8, 65536]
    assert all(float(r["treecast_s"]) > 0 for r in rows)
    runs = 2 if compare else 1
    assert all(len(r["treecast_runs_s"].split()) == runs for r in rows)  # each run's figure
    data = json.loads(out_json.read_text())
    assert data["op"] == "Bcast" and len(data["rows"]) == 2
    assert all((row["mpi4py_s"] is not None) == compare for row in data["rows"])
    assert data["repeat"] == runs
    for row in data["rows"]:
        assert len(row["treecast_runs_s"]) == len(row["memcpy_runs_s"]) == runs
        assert row["treecast_s"] == pytest.approx(sum(row["treecast_runs_s"]) / runs)
        if compare:
            assert len(row["mpi4py_runs_s"]) == 2
            assert row["ratio_min"] <= row["ratio"] <= row["ratio_max"]
    if compare:
        assert "median of 2 alternating runs" in proc.stdout and "ratio range" in proc.stdout


def test_summarize_takes_ratios_within_each_run_then_medians():
    runs = [
        {"treecast": [2.0, 10.0], "mpi4py": [4.0, 5.0], "memcpy": [1.0, 5.0]},
        {"treecast": [6.0, 30.0], "mpi4py": [3.0, 10.0], "memcpy": [2.0, 10.0]},
        {"treecast": [3.0, 20.0], "mpi4py": [6.0, 40.0], "memcpy": [1.0, 4.0]},
    ]
    first, second = summarize([8, 1024], runs)
    assert first["bytes"] == 8 and first["runs"] == 3
    assert first["treecast_s"] == 3.0 and first["mpi4py_s"] == 4.0 and first["memcpy_s"] == 1.0
    # per-run ratios 0.5, 2.0, 0.5: the median of those, not 3.0 / 4.0
    assert first["ratio"] == 0.5 and first["ratio_min"] == 0.5 and first["ratio_max"] == 2.0
    assert first["x_memcpy"] == 3.0  # 2, 3, 3
    assert second["ratio"] == 2.0 and second["ratio_min"] == 0.5 and second["ratio_max"] == 3.0
    assert second["x_memcpy"] == 3.0  # 2, 3, 5
    assert second["mpi4py_runs_s"] == [5.0, 10.0, 40.0]
    alone = summarize([8], [{"treecast": [1.0]}])[0]
    assert alone["mpi4py_s"] is None and alone["ratio"] is None and alone["x_memcpy"] is None


def test_the_table_prints_rows_without_a_ratio():
    # an anchor time of 0 (too fast to measure) leaves no ratio: a dash, not a crash
    rows = summarize([8, 1 << 20], [{"treecast": [1e-6, 1e-4], "mpi4py": [0.0, 2e-4]}] * 2)
    title, names, small, large = table("Bcast", rows, ranges=True)
    assert title == "Bcast" and "ratio range" in names
    assert small.split()[5:7] == ["-", "-"]  # after "<t> us  <t> us"
    assert large.split()[5:7] == ["0.50", "0.50-0.50"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sizes", "huge"], "'huge'"),
        (["-n", "3", "--op", "sendrecv"], "must be even"),
        (["--repeat", "0"], "--repeat must be at least 1, got 0"),
        (["--sizes", ","], "name no size"),
        (["--compare-op", "Bcast"], "--compare-op needs --compare mpi4py"),
        (["--nodes", "2"], "--nodes needs --launcher mpiexec"),
        (["-n", "2", "--launcher", "mpiexec", "--nodes", "3"], "--nodes must be between 1 and"),
    ],
)
def test_bench_rejects_bad_arguments(args, message):
    proc = subprocess.run(
        [sys.executable, "-m", "treecast", "bench", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and message in proc.stderr


@pytest.mark.timeout(180)
def test_bench_under_mpiexec_against_mpich_bcast(tmp_path):
    """treecast's ranks under mpiexec on two nodes (MPICH cliques), its object bcast side by
    side with MPICH's buffer Bcast of the same bytes."""
    out_json = tmp_path / "r.json"
    cmd = [sys.executable, "-m", "treecast", "bench", "-n", "4", "--launcher", "mpiexec"]
    cmd += ["--nodes", "2", "--op", "bcast", "--compare", "mpi4py", "--compare-op", "Bcast"]
    cmd += ["--sizes", "8,1M", "--json", str(out_json)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=170)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("bcast, n = 4, root 0, mpi4py runs Bcast, under mpiexec (2 node")
    rows = json.loads(out_json.read_text())["rows"]
    assert [r["bytes"] for r in rows] == [8, 1 << 20]
    assert all(r["treecast_s"] > 0 and r["mpi4py_s"] > 0 for r in rows)
