"""The soak command (benchmarks/soak.py): a short run ends clean, bad arguments are refused,
and a job's leftover segments are counted and removed (only that job's)."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"


def _summary(out: str) -> dict[str, int]:
    line = [ln for ln in out.splitlines() if ln.startswith("soak: jobs ")][-1]
    return {k: int(v) for k, v in re.findall(r"(\w+) (\d+)", line.split(" median ")[0])}


@pytest.mark.timeout(180)
def test_a_short_soak_runs_jobs_with_no_hang_leak_or_wrong_result():
    proc = subprocess.run(
        [sys.executable, str(SOAK), "--minutes", "0.3", "-n", "3", "--seed", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    got = _summary(proc.stdout)
    assert got["jobs"] >= 1, proc.stdout
    assert got["hangs"] == got["leaks"] == got["wrong"] == got["failed"] == 0, proc.stdout
    assert got["killed"] <= got["jobs"]


@pytest.mark.timeout(60)
def test_a_negative_duration_is_refused_with_status_2():
    proc = subprocess.run(
        [sys.executable, str(SOAK), "--minutes", "-1"], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 2
    assert "--minutes: expected a number > 0, got -1" in proc.stderr, proc.stderr
    assert proc.stdout == ""


def _soak_module():
    spec = importlib.util.spec_from_file_location("soak", SOAK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["soak"] = module  # (dataclasses look their module up)
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["soak"]
    return module


def test_a_jobs_leftover_segments_are_leaks_and_go_but_not_another_jobs(tmp_path):
    soak = _soak_module()
    mine, other = "00soaktest00mine", "00soaktest0other"
    paths = [Path(soak.SHM_DIR, f"treecast-{job}-world") for job in (mine, other)]
    for path in paths:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
    try:
        job = soak.Job(number=0, seed=1, kill=False, keep_going=False, directory=str(tmp_path))
        job.token = mine
        assert soak._leaks(job) == [f"treecast-{mine}-world"]
        assert not paths[0].exists() and paths[1].exists()
        assert soak._leaks(job) == []
    finally:
        for path in paths:
            path.unlink(missing_ok=True)
