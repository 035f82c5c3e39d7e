"""The treecast exception family.

Every error raised by treecast derives from :class:`TreecastError`. Argument errors also
derive from the built-in ``ValueError`` or ``TypeError`` so that code written for mpi4py or
plain Python keeps catching them.

Errors that MPI itself reports with an *error class* (a bad rank, root, tag or count, a
truncated message, a freed communicator, a dead peer) also derive from :class:`MPIError`,
which is ``treecast.MPI.Exception``: ``except MPI.Exception`` catches them and
``Get_error_class()`` returns the class (``ERR_RANK``, ``ERR_ROOT``, ...), with no
translation layer between the native API and the mpi4py-compatible one.
"""

from __future__ import annotations

import builtins

# MPI error classes, with MPICH's values (those mpi4py reports when built on MPICH).
SUCCESS = 0
ERR_BUFFER = 1
ERR_COUNT = 2
ERR_TYPE = 3
ERR_TAG = 4
ERR_COMM = 5
ERR_RANK = 6
ERR_ROOT = 7
ERR_GROUP = 8
ERR_OP = 9
ERR_TOPOLOGY = 10
ERR_DIMS = 11
ERR_ARG = 12
ERR_UNKNOWN = 13
ERR_TRUNCATE = 14
ERR_OTHER = 15
ERR_INTERN = 16
ERR_IN_STATUS = 17
ERR_PENDING = 18
ERR_REQUEST = 19
ERR_PROC_FAILED = 13
"""MPICH without fault-tolerance extensions reports failed processes as ``ERR_UNKNOWN``."""
ERR_LASTCODE = 1073741823

ERROR_STRINGS = {
    SUCCESS: "no error",
    ERR_BUFFER: "invalid buffer pointer",
    ERR_COUNT: "invalid count argument",
    ERR_TYPE: "invalid datatype",
    ERR_TAG: "invalid tag",
    ERR_COMM: "invalid communicator",
    ERR_RANK: "invalid rank",
    ERR_ROOT: "invalid root",
    ERR_GROUP: "invalid group",
    ERR_OP: "invalid reduce operation",
    ERR_TOPOLOGY: "invalid topology",
    ERR_DIMS: "invalid dimension argument",
    ERR_ARG: "invalid argument of some other kind",
    ERR_UNKNOWN: "unknown error",
    ERR_TRUNCATE: "message truncated",
    ERR_OTHER: "other MPI error",
    ERR_INTERN: "internal MPI error",
    ERR_IN_STATUS: "error code is in status",
    ERR_PENDING: "pending request",
    ERR_REQUEST: "invalid request",
}
"""Short descriptions of the error classes, as ``MPI.Get_error_string`` returns them."""


def error_string(errorcode: int) -> str:
    """The description of an MPI error class (``"invalid root"`` for ``ERR_ROOT``).

    Raises:
        InvalidArgumentError: ``errorcode`` is not a known error class.
    """
    try:
        return ERROR_STRINGS[errorcode]
    except (KeyError, TypeError):
        raise InvalidArgumentError(
            f"Get_error_string: {errorcode!r} is not an MPI error class; expected one of "
            f"{sorted(ERROR_STRINGS)}"
        ) from None


class TreecastError(Exception):
    """Base class of every error raised by treecast."""


class MPIError(TreecastError, builtins.RuntimeError):
    """An error that MPI reports with an error class; ``treecast.MPI.Exception``.

    treecast's own errors of this kind (:class:`InvalidRankError`, :class:`TruncationError`,
    ...) are constructed with a message and carry their class's ``error_class``;
    ``MPIError(code)`` (mpi4py's ``MPI.Exception(ierr)``) makes one for any error class, with
    its standard description as the message.

    Attributes:
        error_class: the MPI error class (``ERR_ROOT``, ...).
    """

    error_class: int = ERR_OTHER

    def __init__(self, *args: object) -> None:
        if not args:
            args = (SUCCESS,)
        first = args[0]
        if len(args) == 1 and isinstance(first, int) and not isinstance(first, bool):
            self.error_class = first
            args = (ERROR_STRINGS.get(first, f"MPI error class {first}"),)
        super().__init__(*args)

    @property
    def error_code(self) -> int:
        """The error code; treecast's codes are their error classes."""
        return self.error_class

    @property
    def error_string(self) -> str:
        """The error's message."""
        return str(self)

    def Get_error_class(self) -> int:
        """The MPI error class (``ERR_ROOT``, ``ERR_RANK``, ...)."""
        return self.error_class

    def Get_error_code(self) -> int:
        """The error code; treecast's codes are their error classes."""
        return self.error_class

    def Get_error_string(self) -> str:
        """The error's message."""
        return str(self)

    def __int__(self) -> int:
        return self.error_class


