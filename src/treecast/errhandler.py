"""mpi4py's error handlers: names a communicator records (treecast always raises)."""

from __future__ import annotations


class Errhandler:
    """An error handler name. treecast always reports errors as exceptions (mpi4py's
    default, ``ERRORS_RETURN`` with exceptions); ``ERRORS_ARE_FATAL`` and ``ERRORS_ABORT``
    are recorded by ``Set_errhandler`` and turn an error into an abort of the job only in
    the sense that an uncaught exception ends the job."""

    __slots__ = ("_name",)

    def __init__(self, name: str = "ERRHANDLER_NULL") -> None:
        self._name = name

    def Free(self) -> None:
        """Predefined error handlers are not freed."""

    def __bool__(self) -> bool:
        return self._name != "ERRHANDLER_NULL"

    def __repr__(self) -> str:
        return f"<treecast.MPI.Errhandler {self._name}>"


ERRHANDLER_NULL = Errhandler()
ERRORS_RETURN = Errhandler("ERRORS_RETURN")
ERRORS_ARE_FATAL = Errhandler("ERRORS_ARE_FATAL")
ERRORS_ABORT = Errhandler("ERRORS_ABORT")
