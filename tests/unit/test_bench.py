import csv
import json
import shutil
import subprocess
import sys

import pytest

from treecast.bench import parse_size, size_range
from treecast.bench.worker import iterations


def test_sizes_parse_with_binary_suffixes():
    assert parse_size("64M") == 64 << 20
    assert parse_size("1k") == 1024
    assert parse_size("7") == 7
    assert size_range("1:16") == [1, 2, 4, 8, 16]
    assert size_range("0:4") == [0, 1, 2, 4]
    assert size_range("8,1K,1M") == [8, 1024, 1 << 20]
    with pytest.raises(ValueError, match="'lots'"):
        parse_size("lots")
    with pytest.raises(ValueError, match="empty"):
        size_range("1M:1K")


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
        cmd += ["--compare", "mpi4py"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=170)
    assert proc.returncode == 0, proc.stderr
    assert "Bcast, n = 2, root 0" in proc.stdout
    rows = list(csv.DictReader(out_csv.open()))
    assert [int(r["bytes"]) for r in rows] == [8, 65536]
    assert all(float(r["treecast_s"]) > 0 for r in rows)
    data = json.loads(out_json.read_text())
    assert data["op"] == "Bcast" and len(data["rows"]) == 2
    assert all((row["mpi4py_s"] is not None) == compare for row in data["rows"])


def test_bench_rejects_bad_arguments():
    proc = subprocess.run(
        [sys.executable, "-m", "treecast", "bench", "--sizes", "huge"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "'huge'" in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "treecast", "bench", "-n", "3", "--op", "sendrecv"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "must be even" in proc.stderr
