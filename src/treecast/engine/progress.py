"""Non-blocking collectives: a schedule advanced step by step.

A :class:`CollectiveRequest` holds the generator of :func:`engine.store.execute`. It moves
on whenever this rank makes progress: in its own ``test``/``wait``, and in the wait loop of
any other blocking call (the transport keeps a list of pending collectives), so a rank that
started ``Ibcast`` and then blocks in ``recv`` still forwards the broadcast to its children.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from ..request import Request
from ..status import Status
from ..transports.base import Call, Transport
from .store import Wait


class CollectiveRequest(Request):
    """The request of an ``I*`` collective; ``wait()`` returns the collective's result.

    Attributes:
        what: the call, as its messages and reports name it (None when not given).
    """

    __slots__ = ("_error", "_finished", "_gen", "_result_of", "_waiting", "what")

    def __init__(
        self,
        transport: Transport,
        gen: Generator[Wait, None, None],
        result: Callable[[], Any],
        what: Call | None = None,
    ) -> None:
        super().__init__(transport, None)
        self.what = what
        self._gen = gen
        self._result_of = result
        self._waiting: Wait | None = None
        self._finished = False
        self._error: BaseException | None = None
        if not self.advance():
            transport.add_background(self.advance)

    def advance(self) -> bool:
        """Run the schedule until it must wait; return True once it has finished (also with
        an error, kept for ``wait``/``test`` to raise)."""
        if self._finished:
            return True
        try:
            while self._waiting is None or self._waiting.done:
                self._waiting = next(self._gen)
        except StopIteration:
            self._finished = True
            try:
                self._result = self._result_of()
            except Exception as exc:
                self._error = exc
        except Exception as exc:
            self._finished = True
            self._error = exc
        return self._finished

    def _ready(self) -> bool:
        return self._finished or self.advance()

    def _complete(self, status: Status | None) -> Any:
        self._done = True
        if status is not None:
            status._clear()
        if self._error is not None:
            raise self._error
        return self._result
