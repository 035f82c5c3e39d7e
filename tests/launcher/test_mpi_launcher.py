"""Under an MPI launcher treecast cannot join yet, world() refuses instead of giving each
process a world of its own, silently."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

import treecast
from treecast.runtime.world import _check_not_under_mpi

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize(
    ("var", "who"),
    [
        ("PMI_SIZE", "MPICH"),
        ("OMPI_COMM_WORLD_SIZE", "Open MPI"),
        ("SLURM_STEP_NUM_TASKS", "srun"),
        ("MV2_COMM_WORLD_SIZE", "MVAPICH"),
    ],
)
def test_several_processes_of_an_mpi_launcher_are_refused(var: str, who: str) -> None:
    with pytest.raises(treecast.UnsupportedLauncherError, match=rf"{who}.* \({var}=4\)") as err:
        _check_not_under_mpi({var: "4"})
    assert isinstance(err.value, NotImplementedError)
    assert "TREECAST_BACKEND=local" in str(err.value)


def test_one_process_no_launcher_or_local_backend_make_a_world_of_one() -> None:
    _check_not_under_mpi({})
    _check_not_under_mpi({"PMI_SIZE": "1", "SLURM_STEP_NUM_TASKS": "1"})
    _check_not_under_mpi({"PMI_SIZE": "8", "TREECAST_BACKEND": "local"})
    _check_not_under_mpi({"PMI_SIZE": "8", "TREECAST_BACKEND": " LOCAL "})


def test_the_mpi_backend_and_unknown_backends_say_so() -> None:
    with pytest.raises(treecast.UnsupportedLauncherError, match="TREECAST_BACKEND=mpi"):
        _check_not_under_mpi({"TREECAST_BACKEND": "mpi"})
    with pytest.raises(treecast.InvalidArgumentError, match=r"TREECAST_BACKEND='mpich' .*'auto'"):
        _check_not_under_mpi({"TREECAST_BACKEND": "mpich"})


def _hydra() -> str | None:
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        return None
    out = subprocess.run([mpiexec, "--version"], capture_output=True, text=True, timeout=30)
    return mpiexec if "HYDRA" in out.stdout else None


def test_under_mpiexec_every_rank_raises_and_local_opts_out() -> None:
    mpiexec = _hydra()
    if mpiexec is None:
        pytest.skip("MPICH's mpiexec (the mpich wheel) is not installed")
    code = "import treecast; print('size', treecast.world().size)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TREECAST_")}
    cmd = [mpiexec, "-n", "2", sys.executable, "-c", code]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90, env=env)
    assert proc.returncode != 0
    # Hydra may end the other rank once one has failed: at least one says why
    assert "treecast.errors.UnsupportedLauncherError: " in proc.stderr, proc.stderr
    assert "(PMI_SIZE=2)" in proc.stderr and "size" not in proc.stdout
    local = {**env, "TREECAST_BACKEND": "local"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90, env=local)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["size", "1", "size", "1"]
