"""Run a job under MPICH's ``mpiexec`` (the ``mpich`` wheel) with fake nodes.

``TREECAST_FAKE_NODES`` splits this machine into nodes, so that traffic between them really
goes through MPI: ``2`` places ranks 0,1 | 2,3 (contiguous), ``2:interleaved`` ranks 0,2 |
1,3. MPICH leaves its own ``/dev/shm/mpich_shm_*`` segments behind when a job aborts; the
ones a job made are removed after it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from treecast.bench import mpiexec_path

JOBS = Path(__file__).with_name("mpi") / "jobs"
PLACEMENTS = {"contiguous": "2", "interleaved": "2:interleaved"}
"""Placement name -> ``TREECAST_FAKE_NODES``."""


def _mpich_segments() -> set[str]:
    try:
        return {e for e in os.listdir("/dev/shm") if e.startswith("mpich_shm_")}
    except OSError:
        return set()


def run_job(
    script: str | Path,
    *args: str,
    n: int = 4,
    nodes: str | None = "2",
    timeout: float = 150,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python jobs/<script> ARGS`` (or the script at a path) on ``n`` ranks under
    ``mpiexec`` with
    ``TREECAST_FAKE_NODES=nodes`` (None: unset); kill the whole job after ``timeout``
    seconds (the result's returncode is then -9)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TREECAST_", "PMI_"))}
    if nodes is not None:
        clean["TREECAST_FAKE_NODES"] = nodes
    clean.update(env or {})
    before = _mpich_segments()
    cmd = [mpiexec_path(), "-n", str(n), sys.executable, str(JOBS / script), *args]
    kwargs = {"cwd": cwd} if cwd is not None else {}
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=clean,
        start_new_session=True,
        **kwargs,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        err += f"\n[killed after {timeout:g} s]"
    finally:
        for name in _mpich_segments() - before:
            try:
                os.unlink(f"/dev/shm/{name}")
            except OSError:
                pass
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
