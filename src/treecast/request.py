"""Requests returned by non-blocking calls, with mpi4py's semantics.

A request is *active* (truthy) from the call that starts the operation until a completion
call (``wait``, ``test``, ``waitany``, ...) has seen it complete; it is then *null*
(falsy), like an ``MPI_Request`` handle set to ``MPI_REQUEST_NULL``. ``Request()`` is a null
request. Lowercase completion calls return Python objects (the received object, or None
for sends); capitalised ones return MPI's shapes (``Wait()`` returns True, ``Test()`` a
bool, ``Waitany`` an index). Completing a null request returns at once with an empty
status.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from .constants import PROC_NULL, UNDEFINED
from .errors import InvalidArgumentError, InvalidArgumentTypeError
from .status import Status
from .transports.base import RecvOp, SendOp, Transport

Statuses = Sequence[Status] | None


class Operation(Protocol):
    """What a request waits for: a transport's send or receive, or several as one."""

    @property
    def done(self) -> bool: ...

    @property
    def error(self) -> BaseException | None: ...


def _empty(status: Status | None) -> None:
    """Fill ``status`` as MPI does for a null request."""
    if status is not None:
        status._clear()


def _describe_op(op: SendOp | RecvOp) -> str:
    """``send to rank 2 (tag 7)``, ``receive from any rank (any tag)``: world ranks."""
    if isinstance(op, SendOp):
        return f"send to rank {op.dest} (tag {op.tag})"
    source = "any rank" if op.source < 0 else f"rank {op.source}"
    tag = "any tag" if op.want_tag < 0 else f"tag {op.want_tag}"
    return f"receive from {source} ({tag})"


def proc_null_status(status: Status) -> None:
    """MPI's status of a receive from ``PROC_NULL``: source PROC_NULL, tag ANY_TAG, 0 bytes."""
    status._clear()
    status.source = PROC_NULL


class _DoneOp(SendOp):
    """An operation that has completed before it started (one with ``PROC_NULL``)."""

    def __init__(self) -> None:
        super().__init__(PROC_NULL, 0, 0, [])
        self.done = True


