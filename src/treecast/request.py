"""Requests returned by non-blocking calls."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .status import Status
from .transports.base import RecvOp, SendOp, Transport


class Request:
    """A non-blocking operation in flight (``isend``, ``irecv``, ``Isend``, ``Irecv``, and the
    ``I*`` collectives).

    ``wait()`` blocks until it completes and returns the received object (``irecv``,
    ``ibcast``...) or None; ``test()`` returns ``(done, result)`` without blocking. Each
    makes progress on every operation of this rank. A request is truthy until it completes.
    """

    __slots__ = ("_done", "_finish", "_op", "_result", "_transport")

    def __init__(
        self,
        transport: Transport,
        op: SendOp | RecvOp,
        finish: Callable[[RecvOp, Status | None], Any] | None = None,
    ) -> None:
        self._transport = transport
        self._op = op
        self._finish = finish
        self._done = False
        self._result: Any = None

    def _ready(self) -> bool:
        """True once the operation has completed (makes no progress)."""
        return self._op.done

    def _complete(self, status: Status | None) -> Any:
        if not self._done:
            op = self._op
            if op.error is not None:
                self._done = True
                raise op.error
            if isinstance(op, RecvOp) and self._finish is not None:
                self._result = self._finish(op, status)
            self._done = True
        return self._result

    def wait(self, status: Status | None = None, timeout: float | None = None) -> Any:
        """Block until complete; return the received object (object receives) or None.

        Raises:
            TimeoutError: not complete within ``timeout`` seconds.
            TruncationError: a buffer receive got a larger message.
            DeserializationError: an object receive got bytes that cannot be rebuilt.
        """
        if not self._ready():
            self._transport.wait(self._ready, timeout, "request wait")
        return self._complete(status)

    def test(self, status: Status | None = None) -> tuple[bool, Any]:
        """Make progress; return ``(True, result)`` if complete, else ``(False, None)``."""
        if not self._ready():
            self._transport.progress()
        if not self._ready():
            return False, None
        return True, self._complete(status)

    def cancel(self) -> bool:
        """Withdraw a receive that has not matched; return True if it was withdrawn."""
        if isinstance(self._op, RecvOp):
            return self._transport.cancel(self._op)
        return False

    @property
    def done(self) -> bool:
        """True once the operation has completed (no progress is made by reading this)."""
        return self._ready()

    def __bool__(self) -> bool:
        return not self._done

    Wait = wait
    Test = test
    Cancel = cancel

    @staticmethod
    def waitall(
        requests: Sequence[Request],
        statuses: list[Status] | None = None,
        timeout: float | None = None,
    ) -> list[Any]:
        """Wait for every request; return their results in order."""
        if requests:
            transport = requests[0]._transport
            transport.wait(lambda: all(r._ready() for r in requests), timeout, "waitall")
        results = []
        for i, r in enumerate(requests):
            st = statuses[i] if statuses is not None and i < len(statuses) else None
            results.append(r.wait(st))
        return results

    Waitall = waitall
