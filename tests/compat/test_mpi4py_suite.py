"""mpi4py's own tests against treecast.MPI, under ``treecast run --mpi4py``.

The tests come from mpi4py 4.1.2's source release, downloaded here at test time (``pip
download``; nothing of mpi4py is committed) and run unchanged by ``mpi4py_runner.py`` on
every rank. ``test_cco_obj`` and ``test_p2p_obj`` must pass in full at n = 1..4; for the
other modules the pass counts recorded in docs/compatibility.md are the floor.

Set ``TREECAST_MPI4PY_TESTS=/path/to/mpi4py-4.1.2/test`` to use an unpacked copy instead of
downloading one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

MPI4PY_VERSION = "4.1.2"
RUNNER = Path(__file__).with_name("mpi4py_runner.py")

FULL = ("test_cco_obj", "test_p2p_obj")
"""Modules that must pass entirely (132 tests on every rank)."""
FULL_COUNT = 132

FLOORS: dict[str, int] = {
    "test_cco_buf": 68,
    "test_p2p_buf": 40,
    "test_cco_nb_buf": 66,
    "test_cco_nb_vec": 50,
    "test_status": 11,
    "test_request": 12,
    "test_op": 10,
    "test_comm_topo": 32,
    "test_group": 52,
    "test_comm": 70,
    "test_info": 13,
    "test_p2p_obj_matched": 10,
    "test_p2p_buf_matched": 11,
    "test_cco_ngh_obj": 8,
    "test_cco_ngh_buf": 8,
}
"""Other modules: the least number of their tests that pass on every rank at n = 1..4, run
with mpi4py's CPU array backends (``array.array`` and NumPy; its DLPack and GPU backends are
not buffers to treecast). docs/compatibility.md lists what fails and why."""
CPU_BACKENDS = "ArrayArray,ArrayNumPy"


def _download(dest: Path) -> Path:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        f"mpi4py=={MPI4PY_VERSION}",
        # the source release of mpi4py only: ":all:" would also build pip's metadata
        # step's own requirements (Cython, setuptools) from source, minutes of compiling
        "--no-binary",
        "mpi4py",
        "--no-deps",
        "-q",
        "-d",
        str(dest),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    archives = list(dest.glob(f"mpi4py-{MPI4PY_VERSION}.tar.gz"))
    if not archives:
        pytest.fail(
            f"could not download mpi4py {MPI4PY_VERSION}'s source release (needed to run its "
            f"tests): pip exited {proc.returncode}\n{proc.stderr[-2000:]}"
        )
    prefix = f"mpi4py-{MPI4PY_VERSION}/test/"
    with tarfile.open(archives[0]) as tar:
        members = [
            m
            for m in tar.getmembers()
            if m.name.startswith(prefix) and m.isfile() and ".." not in Path(m.name).parts
        ]
        tar.extractall(dest, members=members)
    return dest / prefix


@pytest.fixture(scope="session")
def mpi4py_tests(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("TREECAST_MPI4PY_TESTS")
    if given:
        return Path(given)
    return _download(tmp_path_factory.mktemp("mpi4py-src"))


def _run(
    testdir: Path, tmp_path: Path, n: int, modules: tuple[str, ...], backends: str = ""
) -> list[dict]:
    prefix = tmp_path / "report"
    env = {**os.environ, "TREECAST_MPI4PY_BACKENDS": backends}
    cmd = [
        sys.executable,
        "-m",
        "treecast",
        "run",
        "-n",
        str(n),
        "--mpi4py",
        "--keep-going",
        "--timeout",
        "200",
        sys.executable,
        str(RUNNER),
        str(testdir),
        str(prefix),
        *modules,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=tmp_path, env=env)
    reports = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("report.*.json"))]
    assert proc.returncode != 124, f"the mpi4py tests hung at n={n}:\n{proc.stderr[-3000:]}"
    assert len(reports) == n, (
        f"expected a report from each of {n} ranks, got {len(reports)}; exit "
        f"{proc.returncode}\n{proc.stderr[-3000:]}"
    )
    return reports


def _problems(report: dict) -> str:
    return "\n".join(f"{test}\n{tb[-1500:]}" for test, tb in report["problems"][:5])


@pytest.mark.timeout(300)
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_object_tests_pass_in_full(mpi4py_tests: Path, tmp_path: Path, n: int) -> None:
    for report in _run(mpi4py_tests, tmp_path, n, FULL):
        assert report["failed"] == report["errors"] == report["skipped"] == 0, _problems(report)
        assert report["run"] == report["passed"] == FULL_COUNT


@pytest.mark.timeout(300)
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_other_modules_keep_their_pass_counts(mpi4py_tests: Path, tmp_path: Path, n: int) -> None:
    reports = _run(mpi4py_tests, tmp_path, n, tuple(FLOORS), CPU_BACKENDS)
    for report in reports:
        for module, floor in FLOORS.items():
            got = report["modules"][module]
            assert got["passed"] >= floor, (
                f"{module} at n={n}, rank {report['rank']}: {got['passed']} of {got['run']} "
                f"passed, expected at least {floor}\n{_problems(report)}"
            )


@pytest.mark.timeout(300)
@pytest.mark.parametrize("nodes", ["2", "2:interleaved"])
def test_object_tests_pass_under_mpiexec_across_nodes(
    mpi4py_tests: Path, tmp_path: Path, nodes: str
) -> None:
    """The object modules under ``mpiexec -n 4`` (MPICH) with two fake nodes of two ranks:
    treecast on its MPI transport, mpi4py's tests against treecast.MPI."""
    from mpi_helpers import run_job

    proc = run_job(
        RUNNER,
        str(mpi4py_tests),
        str(tmp_path / "report"),
        *FULL,
        nodes=nodes,
        env={"TREECAST_MPI4PY_UNDER_MPI": "1", "TREECAST_TIMEOUT": "100"},
        timeout=240,
        cwd=tmp_path,
    )
    reports = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("report.*.json"))]
    assert len(reports) == 4, f"exit {proc.returncode}\n{proc.stderr[-3000:]}"
    for report in reports:
        assert report["failed"] == report["errors"] == report["skipped"] == 0, _problems(report)
        assert report["run"] == report["passed"] == FULL_COUNT