class Request:
    """A non-blocking operation in flight (``isend``, ``irecv``, ``Isend``, ``Irecv``, the
    ``I*`` collectives), or a null request.

    ``Request()`` is a null request; ``Request(other)`` refers to the same operation as
    ``other`` (equal to it), as mpi4py's copy constructor. Every completion call makes
    progress on every operation of this rank.

    Raises:
        InvalidArgumentTypeError: the argument is neither a Request nor a transport.
    """

    __slots__ = (
        "_cancelled",
        "_done",
        "_fill",
        "_finish",
        "_handle",
        "_op",
        "_result",
        "_transport",
    )
    _transport: Transport | None
    _op: Operation | None
    _finish: Callable[[Any], Any] | None
    _fill: Callable[[Any, Status], None] | None
    _done: bool
    _handle: RequestHandle

    def __init__(
        self,
        transport: Transport | Request | None = None,
        op: Operation | None = None,
        finish: Callable[[Any], Any] | None = None,
        fill: Callable[[Any, Status], None] | None = None,
    ) -> None:
        """Internal form: ``Request(transport, op, finish, fill)``, where ``finish(op)``
        gives a completed receive's result and ``fill(op, status)`` fills a status from it."""
        self._cancelled = False
        self._result: Any = None
        if isinstance(transport, Request):
            other = transport
            self._handle = other._handle
            self._transport = other._transport
            self._op = other._op
            self._finish = other._finish
            self._fill = other._fill
            self._done = other._done
            return
        if transport is not None and not isinstance(transport, Transport):
            raise InvalidArgumentTypeError(
                f"Request: expected a Request to copy, or nothing for a null request; "
                f"got {type(transport).__name__}"
            )
        self._transport = transport
        self._op = op
        self._finish = finish
        self._fill = fill
        self._done = transport is None
        self._handle = RequestHandle(self)

    # ---- the protocol subclasses (collective requests) override ---------------------------
    def _is_active(self) -> bool:
        """Whether the request stands for an operation that completion calls wait for."""
        return not self._done

    def _ready(self) -> bool:
        """True once the operation has completed (makes no progress)."""
        op = self._op
        return op is None or op.done

    def _complete(self, status: Status | None) -> Any:
        """Finish a completed operation: fill ``status``, make the request null, return the
        result (or raise the operation's error)."""
        op = self._op
        self._done = True
        if op is None:
            _empty(status)
            return None
        if op.error is not None:
            raise op.error
        if status is not None:
            self._status_of(op, status)
        if self._finish is not None and not self._cancelled:
            return self._finish(op)
        return self._result

    def _status_of(self, op: Operation, status: Status) -> None:
        status._clear()
        if self._cancelled:
            status.cancelled = True
        elif self._fill is not None:
            self._fill(op, status)

    # ---- one request ------------------------------------------------------------------------
    def _progress_until_ready(self, timeout: float | None, what: str) -> None:
        if not self._ready():
            assert self._transport is not None
            op = self._op
            if type(self) is Request and isinstance(op, (SendOp, RecvOp)):
                # a send or receive: name it in reports, and let the transport see whom it
                # waits for (a finished or dead peer then raises instead of hanging)
                self._transport.wait_op(op, timeout, _describe_op(op))
            else:
                self._transport.wait(self._ready, timeout, what)

    def _wait_blocking(self, status: Status | None = None, timeout: float | None = None) -> Any:
        """:meth:`wait`, for a blocking call that made this request: when the wait fails (a
        timeout, a dead peer), a receive that has not matched yet is withdrawn, so that it
        cannot take the message a later call (a retry) waits for."""
        try:
            return self.wait(status, timeout)
        except BaseException:
            op = self._op
            if isinstance(op, RecvOp) and self._transport is not None:
                self._transport.cancel(op)
            raise

    def wait(self, status: Status | None = None, timeout: float | None = None) -> Any:
        """Block until complete; return the received object (object receives and object
        collectives) or None. A null request returns None at once.

        Raises:
            TimeoutError: not complete within ``timeout`` seconds.
            TruncationError: a buffer receive got a larger message.
            DeserializationError: an object receive got bytes that cannot be rebuilt.
        """
        if self._done:
            _empty(status)
            return None
        self._progress_until_ready(timeout, "request wait")
        return self._complete(status)

    def Wait(self, status: Status | None = None, timeout: float | None = None) -> bool:
        """Block until complete; return True (mpi4py's ``Request.Wait``).

        Raises:
            TimeoutError, TruncationError, DeserializationError: as :meth:`wait`.
        """
        self.wait(status, timeout)
        return True

    def test(self, status: Status | None = None) -> tuple[bool, Any]:
        """Make progress; return ``(True, result)`` if complete (the request becomes null),
        else ``(False, None)``.

        Raises:
            TruncationError, DeserializationError: as :meth:`wait`.
        """
        if self._done:
            _empty(status)
            return True, None
        if not self._ready():
            assert self._transport is not None
            self._transport.progress()
            if not self._ready():
                return False, None
        return True, self._complete(status)

    def Test(self, status: Status | None = None) -> bool:
        """Make progress; return whether the operation has completed (then it is null).

        Raises:
            TruncationError, DeserializationError: as :meth:`wait`.
        """
        return self.test(status)[0]

    def get_status(self, status: Status | None = None) -> bool:
        """Whether the operation has completed, without completing the request (it stays
        active); fills ``status`` when it has.

        Raises:
            TruncationError: a completed buffer receive got a larger message.
        """
        if self._done:
            _empty(status)
            return True
        if not self._ready():
            assert self._transport is not None
            self._transport.progress()
            if not self._ready():
                return False
        op = self._op
        if op is not None:
            if op.error is not None:
                raise op.error
            if status is not None:
                self._status_of(op, status)
        return True

    Get_status = get_status

    def cancel(self) -> bool:
        """Withdraw a receive that has not matched yet; the request then completes with a
        cancelled status. Sends, collectives and receives that have matched are not
        cancelled. Returns True if the receive was withdrawn."""
        op = self._op
        if self._done or not isinstance(op, RecvOp) or self._transport is None:
            return False
        if self._transport.cancel(op):
            self._cancelled = True
            op.done = True
            return True
        return False

    def Cancel(self) -> None:
        """mpi4py's ``Request.Cancel``: :meth:`cancel`, without a result."""
        self.cancel()

    def Free(self) -> None:
        """Make the request null without waiting; the operation itself goes on."""
        self._done = True

    free = Free

    @property
    def done(self) -> bool:
        """True once the operation has completed (no progress is made by reading this)."""
        return self._done or self._ready()

    def __bool__(self) -> bool:
        return not self._done

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Request):
            return NotImplemented
        if self._done or other._done:
            return self._done and other._done
        return self._handle is other._handle or (self._op is not None and self._op is other._op)

    def __reduce__(self) -> tuple[Any, ...]:
        """A null request pickles (as a new null request); an active one cannot.

        Raises:
            ValueError: the request is active.
        """
        if self._done:
            return (Request, ())
        raise ValueError("cannot pickle an active request: it exists only in this process")

    @property
    def handle(self) -> RequestHandle:
        """An opaque handle: :meth:`fromhandle` makes a request equal to this one (as copying
        an ``MPI_Request`` does; completing one copy does not complete the others)."""
        return self._handle

    @classmethod
    def fromhandle(cls, handle: RequestHandle) -> Request:
        """A request equal to the one whose :attr:`handle` this is.

        Raises:
            InvalidArgumentTypeError: ``handle`` is not a request handle.
        """
        if not isinstance(handle, RequestHandle):
            raise InvalidArgumentTypeError(
                f"fromhandle: expected a Request.handle, got {type(handle).__name__}"
            )
        return cls(handle.request)

    def toint(self) -> int:
        """-1: treecast requests have no integer handle (mpi4py's ``Request.toint``)."""
        return -1

    def py2f(self) -> int:
        """-1: treecast requests have no Fortran handle."""
        return -1

    __hash__ = None  # type: ignore[assignment]  # equality changes on completion, as mpi4py's

    def __repr__(self) -> str:
        state = "null" if self._done else "active"
        return f"<{type(self).__name__} {state}>"

    # ---- many requests ----------------------------------------------------------------------
    @staticmethod
    def _transport_of(requests: Sequence[Request]) -> Transport | None:
        for r in requests:
            if r._is_active() and r._transport is not None:
                return r._transport
        return None

    @staticmethod
    def _wait_any_ready(requests: Sequence[Request], timeout: float | None, what: str) -> None:
        transport = Request._transport_of(requests)
        if transport is not None:
            transport.wait(
                lambda: any(r._is_active() and r._ready() for r in requests), timeout, what
            )

    @staticmethod
    def _status_list(statuses: Statuses, n: int) -> list[Status | None]:
        """Statuses for ``n`` completions: a list is extended with new statuses to length
        ``n`` (mpi4py's behaviour); a tuple is used as far as it goes."""
        if statuses is None:
            return [None] * n
        if isinstance(statuses, list):
            while len(statuses) < n:
                statuses.append(Status())
        return [statuses[i] if i < len(statuses) else None for i in range(n)]

    @classmethod
    def waitall(
        cls,
        requests: Sequence[Request],
        statuses: Statuses = None,
        timeout: float | None = None,
    ) -> list[Any]:
        """Wait for every request; return their results in order (None for sends and null
        requests). A list of ``statuses`` is extended to one per request.

        Raises:
            TimeoutError: not all complete within ``timeout`` seconds.
            TruncationError, DeserializationError: as :meth:`wait` (after all completed).
        """
        transport = cls._transport_of(requests)
        if transport is not None:
            transport.wait(
                lambda: all(not r._is_active() or r._ready() for r in requests), timeout, "waitall"
            )
        sts = cls._status_list(statuses, len(requests))
        return [r.wait(st) for r, st in zip(requests, sts, strict=True)]

    @classmethod
    def Waitall(
        cls,
        requests: Sequence[Request],
        statuses: Statuses = None,
        timeout: float | None = None,
    ) -> bool:
        """:meth:`waitall`, returning True (mpi4py's ``Request.Waitall``).

        Raises:
            TimeoutError, TruncationError, DeserializationError: as :meth:`waitall`.
        """
        cls.waitall(requests, statuses, timeout)
        return True

    @classmethod
    def testall(
        cls, requests: Sequence[Request], statuses: Statuses = None
    ) -> tuple[bool, list[Any] | None]:
        """If every request has completed, complete them all and return ``(True, results)``;
        otherwise return ``(False, None)`` and leave every request active.

        Raises:
            TruncationError, DeserializationError: as :meth:`wait`.
        """
        transport = cls._transport_of(requests)
        if transport is not None:
            transport.progress()
            if not all(not r._is_active() or r._ready() for r in requests):
                return False, None
        sts = cls._status_list(statuses, len(requests))
        return True, [r.wait(st) for r, st in zip(requests, sts, strict=True)]

    @classmethod
    def Testall(cls, requests: Sequence[Request], statuses: Statuses = None) -> bool:
        """:meth:`testall`, returning only the flag.

        Raises:
            TruncationError, DeserializationError: as :meth:`wait`.
        """
        return cls.testall(requests, statuses)[0]

    @classmethod
    def waitany(
        cls,
        requests: Sequence[Request],
        status: Status | None = None,
        timeout: float | None = None,
    ) -> tuple[int, Any]:
        """Wait until one active request completes; complete it and return ``(index,
        result)``. With no active request, return ``(UNDEFINED, None)``.

        Raises:
            TimeoutError: none completed within ``timeout`` seconds.
            TruncationError, DeserializationError: as :meth:`wait`.
        """
        cls._wait_any_ready(requests, timeout, "waitany")
        for i, r in enumerate(requests):
            if r._is_active() and r._ready():
                return i, r._complete(status)
        _empty(status)
        return UNDEFINED, None

    @classmethod
    def Waitany(
        cls,
        requests: Sequence[Request],
        status: Status | None = None,
        timeout: float | None = None,
    ) -> int:
        """:meth:`waitany`, returning only the index.

        Raises:
            TimeoutError, TruncationError, DeserializationError: as :meth:`waitany`.
        """
        return cls.waitany(requests, status, timeout)[0]

    @classmethod
    def testany(
        cls, requests: Sequence[Request], status: Status | None = None
    ) -> tuple[int, bool, Any]:
        """Make progress; if an active request has completed, complete it and return
        ``(index, True, result)``; if none has, ``(UNDEFINED, False, None)``; with no active
        request, ``(UNDEFINED, True, None)``.

        Raises:
            TruncationError, DeserializationError: as :meth:`wait`.
        """
        transport = cls._transport_of(requests)
        if transport is None:
            _empty(status)
            return UNDEFINED, True, None
        transport.progress()
        for i, r in enumerate(requests):
            if r._is_active() and r._ready():
                return i, True, r._complete(status)
        return UNDEFINED, False, None

    @classmethod
    def Testany(cls, requests: Sequence[Request], status: Status | None = None) -> tuple[int, bool]:
        """:meth:`testany`, returning ``(index, flag)``.

        Raises:
            TruncationError, DeserializationError: as :meth:`wait`.
        """
        index, flag, _ = cls.testany(requests, status)
        return index, flag

    @classmethod
    def _complete_ready(
        cls, requests: Sequence[Request], statuses: Statuses
    ) -> tuple[list[int], list[Any]]:
        ready = [i for i, r in enumerate(requests) if r._is_active() and r._ready()]
        sts = cls._status_list(statuses, len(ready))
        results = [requests[i]._complete(st) for i, st in zip(ready, sts, strict=True)]
        return ready, results

    @classmethod
    def waitsome(
        cls,
        requests: Sequence[Request],
        statuses: Statuses = None,
        timeout: float | None = None,
    ) -> tuple[list[int] | None, list[Any] | None]:
        """Wait until at least one active request completes; complete every one that has
        and return ``(indices, results)``. With no active request, ``(None, None)``. A list
        of ``statuses`` is extended to one per completed request.

        Raises:
            TimeoutError: none completed within ``timeout`` seconds.
            TruncationError, DeserializationError: as :meth:`wait`.
        """
        if cls._transport_of(requests) is None:
            return None, None
        cls._wait_any_ready(requests, timeout, "waitsome")
        return cls._complete_ready(requests, statuses)

    @classmethod
    def Waitsome(
        cls,
        requests: Sequence[Request],
        statuses: Statuses = None,
        timeout: float | None = None,
    ) -> list[int] | None:
        """:meth:`waitsome`, returning only the indices (None with no active request).

        Raises:
            TimeoutError, TruncationError, DeserializationError: as :meth:`waitsome`.
        """
        return cls.waitsome(requests, statuses, timeout)[0]

    @classmethod
    def testsome(
        cls, requests: Sequence[Request], statuses: Statuses = None
    ) -> tuple[list[int] | None, list[Any] | None]:
        """Make progress; complete every active request that has completed and return
        ``(indices, results)`` (``([], [])`` if none has); with no active request,
        ``(None, None)``.

        Raises:
            TruncationError, DeserializationError: as :meth:`wait`.
        """
        transport = cls._transport_of(requests)
        if transport is None:
            return None, None
        transport.progress()
        return cls._complete_ready(requests, statuses)

    @classmethod
    def Testsome(cls, requests: Sequence[Request], statuses: Statuses = None) -> list[int] | None:
        """:meth:`testsome`, returning only the indices (None with no active request).

        Raises:
            TruncationError, DeserializationError: as :meth:`wait`.
        """
        return cls.testsome(requests, statuses)[0]

    @classmethod
    def get_status_any(
        cls, requests: Sequence[Request], status: Status | None = None
    ) -> tuple[int, bool]:
        """Like :meth:`Testany` without completing anything: ``(index, True)`` for the first
        completed active request, ``(UNDEFINED, False)`` if none has, ``(UNDEFINED, True)``
        with no active request.

        Raises:
            TruncationError: a completed buffer receive got a larger message.
        """
        transport = cls._transport_of(requests)
        if transport is None:
            _empty(status)
            return UNDEFINED, True
        transport.progress()
        for i, r in enumerate(requests):
            if r._is_active() and r._ready():
                r.get_status(status)
                return i, True
        return UNDEFINED, False

    Get_status_any = get_status_any

    @classmethod
    def get_status_all(cls, requests: Sequence[Request], statuses: Statuses = None) -> bool:
        """Whether every request has completed, without completing any; fills ``statuses``
        (a list is extended to one per request) when they all have.

        Raises:
            TruncationError: a completed buffer receive got a larger message.
        """
        transport = cls._transport_of(requests)
        if transport is not None:
            transport.progress()
            if not all(not r._is_active() or r._ready() for r in requests):
                return False
        sts = cls._status_list(statuses, len(requests))
        for r, st in zip(requests, sts, strict=True):
            r.get_status(st)
        return True

    Get_status_all = get_status_all

    @classmethod
    def get_status_some(
        cls, requests: Sequence[Request], statuses: Statuses = None
    ) -> list[int] | None:
        """Indices of the active requests that have completed, without completing them
        (None with no active request).

        Raises:
            TruncationError: a completed buffer receive got a larger message.
        """
        transport = cls._transport_of(requests)
        if transport is None:
            return None
        transport.progress()
        ready = [i for i, r in enumerate(requests) if r._is_active() and r._ready()]
        sts = cls._status_list(statuses, len(ready))
        for i, st in zip(ready, sts, strict=True):
            requests[i].get_status(st)
        return ready

    Get_status_some = get_status_some


