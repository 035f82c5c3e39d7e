"""The transport of a world of one rank: every message is a message to itself."""

from __future__ import annotations

import os

from ..errors import InvalidRankError
from .base import PeerState, SendOp, Transport
from .capabilities import NODE_MEMORY
from .deadlock import GONE, RUNNING, WORDS, Watch
from .node_memory import ShmNodeMemory


class SingleRankTransport(Transport):
    """A world of one rank (a program started without a launcher, or ``-n 1``).

    The base class delivers messages to oneself without calling :meth:`_start_send`, so
    nothing ever crosses a process boundary.

    Args:
        job: the job's token (``TREECAST_JOB``) when a launcher started the rank, which
            names its segments in node memory; None names them after this process.
    """

    capabilities = frozenset({NODE_MEMORY})

    def __init__(self, job: str | None = None) -> None:
        super().__init__(0, 1)
        self._node_memory = ShmNodeMemory(job or f"solo{os.getpid()}")
        if self.deadlock_settle:  # a wait that nothing of this process can end
            self._watch = Watch([0] * WORDS, 0, self._own_state, self.deadlock_settle)

    def _own_state(self, slot: int) -> int:
        return GONE if self._closed else RUNNING

    def node_memory(self, what: str = "node memory") -> ShmNodeMemory:
        """POSIX shared-memory segments named after the job (or after this process)."""
        return self._node_memory

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
