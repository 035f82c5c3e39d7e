"""Which processes join an MPI job: those an MPI launcher started as one of several, or
``TREECAST_BACKEND=mpi``; ``TREECAST_BACKEND=local`` opts out (pure functions, no MPI)."""

from __future__ import annotations

import pytest

import treecast
from treecast.runtime.world import mpi_reason
from treecast.transports.mpi import fake_nodes


@pytest.mark.parametrize(
    ("var", "who"),
    [
        ("PMI_SIZE", "MPICH"),
        ("OMPI_COMM_WORLD_SIZE", "Open MPI"),
        ("SLURM_STEP_NUM_TASKS", "srun"),
        ("MV2_COMM_WORLD_SIZE", "MVAPICH"),
    ],
)
def test_several_processes_of_an_mpi_launcher_join_mpi(var: str, who: str) -> None:
    reason = mpi_reason({var: "4"})
    assert who in reason and f"({var}=4)" in reason


def test_one_process_no_launcher_or_local_backend_stay_local() -> None:
    assert mpi_reason({}) == ""
    assert mpi_reason({"PMI_SIZE": "1", "SLURM_STEP_NUM_TASKS": "1"}) == ""
    assert mpi_reason({"PMI_SIZE": "8", "TREECAST_BACKEND": "local"}) == ""
    assert mpi_reason({"PMI_SIZE": "8", "TREECAST_BACKEND": " LOCAL "}) == ""
    assert mpi_reason({"TREECAST_BACKEND": "mpi"}) == "TREECAST_BACKEND=mpi"


def test_unknown_backends_say_so() -> None:
    with pytest.raises(treecast.InvalidArgumentError, match=r"TREECAST_BACKEND='mpich' .*'auto'"):
        mpi_reason({"TREECAST_BACKEND": "mpich"})


def test_fake_node_placements() -> None:
    assert fake_nodes("", 4) is None
    assert fake_nodes("2", 4) == (0, 0, 1, 1)
    assert fake_nodes("2:interleaved", 4) == (0, 1, 0, 1)
    assert fake_nodes("3", 4) == (0, 0, 1, 2)
    assert fake_nodes(" 2:contiguous ", 5) == (0, 0, 0, 1, 1)
    assert fake_nodes("4", 4) == (0, 1, 2, 3)
    for bad in ("0", "5", "x", "2:diagonal", "-1"):
        with pytest.raises(treecast.InvalidArgumentError, match="TREECAST_FAKE_NODES"):
            fake_nodes(bad, 4)


def test_a_node_sweeper_waits_for_every_rank_then_removes_the_nodes_files(tmp_path) -> None:
    """The sweeper a node's leader starts (``reaper.start``) outlives the leader and removes
    the node's files only once every listed rank has stopped."""
    import subprocess
    import sys
    import time

    (tmp_path / "treecast-job-a").write_bytes(b"x")
    (tmp_path / "other").write_bytes(b"y")
    rank = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        code = (
            "import sys; from treecast.launcher import reaper; "
            f"reaper.start({str(tmp_path)!r}, 'treecast-job-', [{rank.pid}])"
        )
        subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
        time.sleep(0.5)  # the leader has exited; a rank of its node still runs
        assert (tmp_path / "treecast-job-a").exists()
    finally:
        rank.kill()
        rank.wait()
    deadline = time.monotonic() + 10
    while (tmp_path / "treecast-job-a").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not (tmp_path / "treecast-job-a").exists()
    assert (tmp_path / "other").exists()
