"""treecast: fast, safe collective communication for Python processes.

import treecast
comm = treecast.world()
data = comm.bcast(data, root=0)
"""

from __future__ import annotations

# Comm.Create_cart and kin make the classes this module records with Comm when imported
from . import topocomm  # noqa: F401
from .comm import Comm
from .constants import ANY_SOURCE, ANY_TAG, IN_PLACE, PROC_NULL, TAG_UB, UNDEFINED
from .errors import (
    CollectiveMismatchError,
    CommunicatorClosedError,
    DeadlockError,
    DeserializationError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    InvalidBufferError,
    InvalidRankError,
    InvalidTagError,
    MissingCapabilityError,
    ProcessFailedError,
    RemoteError,
    SenderFailedError,
    SerializationError,
    TimeoutError,
    TreecastError,
    TruncationError,
    UnsupportedLauncherError,
)
from .launch import launch
from .ops import (
    BAND,
    BOR,
    BXOR,
    LAND,
    LOR,
    LXOR,
    MAX,
    MAXLOC,
    MIN,
    MINLOC,
    NO_OP,
    PROD,
    REPLACE,
    SUM,
    Op,
)
from .request import Request
from .runtime.world import self_comm, world
from .shared import shared_array
from .status import Status

__version__ = "0.1.0"


__all__ = [
    "ANY_SOURCE",
    "ANY_TAG",
    "BAND",
    "BOR",
    "BXOR",
    "IN_PLACE",
    "LAND",
    "LOR",
    "LXOR",
    "MAX",
    "MAXLOC",
    "MIN",
    "MINLOC",
    "NO_OP",
    "PROC_NULL",
    "PROD",
    "REPLACE",
    "SUM",
    "TAG_UB",
    "UNDEFINED",
    "CollectiveMismatchError",
    "Comm",
    "CommunicatorClosedError",
    "DeadlockError",
    "DeserializationError",
    "InvalidArgumentError",
    "InvalidArgumentTypeError",
    "InvalidBufferError",
    "InvalidRankError",
    "InvalidTagError",
    "MissingCapabilityError",
    "Op",
    "ProcessFailedError",
    "RemoteError",
    "Request",
    "SenderFailedError",
    "SerializationError",
    "Status",
    "TimeoutError",
    "TreecastError",
    "TruncationError",
    "UnsupportedLauncherError",
    "__version__",
    "launch",
    "self_comm",
    "shared_array",
    "world",
]
