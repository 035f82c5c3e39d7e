"""The mpi4py tutorial programs in examples/mpi4py/ give MPICH's output under ``treecast run``.

Each program is unchanged mpi4py code, run with ``treecast run --mpi4py -n N``. The expected
outputs are literals, recorded once from ``mpiexec -n N`` (MPICH); ranks print in any order,
so the sorted lines of stdout are compared. Where MPICH's ``mpiexec`` is installed, a second
test checks the literals against it (ranks' output captured to per-rank files, since Hydra
may splice lines from different ranks together on its stdout).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "mpi4py"

BCAST = "{'key1': [7, 2.72, (2+3j)], 'key2': ('abc', 'xyz')}"

# program -> (number of processes, sorted lines of stdout under mpiexec)
TUTORIALS: dict[str, tuple[int, list[str]]] = {
    "hello_world": (4, [f"Hello, World! I am process {r} of 4." for r in range(4)]),
    "bcast_dict": (4, [f"rank {r}: {BCAST}" for r in range(4)]),
    "scatter_list": (3, ["rank 0: got 1", "rank 1: got 4", "rank 2: got 9"]),
    "gather_squares": (4, ["rank 0 gathered [1, 4, 9, 16]"]),
    "alltoall_numpy": (
        4,
        [
            "rank 0: sent [0, 1, 2, 3] received [0, 10, 20, 30]",
            "rank 1: sent [10, 11, 12, 13] received [1, 11, 21, 31]",
            "rank 2: sent [20, 21, 22, 23] received [2, 12, 22, 32]",
            "rank 3: sent [30, 31, 32, 33] received [3, 13, 23, 33]",
        ],
    ),
    "reduce_numpy": (3, ["sum over 3 processes: [3.0, 6.0, 9.0, 12.0, 15.0]"]),
    "cartesian_grid": (
        4,
        [
            "rank 0 at [0, 0]: up 2 down 2 left 1 right 1",
            "rank 1 at [0, 1]: up 3 down 3 left 0 right 0",
            "rank 2 at [1, 0]: up 0 down 0 left 3 right 3",
            "rank 3 at [1, 1]: up 1 down 1 left 2 right 2",
        ],
    ),
    "send_recv": (
        4,
        [
            "rank 0 received [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]",
            "rank 1 received {'a': 7, 'b': 3.14, 'from': 0}",
            "rank 2 received [0, 3, 6, 9, 12, 15, 18, 21, 24, 27]",
            "rank 3 received {'a': 7, 'b': 3.14, 'from': 2}",
        ],
    ),
    "sendrecv_ring": (
        3,
        [
            "rank 0 got 'greetings from 2'",
            "rank 1 got 'greetings from 0'",
            "rank 2 got 'greetings from 1'",
        ],
    ),
}


def _program(name: str) -> list[str]:
    """The argv that runs example ``name`` with this interpreter."""
    return [sys.executable, str(EXAMPLES / f"{name}.py")]


def test_every_example_is_covered() -> None:
    assert sorted(p.stem for p in EXAMPLES.glob("*.py")) == sorted(TUTORIALS)


@pytest.mark.parametrize("name", sorted(TUTORIALS))
def test_tutorial_under_treecast(name: str) -> None:
    n, expected = TUTORIALS[name]
    proc = subprocess.run(
        [sys.executable, "-m", "treecast", "run", "--mpi4py", "-n", str(n), *_program(name)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert sorted(proc.stdout.splitlines()) == expected


def _mpich_mpiexec() -> str | None:
    """The path of MPICH's (Hydra's) ``mpiexec``, or None if there is none."""
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        return None
    try:
        version = subprocess.run(
            [mpiexec, "--version"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return mpiexec if "HYDRA" in version else None


@pytest.mark.parametrize("name", sorted(TUTORIALS))
def test_expected_output_matches_mpich(name: str, tmp_path: Path) -> None:
    pytest.importorskip("mpi4py")
    mpiexec = _mpich_mpiexec()
    if mpiexec is None:
        pytest.skip("MPICH's mpiexec is not installed")
    n, expected = TUTORIALS[name]
    proc = subprocess.run(
        [mpiexec, "-outfile-pattern", str(tmp_path / "out.%r"), "-n", str(n), *_program(name)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for out in tmp_path.glob("out.*") for line in out.read_text().splitlines()]
    assert sorted(lines) == expected
