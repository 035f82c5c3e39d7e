"""The transport of a world of one rank: every message is a message to itself."""

from __future__ import annotations

from ..errors import InvalidRankError
from .base import PeerState, SendOp, Transport
from .capabilities import NODE_MEMORY


class SingleRankTransport(Transport):
    """A world of one rank (a program started without a launcher, or ``-n 1``).

    The base class delivers messages to oneself without calling :meth:`_start_send`, so
    nothing ever crosses a process boundary.
    """

    capabilities = frozenset({NODE_MEMORY})

    def __init__(self) -> None:
        super().__init__(0, 1)

    def _start_send(self, op: SendOp) -> None:
        raise InvalidRankError(
            f"rank 0: no rank {op.dest} in a world of 1 (the only destination is rank 0)"
        )

    def _poll(self) -> bool:
        return False

    def peer_state(self, rank: int) -> PeerState:
        """This rank is running until it closes its transport."""
        return PeerState.FINISHED if self._closed else PeerState.RUNNING

    def close(self) -> None:
        """Nothing to release: only mark the transport closed."""
        super().close()
