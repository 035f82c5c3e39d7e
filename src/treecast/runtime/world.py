"""Build the world communicator from the environment.

Started by ``treecast run`` (or :func:`treecast.launch`): the launcher's variables name the
rank, the size and what the transport needs (``TREECAST_TRANSPORT``, default ``shm``,
chooses it: see :mod:`treecast.transports.registry`). Started by an MPI launcher
(``mpiexec``, ``mpirun``, ``srun``) as one of several processes, or with
``TREECAST_BACKEND=mpi``: every process of the MPI job (:mod:`treecast.transports.mpi`; an
error if mpi4py is missing, never a quiet world of one). Started any other way, or with
``TREECAST_BACKEND=local``: a world of size 1.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import warnings
from collections.abc import Mapping
from typing import Any

from ..comm import Comm
from ..engine.signatures import describe_leftovers, is_collective
from ..errors import (
    InvalidArgumentError,
    TreecastError,
    UnreceivedMessageWarning,
    UnsupportedLauncherError,
)
from ..tracing import tracing_wanted
from ..transports import registry
from ..transports.base import ACK_CTX, Transport, exiting_on_error, launcher_watch
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
    under_mpi = mpi_reason(os.environ)
    if rank_s is None or size_s is None:
        if under_mpi:
            return _start_mpi(under_mpi)
        return SingleRankTransport(os.environ.get(ENV_JOB))
    if under_mpi:
        raise UnsupportedLauncherError(
            f"treecast.world(): this process was started both by 'treecast run' "
            f"({ENV_RANK}={rank_s}) and by an MPI launcher ({under_mpi}); use one launcher: "
            f"'treecast run -n N python app.py' on one machine, or 'mpiexec -n N python "
            f"app.py' / 'srun python app.py' (set {ENV_BACKEND}=local to ignore the MPI "
            f"launcher)"
        )
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


def mpi_reason(env: Mapping[str, str]) -> str:
    """Why this process should join an MPI job (an MPI launcher started several processes,
    or ``TREECAST_BACKEND=mpi``), in words; ``""`` if it should not.

    Raises:
        InvalidArgumentError: ``TREECAST_BACKEND`` is not one of :data:`BACKENDS`.
    """
    backend = env.get(ENV_BACKEND, "").strip().lower() or "auto"
    if backend not in BACKENDS:
        raise InvalidArgumentError(
            f"{ENV_BACKEND}={env.get(ENV_BACKEND)!r} is not a backend; expected one of {BACKENDS}"
        )
    if backend == "local":
        return ""
    if backend == "mpi":
        return f"{ENV_BACKEND}=mpi"
    for var, who in MPI_LAUNCHER_SIZES:
        n = env.get(var, "").strip()
        if n.isdigit() and int(n) > 1:
            return f"{who} started {n} processes ({var}={n})"
    return ""


def _start_mpi(why: str) -> Transport:
    """This rank's transport in an MPI job (see :mod:`treecast.transports.mpi`); the node's
    leader also starts the sweeper of its node's segments, and an uncaught exception ends
    the whole job.

    Raises:
        UnsupportedLauncherError, TreecastError, InvalidArgumentError: as
            :func:`treecast.transports.mpi.start`.
    """
    from ..launcher import reaper
    from ..transports import mpi

    transport = mpi.start(why, os.environ)
    sweeper = transport.sweeper()
    if sweeper is not None:
        (directory, stem), pids = sweeper
        reaper.start(directory, stem, pids)
    mpi.abort_on_uncaught(transport)
    return transport


def world() -> Comm:
    """The communicator of every rank of the job (mpi4py's ``COMM_WORLD``).

    Raises:
        TreecastError: the launcher's environment is inconsistent.
        InvalidArgumentError: ``TREECAST_TRANSPORT`` names no transport that can start here,
            or ``TREECAST_BACKEND`` no backend.
        UnsupportedLauncherError: ``mpiexec``/``srun`` started this process as one of
            several (see the module docstring).
        InvalidArgumentError: also ``TREECAST_TRACE`` names a file that cannot be written.
    """
    global _world
    if _world is None:
        with _lock:
            if _world is None:
                trace = _trace_settings()
                transport = _make_transport()
                comm = Comm(transport, range(transport.size), WORLD_CTX, "world")
                comm._predefined = world
                atexit.register(_at_exit, transport)
                if trace is not None:  # its exit hook, registered later, runs first
                    trace.start(comm)
                _world = comm
    return _world


def _trace_settings() -> Any:
    """This process's tracing settings (:mod:`treecast.tracing`), or None: tracing off, and
    its recorder is never imported.

    Raises:
        InvalidArgumentError: a ``TREECAST_TRACE*`` variable is not usable.
    """
    if not tracing_wanted(os.environ):
        return None
    from ..tracing.hooks import settings

    return settings(os.environ)


def _at_exit(transport: Transport) -> None:
    """The process's end: finalise the transport (which waits for the other ranks to finish,
    as ``MPI_Finalize``), then check what no receive took. Messages of collectives mean
    that the ranks ran different collectives: each is named on stderr and the process
    exits with status 1 (an ``atexit`` hook cannot change the status otherwise, so the
    hooks registered before the world was made are skipped). Point-to-point messages left
    unreceived are allowed by MPI and only warned about."""
    left = transport.finalize()
    if not left or exiting_on_error():
        return
    names = transport.context_names
    coll = [m for m in left if is_collective(m.ctx)]
    p2p = [m for m in left if not is_collective(m.ctx) and m.ctx != ACK_CTX]
    rank = transport.rank
    # after a failed call, or when others were found waiting for this rank (it ended
    # before calls that they made, and they report it): expected, not a mismatch
    why = (
        " (after a call of this rank failed)"
        if transport.waits_failed
        else " (it finished while other ranks waited for it)"
        if transport.awaited_at_exit
        else ""
    )
    excused = coll if why else []
    if p2p or excused:
        _warn(
            f"rank {rank} exits with {len(p2p) + len(excused)} message(s) that no receive took"
            + (why if excused else "")
            + ":\n"
            + "\n".join(describe_leftovers(p2p + excused, names, _world_rank))
        )
    if excused:
        return
    if coll:
        sys.stdout.flush()
        sys.stderr.write(
            f"treecast: rank {rank}: CollectiveMismatchError at exit: messages of "
            f"collectives that this rank never received (the ranks called different "
            f"collectives, or the same ones in another order or with other roots):\n"
            + "\n".join(describe_leftovers(coll, names, _world_rank))
            + "\n"
        )
        sys.stderr.flush()
        os._exit(1)


def _warn(message: str) -> None:
    """An :class:`UnreceivedMessageWarning` at exit (on stderr if warnings are errors: an
    exception raised in an ``atexit`` hook would only be printed as ignored)."""
    try:
        warnings.warn_explicit(
            message,
            UnreceivedMessageWarning,
            "treecast",  # no source line to show: the process is exiting
            0,
        )
    except UnreceivedMessageWarning as exc:
        sys.stderr.write(f"treecast: UnreceivedMessageWarning: {exc}\n")


def _world_rank(rank: int) -> str:
    return f"world rank {rank}"


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
