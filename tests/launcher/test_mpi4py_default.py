"""``import mpi4py`` in ranks of ``treecast run`` gives treecast's stand-in by default; the
installed mpi4py only on request, with a warning (it sees a world of 1 in every rank)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HELLO = """
from mpi4py import MPI
comm = MPI.COMM_WORLD
print(f"process {comm.Get_rank()} of {comm.Get_size()} ({MPI.__name__})", flush=True)
"""


def _run(tmp_path: Path, *options: str, env: dict[str, str] | None = None):
    script = tmp_path / "hello_mpi4py.py"
    script.write_text(HELLO)
    return subprocess.run(
        [sys.executable, "-m", "treecast", "run", "-n", "2", *options, sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
    )


@pytest.mark.parametrize("options", [(), ("--mpi4py",)])
def test_mpi4py_programs_see_the_whole_job_without_a_flag(tmp_path: Path, options) -> None:
    proc = _run(tmp_path, *options)
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.splitlines()) == [
        "process 0 of 2 (treecast.MPI)",
        "process 1 of 2 (treecast.MPI)",
    ]
    assert "warning" not in proc.stderr


def test_real_mpi4py_on_request_is_warned_about(tmp_path: Path) -> None:
    pytest.importorskip("mpi4py")
    proc = _run(tmp_path, "--real-mpi4py")
    assert "treecast run: warning: the ranks import the installed mpi4py" in proc.stderr
    assert "size 1" in proc.stderr
    assert proc.stderr.count("warning") == 1  # said once, not per rank
    if proc.returncode == 0:  # MPI's singleton start may be impossible here: then it fails
        assert proc.stdout.splitlines() == ["process 0 of 1 (mpi4py.MPI)"] * 2


def test_real_mpi4py_through_the_environment(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "TREECAST_MPI4PY": "real"}
    proc = _run(tmp_path, env=env)
    assert "the ranks import the installed mpi4py" in proc.stderr
    # --mpi4py overrides the environment's choice
    proc = _run(tmp_path, "--mpi4py", env=env)
    assert proc.returncode == 0 and "(treecast.MPI)" in proc.stdout and not proc.stderr


def test_contradictory_or_bad_choices_are_refused(tmp_path: Path) -> None:
    import os

    proc = _run(tmp_path, "--mpi4py", "--real-mpi4py")
    assert proc.returncode == 2 and "not allowed with argument" in proc.stderr
    for options in [(), ("--mpi4py",), ("--real-mpi4py",)]:  # checked even if a flag decides
        proc = _run(tmp_path, *options, env={**os.environ, "TREECAST_MPI4PY": "yes"})
        assert proc.returncode == 2, options
    assert "TREECAST_MPI4PY='yes': expected 'treecast'" in proc.stderr
    assert not proc.stdout  # refused before any rank started


CHILD = """
import subprocess, sys
from mpi4py import MPI
child = subprocess.run(
    [sys.executable, "-c", "import mpi4py.MPI as M; print(M.__name__)"],
    capture_output=True, text=True, check=True,
).stdout.strip()
print(MPI.__name__, MPI.COMM_WORLD.Get_size(), child, flush=True)
"""


def test_processes_a_rank_starts_see_the_installed_mpi4py(tmp_path: Path) -> None:
    pytest.importorskip("mpi4py")
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.run(
        [sys.executable, "-m", "treecast", "run", "-n", "2", sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["treecast.MPI 2 mpi4py.MPI"] * 2