class InvalidArgumentError(TreecastError, ValueError):
    """An argument has a value outside its valid range; raised before anything is sent."""


class InvalidRankError(InvalidArgumentError, MPIError):
    """A rank, source or destination is outside ``0 <= r < size`` (``ERR_RANK``)."""

    error_class = ERR_RANK


class InvalidRootError(InvalidRankError):
    """A collective's root is outside ``0 <= root < size`` (``ERR_ROOT``)."""

    error_class = ERR_ROOT


class InvalidTagError(InvalidArgumentError, MPIError):
    """A tag is negative (other than ``ANY_TAG`` on receives) or above ``TAG_UB``
    (``ERR_TAG``)."""

    error_class = ERR_TAG


class InvalidCountError(InvalidArgumentError, MPIError):
    """An item count is negative or does not fit its buffer (``ERR_COUNT``)."""

    error_class = ERR_COUNT


class InvalidArgumentTypeError(TreecastError, TypeError):
    """An argument has the wrong type (a rank that is not an integer, for example)."""


class InvalidBufferError(TreecastError, TypeError):
    """An object given as a buffer does not support the buffer protocol, or is read-only
    where a receive buffer is needed."""


class SerializationError(TreecastError, TypeError):
    """An object could not be pickled on its sender. A point-to-point send sends nothing; in
    a collective a marker goes in its place, the collective ends on every rank, and the ranks
    that needed the object raise :class:`SenderFailedError`."""


class DeserializationError(TreecastError):
    """Received bytes could not be rebuilt into an object on the receiver."""


class SenderFailedError(TreecastError):
    """Another rank could not send its part of this collective (its object could not be
    pickled, or the shared memory for it could not be made). That rank sent a marker in its
    place, so the collective still ended on every rank, in step; this is raised on each rank
    whose result needed that part, and the failing rank raises its own error."""


class TruncationError(MPIError):
    """A received message is larger than the receive buffer; nothing was written past it
    (``ERR_TRUNCATE``)."""

    error_class = ERR_TRUNCATE


class CommunicatorClosedError(MPIError):
    """An operation was attempted on a freed communicator or a closed transport
    (``ERR_COMM``)."""

    error_class = ERR_COMM


class CollectiveMismatchError(TreecastError):
    """Ranks called different collectives, or the same one with different roots, at the
    same point of a communicator's sequence; raised on the rank that notices."""


class ProcessFailedError(MPIError):
    """A peer process died while this rank was communicating with it (``ERR_PROC_FAILED``)."""

    error_class = ERR_PROC_FAILED

    def __init__(self, message: str, ranks: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        self.ranks = ranks


class TimeoutError(TreecastError, builtins.TimeoutError):
    """A blocking call did not complete within its timeout."""


class DeadlockError(TimeoutError):
    """Every running rank of the job is blocked in a treecast call and nothing has moved
    for a settle time: no call can complete, so each blocked rank raises this (no timeout
    needed). The message is the hang report: each rank's operation, sequence number, root
    and the peer it waits for."""


class UnreceivedMessageWarning(UserWarning):
    """A rank exits with point-to-point messages that no receive took (MPI allows it, but
    it is usually a bug), or with collective messages after one of its calls failed."""


class MissingCapabilityError(TreecastError):
    """An operation needs a capability (``node_memory``, say) that the communicator's
    transport does not offer; the message names the operation, the capability and the
    transport."""


class UnsupportedLauncherError(TreecastError, NotImplementedError):
    """This process was started as one of several by a launcher treecast cannot join yet
    (``mpiexec``, ``srun``): rather than give each process a world of its own, silently,
    :func:`treecast.world` raises, naming the launcher's variables and what to do."""


class NotImplementedName(TreecastError, NotImplementedError, AttributeError):
    """An mpi4py name that treecast does not implement. Also an ``AttributeError``, so that
    ``hasattr(MPI, name)`` and ``getattr(obj, name, default)`` treat it as absent."""


class RemoteError(TreecastError):
    """Raised by :func:`treecast.launch` when a rank's function raised; carries its traceback."""

    def __init__(self, message: str, rank: int, remote_traceback: str = "") -> None:
        super().__init__(message)
        self.rank = rank
        self.remote_traceback = remote_traceback


__all__ = [
    "CollectiveMismatchError",
    "CommunicatorClosedError",
    "DeserializationError",
    "InvalidArgumentError",
    "InvalidArgumentTypeError",
    "InvalidBufferError",
    "InvalidCountError",
    "InvalidRankError",
    "InvalidRootError",
    "InvalidTagError",
    "MPIError",
    "MissingCapabilityError",
    "NotImplementedName",
    "ProcessFailedError",
    "RemoteError",
    "SerializationError",
    "TimeoutError",
    "TreecastError",
    "TruncationError",
    "UnsupportedLauncherError",
]
