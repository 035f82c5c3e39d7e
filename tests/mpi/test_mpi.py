"""treecast on MPI (``mpiexec``, MPICH from the ``mpich`` wheel): every rank of the job in
one world, fake nodes so that traffic between them really goes through MPI, failures that
end or inform every rank, and clear errors for set-ups that cannot work."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mpi_helpers import PLACEMENTS, run_job

pytestmark = pytest.mark.timeout(200)

OK_TIMEOUT = {"TREECAST_TIMEOUT": "60"}
"""A job that hangs fails with a hang report instead of waiting for the test's timeout."""


def _ranks_say(proc, what: str, n: int = 4) -> None:
    said = proc.stdout.count(what)  # mpiexec may join the lines of several ranks
    assert proc.returncode == 0 and said == n, (
        f"exit {proc.returncode}; {said} of {n} ranks said {what!r}\n"
        f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    )


@pytest.mark.parametrize("placement", sorted(PLACEMENTS))
def test_transport_conformance(placement: str) -> None:
    proc = run_job("conformance_job.py", placement, nodes=PLACEMENTS[placement])
    _ranks_say(proc, "conformance ok")


@pytest.mark.parametrize("placement", sorted(PLACEMENTS))
def test_every_collective_every_root(placement: str) -> None:
    proc = run_job("collectives_job.py", nodes=PLACEMENTS[placement], env=OK_TIMEOUT)
    _ranks_say(proc, "collectives ok")


@pytest.mark.parametrize("placement", sorted(PLACEMENTS))
def test_large_broadcasts_through_each_nodes_arena(placement: str) -> None:
    proc = run_job("node_stage_job.py", n=6, nodes=PLACEMENTS[placement], env=OK_TIMEOUT)
    _ranks_say(proc, "node stage ok", n=6)


def test_mpich_cliques_are_nodes() -> None:
    """MPICH's own fake nodes (MPIR_CVAR_NUM_CLIQUES, interleaved): Split_type gives them,
    and treecast takes its nodes from Split_type."""
    proc = run_job(
        "collectives_job.py", nodes=None, env={**OK_TIMEOUT, "MPIR_CVAR_NUM_CLIQUES": "2"}
    )
    _ranks_say(proc, "collectives ok")


def test_timeouts_and_mismatches_across_nodes() -> None:
    proc = run_job("failures_job.py", "errors", env=OK_TIMEOUT)
    _ranks_say(proc, ": ok")


def test_an_uncaught_exception_aborts_the_job_with_its_traceback() -> None:
    proc = run_job("failures_job.py", "raise", env=OK_TIMEOUT, timeout=90)
    assert proc.returncode not in (0, -9), proc.stderr[-3000:]
    assert "unreachable" not in proc.stdout
    err = proc.stderr
    assert "ValueError: boom on rank 3" in err, err[-3000:]
    assert err.index("Traceback") < err.index("MPI_Abort"), err[-3000:]


def _bootstrap(code: str, env: dict[str, str] | None = None, n: int = 2, nodes: str | None = None):
    return run_job("run_code.py", code, n=n, nodes=nodes, env=env, timeout=90)


def test_a_world_spans_every_process_of_the_job() -> None:
    proc = _bootstrap(
        "import sys, treecast; w = treecast.world(); sys.stdout.write(f'size {w.size} rank {w.rank}\\n')"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("size 2 rank 0") == proc.stdout.count("size 2 rank 1") == 1


@pytest.mark.parametrize(
    ("env", "nodes", "expected"),
    [
        ({}, "5", "TREECAST_FAKE_NODES='5': expected k or k:interleaved"),
        ({}, "2:diagonal", "TREECAST_FAKE_NODES='2:diagonal'"),
        ({"TREECAST_RANK": "0", "TREECAST_SIZE": "2"}, None, "both by 'treecast run'"),
        ({"MPI4PY_RC_THREAD_LEVEL": "single"}, None, "MPI_THREAD_SINGLE; treecast needs"),
        ({"TREECAST_RING_BYTES": str(1 << 50)}, None, "/dev/shm has"),
        ({"TREECAST_RING_BYTES": "1P"}, None, "TREECAST_RING_BYTES='1P' is not a size"),
        ({"TREECAST_BACKEND": "cluster"}, None, "TREECAST_BACKEND='cluster' is not a backend"),
    ],
)
def test_set_ups_that_cannot_work_fail_on_every_rank(env, nodes, expected) -> None:
    proc = _bootstrap("import treecast; treecast.world(); print('started')", env, nodes=nodes)
    assert proc.returncode != 0 and "started" not in proc.stdout
    for rank in (0, 1):
        assert f"[rank {rank}] " in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.count(expected) == 2, proc.stderr[-3000:]


def test_a_node_segment_made_for_another_job_is_refused_on_every_rank() -> None:
    """The leader's segment does not hold this node's layout (as a segment of another job
    would not): every rank fails to attach and every rank of the job says why."""
    code = (
        "from treecast.transports import mpi\n"
        "made = mpi.create_world_segment\n"
        "mpi.create_world_segment = lambda job, n, cap: made(job, n + 1, cap)\n"
        "import treecast; treecast.world(); print('started')"
    )
    proc = _bootstrap(code, nodes="2", n=4)
    assert proc.returncode != 0 and "started" not in proc.stdout
    assert proc.stderr.count("cannot set up the nodes") == 4, proc.stderr[-3000:]
    assert "could not attach the node segment" in proc.stderr
    assert "expected 0x7472656563617374 version 3 size 2" in proc.stderr


def test_missing_mpi4py_is_an_error_not_a_world_of_one() -> None:
    code = (
        "import sys; sys.modules['mpi4py'] = None\n"
        "import treecast; treecast.world(); print('started')"
    )
    proc = _bootstrap(code)
    assert proc.returncode != 0 and "started" not in proc.stdout
    assert "pip install 'treecast[mpi]'" in proc.stderr, proc.stderr[-3000:]


def test_local_backend_opts_out() -> None:
    proc = _bootstrap(
        "import sys, treecast; sys.stdout.write(f'size {treecast.world().size}\\n')",
        {"TREECAST_BACKEND": "local"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["size", "1", "size", "1"]


ZOO = Path(__file__).parents[1] / "faults" / "programs" / "zoo.py"
RESULT = re.compile(r"RESULT rank=(\d+) outcome=(\w+) elapsed=([\d.]+)")


@pytest.mark.parametrize("placement", sorted(PLACEMENTS))
@pytest.mark.parametrize("case", ["gather_vs_bcast", "recv_ring"])
def test_a_deadlock_across_nodes_raises_on_every_rank(case: str, placement: str) -> None:
    """Each node's board shows its own ranks; the nodes' speakers agree over MPI."""
    proc = run_job(ZOO, case, nodes=PLACEMENTS[placement], timeout=60)
    got = {int(m[1]): (m[2], float(m[3])) for m in RESULT.finditer(proc.stdout)}
    assert sorted(got) == [0, 1, 2, 3], proc.stdout + proc.stderr[-3000:]
    for rank, (outcome, elapsed) in got.items():
        assert outcome == "DeadlockError" and elapsed < 2.0, (rank, outcome, elapsed)
    assert proc.returncode != 0


@pytest.mark.parametrize("case", ["compute", "thread"])
def test_a_node_waiting_for_another_that_works_is_not_a_deadlock(case: str) -> None:
    proc = run_job(ZOO, case, nodes=PLACEMENTS["interleaved"], timeout=60)
    _ranks_say(proc, "outcome=returned")
