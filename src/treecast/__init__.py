"""treecast: fast, safe collective communication for Python processes.

    import treecast
    comm = treecast.world()
    data = comm.bcast(data, root=0)
"""

from __future__ import annotations

from .comm import Comm
from .constants import ANY_SOURCE, ANY_TAG, IN_PLACE, PROC_NULL, TAG_UB, UNDEFINED
from .errors import (
    CommunicatorClosedError,
    DeserializationError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    InvalidBufferError,
    InvalidRankError,
    InvalidTagError,
    ProcessFailedError,
    RemoteError,
    SerializationError,
    TimeoutError,
    TreecastError,
    TruncationError,
)
from .request import Request
from .runtime.world import self_comm, world
from .status import Status

__version__ = "0.1.0"


def launch(fn, nprocs, *args, **kwargs):  # type: ignore[no-untyped-def]
    """Run ``fn(*args)`` on ``nprocs`` new ranks; return the list of results (see
    :func:`treecast.launch.launch`)."""
    from .launch import launch as _launch

    return _launch(fn, nprocs, *args, **kwargs)


__all__ = [
    "ANY_SOURCE",
    "ANY_TAG",
    "IN_PLACE",
    "PROC_NULL",
    "TAG_UB",
    "UNDEFINED",
    "Comm",
    "CommunicatorClosedError",
    "DeserializationError",
    "InvalidArgumentError",
    "InvalidArgumentTypeError",
    "InvalidBufferError",
    "InvalidRankError",
    "InvalidTagError",
    "ProcessFailedError",
    "RemoteError",
    "Request",
    "SerializationError",
    "Status",
    "TimeoutError",
    "TreecastError",
    "TruncationError",
    "__version__",
    "launch",
    "self_comm",
    "world",
]
