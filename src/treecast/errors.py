"""The treecast exception family.

Every error raised by treecast derives from :class:`TreecastError`. Argument errors also
derive from the built-in ``ValueError`` or ``TypeError`` so that code written for mpi4py or
plain Python keeps catching them.
"""

from __future__ import annotations

import builtins


class TreecastError(Exception):
    """Base class of every error raised by treecast."""


class InvalidArgumentError(TreecastError, ValueError):
    """An argument has a value outside its valid range; raised before anything is sent."""


class InvalidRankError(InvalidArgumentError):
    """A rank, source, destination or root is outside ``0 <= r < size``."""


class InvalidTagError(InvalidArgumentError):
    """A tag is negative (other than ``ANY_TAG`` on receives) or above ``TAG_UB``."""


class InvalidArgumentTypeError(TreecastError, TypeError):
    """An argument has the wrong type (a rank that is not an integer, for example)."""


class InvalidBufferError(TreecastError, TypeError):
    """An object given as a buffer does not support the buffer protocol, or is read-only
    where a receive buffer is needed."""


class SerializationError(TreecastError, TypeError):
    """An object could not be pickled on the sender (nothing was sent)."""


class DeserializationError(TreecastError):
    """Received bytes could not be rebuilt into an object on the receiver."""


class TruncationError(TreecastError):
    """A received message is larger than the receive buffer; nothing was written past it."""


class CommunicatorClosedError(TreecastError):
    """An operation was attempted on a freed communicator or a closed transport."""


class CollectiveMismatchError(TreecastError):
    """Ranks called different collectives, or the same one with different roots, at the
    same point of a communicator's sequence; raised on the rank that notices."""


class ProcessFailedError(TreecastError):
    """A peer process died while this rank was communicating with it."""

    def __init__(self, message: str, ranks: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        self.ranks = ranks


class TimeoutError(TreecastError, builtins.TimeoutError):
    """A blocking call did not complete within its timeout."""


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
    "InvalidRankError",
    "InvalidTagError",
    "ProcessFailedError",
    "RemoteError",
    "SerializationError",
    "TimeoutError",
    "TreecastError",
    "TruncationError",
]
