"""``mpi4py.util.pkl5`` under treecast: communicators that send objects with pickle
protocol 5 and out-of-band buffers, with no 2 GiB limit. treecast's own communicators already
do exactly that, so :class:`Intracomm` only wraps one and passes every call through.
"""

from __future__ import annotations

from typing import Any

from treecast import MPI

Request = MPI.Request


class Comm:
    """A communicator wrapper; every attribute is the wrapped communicator's."""

    def __init__(self, comm: Any = MPI.COMM_NULL) -> None:
        self.__dict__["_comm"] = comm._comm if isinstance(comm, Comm) else comm

    def __getattr__(self, name: str) -> Any:
        return getattr(self._comm, name)

    def __bool__(self) -> bool:
        return bool(self._comm)

    def __eq__(self, other: object) -> bool:
        return self._comm == (other._comm if isinstance(other, Comm) else other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<pkl5 {self._comm!r}>"


class Intracomm(Comm):
    """``pkl5.Intracomm(MPI.COMM_WORLD)``: the same communicator (treecast's pickling is
    already protocol 5 with out-of-band buffers)."""


Message = MPI.Message
