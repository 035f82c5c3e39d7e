"""The errors for mpi4py names treecast lacks point to ``python -m treecast compat NAME``,
which works from the installed package (no docs/ directory needed)."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import treecast
from treecast import MPI
from treecast.compat import lookup, missing, summary
from treecast.errors import NotImplementedName

pytestmark = pytest.mark.timeout(120)

SRC = Path(__file__).resolve().parents[2] / "src" / "treecast"
POINTER = re.compile(r"see 'python -m treecast compat (\S+)'")


def _absent_names() -> list[tuple[str, object]]:
    """One name of each kind whose error carries the pointer: module, Comm instance, Comm
    class, topology communicator, Datatype."""
    cart = treecast.world().Create_cart([1])
    return [
        ("MPI.Win", lambda: MPI.Win),
        ("Comm.Spawn", lambda: MPI.COMM_WORLD.Spawn),
        ("Comm.Get_parent", lambda: MPI.Comm.Get_parent),
        ("Cartcomm.Neighbor_alltoallw", lambda: cart.Neighbor_alltoallw),
        ("Datatype.Create_vector", lambda: MPI.DOUBLE.Create_vector),
    ]


def _installed_copy(dest: Path) -> Path:
    """What an install of the package holds: its modules and the package data that
    pyproject.toml declares, nothing else of the source tree."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((SRC.parents[1] / "pyproject.toml").read_text())
    globs = project["tool"]["setuptools"]["package-data"]["treecast"]
    for path in SRC.rglob("*"):
        rel = path.relative_to(SRC).as_posix()
        if path.is_file() and (path.suffix == ".py" or any(fnmatch.fnmatch(rel, g) for g in globs)):
            (dest / "treecast" / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, dest / "treecast" / rel)
    return dest


def _compat(args: list[str], cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "treecast", "compat", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(pythonpath)},
        timeout=60,
    )


def test_every_not_implemented_message_names_a_command_that_answers_for_the_name(tmp_path):
    installed = _installed_copy(tmp_path / "site")
    for expected, touch in _absent_names():
        with pytest.raises(NotImplementedName) as info:
            touch()  # type: ignore[operator]
        found = POINTER.search(str(info.value))
        assert found is not None, str(info.value)
        assert found.group(1) == expected
        proc = _compat([found.group(1)], cwd=tmp_path, pythonpath=installed)
        assert proc.returncode == 1, proc.stderr
        first = proc.stdout.splitlines()[0]
        assert first.startswith(expected.removeprefix("MPI.")) or first.startswith(expected)
        assert "not implemented in treecast.MPI" in first
        assert "\nNot implemented (each such name raises" in proc.stdout


def test_compat_without_a_name_prints_the_packaged_summary(tmp_path):
    proc = _compat([], cwd=tmp_path, pythonpath=_installed_copy(tmp_path / "site"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == summary()
    assert "windows (MPI.Win)" in proc.stdout and "Differs on purpose" in proc.stdout


@pytest.mark.parametrize(
    ("name", "status", "says"),
    [
        ("Comm.bcast", 0, "Comm.bcast: treecast.MPI has it: Broadcast"),
        ("MPI.COMM_WORLD", 0, "MPI.COMM_WORLD: treecast.MPI has it"),
        ("mpi4py.MPI.Win", 1, "MPI.Win: not implemented"),
        ("Win.Create", 1, "Win.Create: not implemented in treecast.MPI (it has no MPI.Win)"),
        ("Spawn", 1, "Comm.Spawn: not implemented"),
        ("Intracomm.Spawn", 1, "Intracomm.Spawn: not implemented"),
        ("Cartcomm.rank", 0, "Cartcomm.rank: treecast.MPI has it"),
        ("Cartcomm.Get_topo", 0, "Cartcomm.Get_topo: treecast.MPI has it"),
        ("Create_vector", 1, "Datatype.Create_vector: not implemented"),
        ("Frobnicate", 2, "neither mpi4py 4.1 nor treecast.MPI has a name 'Frobnicate'"),
        ("Comm.Frobnicate", 2, "neither mpi4py 4.1 nor treecast.MPI has it"),
        ("Graphcomm.Get_neighbors", 0, "Graphcomm.Get_neighbors: treecast.MPI has it"),
        ("Graphcomm.nnodes", 0, "Graphcomm.nnodes: treecast.MPI has it"),
        ("Graphcomm.Spawn", 1, "Graphcomm.Spawn: not implemented"),
        ("Graphcomm.Frobnicate", 2, "neither mpi4py 4.1 nor treecast.MPI has it"),
        ("Distgraphcomm.Get_dist_neighbors", 0, "treecast.MPI has it"),
        ("Distgraphcomm.rank", 0, "Distgraphcomm.rank: treecast.MPI has it"),
    ],
)
def test_lookup(name, status, says):
    got, verdict = lookup(name)
    assert got == status and says in verdict


def test_missing_lists_what_raises_not_implemented():
    lacking = missing()
    assert "Win" in lacking["MPI"] and "Spawn" in lacking["Comm"]
    assert "bcast" not in lacking["Comm"] and "rank" not in lacking["Comm"]
    assert "Create_vector" in lacking["Datatype"]
    for name in lacking["Comm"]:
        with pytest.raises(NotImplementedName):
            getattr(MPI.COMM_WORLD, name)


def test_output_piped_into_a_reader_that_stops_is_not_an_error():
    proc = subprocess.run(
        f"{sys.executable} -m treecast compat --missing | head -c 10",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and len(proc.stdout) == 10
    assert "BrokenPipeError" not in proc.stderr and "Traceback" not in proc.stderr
