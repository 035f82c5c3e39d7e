"""examples/bcast_demo.py (the README quickstart's demo) says what each broadcast runs: the
algorithms comm.algorithm_for gives, each rank's place in the tree, the real core count."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from treecast.plans import Caller
from treecast.routes import route
from treecast.topology import binomial_tree
from treecast.transports.shm import ShmTransport

pytestmark = pytest.mark.timeout(150)

DEMO = Path(__file__).resolve().parents[2] / "examples" / "bcast_demo.py"


def _demo(n: int, size: str) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "treecast", "run", "-n", str(n), sys.executable, str(DEMO), size],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_the_demo_names_each_broadcasts_algorithm_and_each_ranks_place():
    n, nbytes = 4, 1 << 20
    lines = _demo(n, "1M")
    cores = len(os.sched_getaffinity(0))
    assert lines[0] == f"treecast 0.1.0: {n} ranks on {cores} cores, root 0"
    caps = ShmTransport.capabilities
    expected = {
        "A": route(Caller(0, n, "bcast", caps)),
        "B": route(Caller(0, n, "bcast", caps), nbytes),
        "C": route(Caller(0, n, "Bcast", caps), nbytes),
    }
    # on one node: a tree for the small object, the node-level path for the large bytes
    assert [s.algorithm.name for s in expected["B"].stages] == ["binomial", "shm_one_write"]
    text = "\n".join(lines)
    for key, what in (("A", "small object"), ("B", "1 MiB array"), ("C", "1 MiB buffer")):
        first = next(line for line in lines if line.startswith(f"  {key}  "))
        assert what in first
        stages = expected[key].stages
        assert f" {stages[0].algorithm.name} ({stages[0].carries}): " in first
        for stage in stages[1:]:
            assert f"then {stage.algorithm.name} ({stage.carries}): " in text
    assert "shm_one_write, the node-level path: root writes once into node shared memory" in text
    assert "binomial tree from root 0 (A, B):\n" + binomial_tree(n, 0).render() in text
    rows = {
        int(m.group(1)): m for line in lines if (m := re.match(r"\s+(\d)\s+(\S+)  (.+?)  ", line))
    }
    tree = binomial_tree(n, 0)
    for rank in range(n):
        parent = tree.parents[rank]
        assert rows[rank].group(2) == ("-" if parent is None else str(parent))
        assert rows[rank].group(3).strip() == str(list(tree.children[rank]) or "-")
    assert lines[-1].startswith(f"all {n} ranks received rank 0's data")
    assert "2 cores shared" not in text


def test_the_demo_shows_another_tree_when_one_is_forced():
    env_lines = subprocess.run(
        [sys.executable, "-m", "treecast", "run", "-n", "3", sys.executable, str(DEMO), "64K"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TREECAST_BCAST_ALGORITHM": "pipelined_chain"},
    )
    assert env_lines.returncode == 0, env_lines.stderr
    out = env_lines.stdout
    assert "C  Bcast of a 64 KiB buffer  pipelined_chain (the buffer): a tree" in out
    assert "pipelined_chain tree from root 0 (C):\n0\n`-- 1\n    `-- 2" in out
    assert "shm_one_write" not in out  # a forced algorithm is what runs, also for B's array
