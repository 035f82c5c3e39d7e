"""Build the world communicator from the environment.

Started by ``treecast run`` (or :func:`treecast.launch`): the launcher's variables name the
rank, the size and what the transport needs (``TREECAST_TRANSPORT``, default ``shm``,
chooses it: see :mod:`treecast.transports.registry`). Started any other way: a world of
size 1, except that a process which an MPI launcher (``mpiexec``, ``srun``) started as one of
several raises :class:`~treecast.errors.UnsupportedLauncherError` instead of quietly running
alone (``TREECAST_BACKEND=local`` asks for the world of one anyway).
"""

from __future__ import annotations

import atexit
import os
import threading

from ..comm import Comm
from ..errors import InvalidArgumentError, TreecastError, UnsupportedLauncherError
from ..transports import registry
from ..transports.base import Transport, launcher_watch
from ..transports.single import SingleRankTransport
from .env import (
    ENV_BACKEND,
    ENV_JOB,
    ENV_LAUNCHER_PID,
    ENV_RANK,
    ENV_SIZE,
    MPI_LAUNCHER_SIZES,
)

BACKENDS = ("auto", "local", "mpi")

WORLD_CTX = 0
SELF_CTX = 2

_lock = threading.Lock()
_world: Comm | None = None
_self: Comm | None = None


def _make_transport() -> Transport:
    # the name is checked first, even for a world of one, so that a typo never passes
    name = os.environ.get(registry.ENV_TRANSPORT, "").strip() or registry.DEFAULT
    registry.check(name)
    rank_s, size_s = os.environ.get(ENV_RANK), os.environ.get(ENV_SIZE)
    if rank_s is None or size_s is None:
        _check_not_under_mpi(os.environ)
        return SingleRankTransport(os.environ.get(ENV_JOB))
    try:
        rank, size = int(rank_s), int(size_s)
    except ValueError:
        raise TreecastError(
            f"{ENV_RANK}={rank_s!r} and {ENV_SIZE}={size_s!r} must be integers"
        ) from None
    if not 0 <= rank < size:
        raise TreecastError(f"{ENV_RANK}={rank} is outside [0, {ENV_SIZE}={size})")
    if size == 1:
        return SingleRankTransport(os.environ.get(ENV_JOB))
    transport = registry.make(name, rank, size, os.environ)
    launcher = os.environ.get(ENV_LAUNCHER_PID)
    if launcher:
        transport.liveness_check = launcher_watch(int(launcher))
    return transport


def _check_not_under_mpi(env: os._Environ[str] | dict[str, str]) -> None:
    """Refuse to make a world of one in a process that an MPI launcher started as one of
    several (each would run alone, silently).

    Raises:
        InvalidArgumentError: ``TREECAST_BACKEND`` is not one of :data:`BACKENDS`.
        UnsupportedLauncherError: an MPI launcher started several processes (unless
            ``TREECAST_BACKEND=local``), or ``TREECAST_BACKEND=mpi``.
    """
    backend = env.get(ENV_BACKEND, "").strip().lower() or "auto"
    if backend not in BACKENDS:
        raise InvalidArgumentError(
            f"{ENV_BACKEND}={env.get(ENV_BACKEND)!r} is not a backend; expected one of {BACKENDS}"
        )
    if backend == "local":
        return
    found = [(var, who, env[var]) for var, who in MPI_LAUNCHER_SIZES if var in env]
    several = [(var, who, n) for var, who, n in found if n.strip().isdigit() and int(n) > 1]
    if backend == "auto" and not several:
        return
    why = (
        f"{ENV_BACKEND}=mpi asks for every process of an MPI job"
        if backend == "mpi"
        else f"{several[0][1]} started {several[0][2]} processes ({several[0][0]}={several[0][2]})"
    )
    raise UnsupportedLauncherError(
        f"treecast.world(): {why}, but treecast cannot join an MPI job yet (treecast on MPI "
        f"is not implemented); each process would run alone in a world of 1. Start the job "
        f"with 'treecast run -n N python app.py' on one machine, or set {ENV_BACKEND}=local "
        f"to give each process its own world of one on purpose."
    )


def world() -> Comm:
    """The communicator of every rank of the job (mpi4py's ``COMM_WORLD``).

    Raises:
        TreecastError: the launcher's environment is inconsistent.
        InvalidArgumentError: ``TREECAST_TRANSPORT`` names no transport that can start here,
            or ``TREECAST_BACKEND`` no backend.
        UnsupportedLauncherError: ``mpiexec``/``srun`` started this process as one of
            several (see the module docstring).
    """
    global _world
    if _world is None:
        with _lock:
            if _world is None:
                transport = _make_transport()
                comm = Comm(transport, range(transport.size), WORLD_CTX, "world")
                comm._predefined = world
                _world = comm
                atexit.register(transport.close)
    return _world


def world_transport() -> Transport:
    """The transport under :func:`world` (for transport-level tests and tools).

    Raises:
        TreecastError, InvalidArgumentError: as :func:`world`.
    """
    return world()._t


def self_comm() -> Comm:
    """A communicator holding only this rank (mpi4py's ``COMM_SELF``)."""
    global _self
    if _self is None:
        w = world()
        comm = Comm(w._t, (w._t.rank,), SELF_CTX, "self")
        comm._predefined = self_comm
        _self = comm
    return _self
