"""``mpi4py.futures`` under treecast: ``MPICommExecutor`` over any communicator, and
``MPIPoolExecutor`` in a program started with ``python -m mpi4py.futures`` (rank 0 runs the
program, every other rank runs its calls). Spawning new processes for a pool is not
implemented. See :mod:`treecast.futures`.
"""

from __future__ import annotations

from concurrent.futures import (
    ALL_COMPLETED,
    FIRST_COMPLETED,
    FIRST_EXCEPTION,
    CancelledError,
    Executor,
    Future,
    TimeoutError,
    as_completed,
    wait,
)
from typing import Any

from treecast.futures import CommExecutor, PoolExecutor

_STATIC: dict[str, Any] = {}
"""Set by ``python -m mpi4py.futures`` on rank 0: the manager of the world's workers."""


class MPICommExecutor(CommExecutor):
    """``with MPICommExecutor(comm, root) as executor``: collective over ``comm`` (default
    ``COMM_WORLD``); the root gets an executor, the other ranks None once the root's block
    is over."""

    def __init__(self, comm: Any = None, root: int = 0, **kwargs: Any) -> None:
        super().__init__(comm, root)


def MPIPoolExecutor(max_workers: int | None = None, **kwargs: Any) -> PoolExecutor:
    """A pool of the world's other ranks, in a program run with ``python -m
    mpi4py.futures``.

    Raises:
        NotImplementedError: not started that way (mpi4py would spawn new processes).
    """
    manager = _STATIC.get("manager")
    if manager is None:
        raise NotImplementedError(
            "MPIPoolExecutor: spawning worker processes is not implemented in treecast; run "
            "the program with `treecast run --mpi4py -n N python -m mpi4py.futures prog.py` "
            "or use MPICommExecutor"
        )
    return PoolExecutor(manager, owns=False)


def get_comm_workers() -> Any:
    """The communicator the workers of this pool share (``COMM_WORLD``'s duplicate)."""
    manager = _STATIC.get("manager")
    if manager is None:
        from treecast import MPI

        return MPI.COMM_WORLD
    return manager.comm


__all__ = [
    "ALL_COMPLETED",
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "CancelledError",
    "Executor",
    "Future",
    "MPICommExecutor",
    "MPIPoolExecutor",
    "TimeoutError",
    "as_completed",
    "get_comm_workers",
    "wait",
]
