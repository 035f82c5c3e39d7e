"""Build the world communicator from the environment.

Started by ``treecast run`` (or :func:`treecast.launch`): the launcher's variables name the
rank, the size and what the transport needs (``TREECAST_TRANSPORT``, default ``shm``,
chooses it: see :mod:`treecast.transports.registry`). Started any other way: a world of
size 1.
"""

from __future__ import annotations

import atexit
import os
import threading

from ..comm import Comm
from ..errors import TreecastError
from ..transports import registry
from ..transports.base import Transport, launcher_watch
from ..transports.single import SingleRankTransport
from .env import ENV_JOB, ENV_LAUNCHER_PID, ENV_RANK, ENV_SIZE

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


def world() -> Comm:
    """The communicator of every rank of the job (mpi4py's ``COMM_WORLD``).

    Raises:
        TreecastError: the launcher's environment is inconsistent.
        InvalidArgumentError: ``TREECAST_TRANSPORT`` names no transport that can start here.
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
