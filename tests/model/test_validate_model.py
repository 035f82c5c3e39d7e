"""benchmarks/validate_model.py refuses what the model cannot describe before it starts
any rank."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "validate_model.py"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["--forms", "object", "--collectives", "reduce_scatter"],
            "reduce_scatter has no object form",
        ),
        (["--forms", "pickle"], "form must be one of"),
        (["--collectives", "gossip"], "unknown collective 'gossip'"),
        (["--n", "2,x"], "--n: expected rank counts such as 2,4,8, got '2,x'"),
        (["--n", "0"], "int >= 1, got 0"),
        (["--forms", ""], "must each name at least one"),
    ],
)
def test_validate_model_refuses_bad_calls_before_measuring(options, message, tmp_path):
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--n", "2", "--sizes", "8", *options],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TREECAST_MODEL": str(tmp_path / "none.json")},
    )
    assert run.returncode == 2, run.stderr
    assert message in run.stderr and "Traceback" not in run.stderr
    assert "cells" not in run.stderr  # no rank was started
