"""The steps a schedule yields. Peers are ranks of the communicator running the schedule.

Engines interpret the steps: :class:`Send` posts a send of the payload and does not wait;
:class:`Recv` receives the payload and waits for it (later steps may forward it);
:class:`WaitAll` waits for every send posted so far. An engine waits for all sends at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Send:
    """Post a send of the payload to ``peer``."""

    peer: int


@dataclass(frozen=True, slots=True)
class Recv:
    """Receive the payload from ``peer`` and wait for it."""

    peer: int


@dataclass(frozen=True, slots=True)
class WaitAll:
    """Wait until every send posted so far has completed."""


Step = Send | Recv | WaitAll
Schedule = Iterator[Step]
