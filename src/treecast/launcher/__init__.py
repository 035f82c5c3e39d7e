"""Start the ranks of a job on this machine, supervise them, forward their output, clean up.

Used by ``treecast run`` (:mod:`treecast.cli`) and :func:`treecast.launch`.
"""

from __future__ import annotations

from .output import STDERR, STDOUT, FdSink, LineForwarder, Sink, TextSink
from .program import (
    MPI4PY_SHIM,
    REAL_MPI4PY_WARNING,
    missing_program,
    mpi4py_env,
    resolve_command,
    wants_real_mpi4py,
)
from .supervisor import EXIT_TIMEOUT, JobResult, describe_exit, exit_status, run_job

__all__ = [
    "EXIT_TIMEOUT",
    "MPI4PY_SHIM",
    "REAL_MPI4PY_WARNING",
    "STDERR",
    "STDOUT",
    "FdSink",
    "JobResult",
    "LineForwarder",
    "Sink",
    "TextSink",
    "describe_exit",
    "exit_status",
    "missing_program",
    "mpi4py_env",
    "resolve_command",
    "run_job",
    "wants_real_mpi4py",
]
