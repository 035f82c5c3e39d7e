"""Environment variables shared by the launcher and the ranks it starts.

The launcher sets these in every rank's environment; :func:`treecast.world` reads them. A
process started without the launcher has none of them and is a world of size 1.
"""

from __future__ import annotations

ENV_RANK = "TREECAST_RANK"
"""This process's rank in the world, ``0 <= rank < size``."""
ENV_SIZE = "TREECAST_SIZE"
"""Number of ranks in the world."""
ENV_JOB = "TREECAST_JOB"
"""Unguessable per-job token; every shared-memory segment of the job is named after it."""
ENV_SHM = "TREECAST_SHM"
"""Name of the world segment (created by the launcher) that holds the per-pair rings."""
ENV_LAUNCHER_PID = "TREECAST_LAUNCHER_PID"
"""Pid of the launcher; a rank whose launcher died stops waiting and exits."""


ENV_BACKEND = "TREECAST_BACKEND"
"""How a process not started by treecast's own launcher finds its world: ``auto`` (default:
a world of one, unless an MPI launcher started several processes), ``local`` (a world of
one, also under an MPI launcher) or ``mpi`` (every process of the MPI job)."""

MPI_LAUNCHER_SIZES = (
    ("OMPI_COMM_WORLD_SIZE", "Open MPI's mpirun"),
    ("PMI_SIZE", "an MPICH (Hydra) or Intel MPI mpiexec"),
    ("MV2_COMM_WORLD_SIZE", "MVAPICH's mpirun"),
    ("SLURM_STEP_NUM_TASKS", "Slurm's srun"),
)
"""Variables by which MPI launchers tell a process how many were started, and who sets
them (Slurm sets ``SLURM_STEP_NUM_TASKS`` for the tasks of an ``srun`` step)."""
