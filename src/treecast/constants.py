"""Special ranks, tags and sentinels, with mpi4py's (MPICH's) values."""

from __future__ import annotations

ANY_SOURCE = -2
"""Receive from any rank."""
ANY_TAG = -1
"""Receive with any tag."""
PROC_NULL = -1
"""The null peer: a send to it or a receive from it completes at once and moves nothing."""
ROOT = -3
UNDEFINED = -32766
"""``split`` color meaning: this rank joins no new communicator (it gets None)."""
TAG_UB = 2**31 - 1
"""Largest valid tag."""


class _InPlace:
    """The ``IN_PLACE`` sentinel for buffer collectives."""

    _instance: _InPlace | None = None

    def __new__(cls) -> _InPlace:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "IN_PLACE"

    def __reduce__(self) -> str:
        return "IN_PLACE"


IN_PLACE = _InPlace()


class _Bottom:
    """mpi4py's ``MPI.BOTTOM``: the address 0 that derived datatypes with absolute
    addresses are relative to. treecast has no derived datatypes, so a buffer argument of
    ``BOTTOM`` raises ``NotImplementedError``."""

    _instance: _Bottom | None = None

    def __new__(cls) -> _Bottom:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "BOTTOM"

    def __reduce__(self) -> str:
        return "BOTTOM"


BOTTOM = _Bottom()


# Attribute keys of ``Comm.Get_attr`` (mpi4py's ``MPI.TAG_UB``, ... are keys, not values).
KEYVAL_TAG_UB = 1681915905
KEYVAL_WTIME_IS_GLOBAL = 1681915911
KEYVAL_UNIVERSE_SIZE = 1681915913
KEYVAL_APPNUM = 1681915917
KEYVAL_HOST = 1681915907
KEYVAL_IO = 1681915909