class RequestHandle:
    """What :attr:`Request.handle` returns: shared by a request and its copies."""

    __slots__ = ("request",)

    def __init__(self, request: Request) -> None:
        self.request = request


class Grequest(Request):
    """mpi4py's generalized requests; not implemented.

    Raises:
        TypeError: when constructed from another request (as mpi4py).
        NotImplementedError: ``Grequest.Start``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("Grequest: generalized requests are not implemented in treecast")

    @classmethod
    def Start(cls, *args: Any, **kwargs: Any) -> Grequest:
        """Not implemented.

        Raises:
            NotImplementedError: always.
        """
        raise NotImplementedError("Grequest.Start: generalized requests are not implemented")


class Prequest(Request):
    """A persistent request (``Send_init``, ``Recv_init``, ...): ``Start()`` begins one
    round of its operation, a completion call ends it, and the request stays usable (truthy,
    inactive) until ``Free()``. Completion calls treat an inactive one as null.

    Args:
        start: begins one round and returns its request.
    """

    __slots__ = ("_start",)
    _start: Callable[[], Request] | None

    def __init__(self, start: Callable[[], Request] | Prequest | None = None) -> None:
        """``Prequest(start)``; ``Prequest(other)`` is a copy of ``other``; ``Prequest()``
        a null persistent request."""
        if isinstance(start, Prequest):
            super().__init__(start)
            self._start = start._start
            return
        super().__init__()
        self._start = start
        self._done = start is None

    def _is_active(self) -> bool:
        return not self._done and self._op is not None

    def _complete(self, status: Status | None) -> Any:
        try:
            return super()._complete(status)
        finally:
            self._op = self._finish = self._fill = None
            self._cancelled = False
            self._done = self._start is None

    def wait(self, status: Status | None = None, timeout: float | None = None) -> Any:
        """Block until the current round completes (at once if inactive); return its
        result.

        Raises:
            TimeoutError, TruncationError, DeserializationError: as :meth:`Request.wait`.
        """
        if self._op is None:
            _empty(status)
            return None
        return super().wait(status, timeout)

    def test(self, status: Status | None = None) -> tuple[bool, Any]:
        """``(True, result)`` once the current round has completed (at once if inactive).

        Raises:
            TruncationError, DeserializationError: as :meth:`Request.wait`.
        """
        if self._op is None:
            _empty(status)
            return True, None
        return super().test(status)

    def Start(self) -> None:
        """Begin one round of the operation.

        Raises:
            InvalidArgumentError: the request is active (its round has not been completed)
                or was freed.
        """
        if self._start is None or self._done:
            raise InvalidArgumentError("Start: the persistent request was freed")
        if self._op is not None:
            raise InvalidArgumentError(
                "Start: the persistent request is active; complete it (Wait, Test...) first"
            )
        inner = self._start()
        self._transport = inner._transport
        self._op = inner._op
        self._finish = inner._finish
        self._fill = inner._fill

    start = Start

    @classmethod
    def Startall(cls, requests: Sequence[Prequest]) -> None:
        """:meth:`Start` every request.

        Raises:
            InvalidArgumentError: as :meth:`Start`.
        """
        for r in requests:
            r.Start()

    startall = Startall

    def Free(self) -> None:
        """Release the persistent request; it becomes null."""
        self._start = None
        self._done = True

    free = Free


def null_request(transport: Transport | None, receive: bool = False) -> Request:
    """An active request that completes at once: a send to or a receive from ``PROC_NULL``
    (a receive fills its status as :func:`proc_null_status`). It never waits, so
    ``transport`` may be None (``MESSAGE_NO_PROC`` belongs to no communicator)."""
    request = Request(
        transport,
        _DoneOp(),
        None,
        (lambda op, status: proc_null_status(status)) if receive else None,
    )
    request._done = False
    return request
