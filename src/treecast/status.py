"""Status of a completed receive."""

from __future__ import annotations

from typing import Any


class Status:
    """Source, tag and size of a received message (mpi4py's ``MPI.Status``).

    Attributes:
        source: rank of the sender in the receiving communicator.
        tag: the message's tag.
        count: bytes received.
        error: 0 (success).
    """

    __slots__ = ("count", "error", "source", "tag")

    def __init__(self, source: int = -1, tag: int = -1, count: int = 0) -> None:
        self.source = source
        self.tag = tag
        self.count = count
        self.error = 0

    def Get_source(self) -> int:
        return self.source

    def Get_tag(self) -> int:
        return self.tag

    def Get_error(self) -> int:
        return self.error

    def Get_count(self, datatype: object = None) -> int:
        """Number of received items of ``datatype`` (bytes when None)."""
        if datatype is None:
            return self.count
        import numpy as np

        dt: Any = (
            datatype
            if isinstance(datatype, (type, str, np.dtype))
            else getattr(datatype, "dtype", datatype)
        )
        size = np.dtype(dt).itemsize
        return self.count // size

    def __repr__(self) -> str:
        return f"Status(source={self.source}, tag={self.tag}, count={self.count})"
