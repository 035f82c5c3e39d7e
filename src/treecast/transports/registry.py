"""Transports by name: which one a job's ranks use (``TREECAST_TRANSPORT``).

Each name maps to a factory that builds a rank's endpoint from its environment and, for
transports that a launcher starts, a factory of the launcher's half (a
:class:`~treecast.transports.base.TransportJob`). A transport that cannot start from the
environment (``inproc``: all its ranks live in one process) is registered with the reason,
so that asking for it says why rather than "unknown".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..errors import InvalidArgumentError
from .base import Transport, TransportJob

ENV_TRANSPORT = "TREECAST_TRANSPORT"
"""The transport of a job's ranks, read by the launcher and at each rank's bootstrap."""
DEFAULT = "shm"
"""The transport of a job started by our launcher when ``TREECAST_TRANSPORT`` is unset."""

RankFactory = Callable[[int, int, Mapping[str, str]], Transport]
"""``factory(rank, size, environ)``: this rank's endpoint, built from its environment."""
JobFactory = Callable[[str], TransportJob]
"""``factory(job_token)``: the launcher's half for one job."""


@dataclass(frozen=True)
class _Entry:
    factory: RankFactory | None
    job: JobFactory | None
    unavailable: str


_entries: dict[str, _Entry] = {}


def register(
    name: str,
    factory: RankFactory | None,
    *,
    job: JobFactory | None = None,
    unavailable: str = "",
) -> None:
    """Register transport ``name``.

    Args:
        name: the value of ``TREECAST_TRANSPORT`` that selects it.
        factory: builds a rank's endpoint from its environment; None if the transport
            cannot start that way (then say why in ``unavailable``).
        job: builds the launcher's half of a job; None if a launcher cannot start it.
        unavailable: why ``factory`` is None, for the error that names the transport.

    Raises:
        InvalidArgumentError: ``name`` is empty or taken, or ``factory`` is None without a
            reason.
    """
    if not name or not isinstance(name, str):
        raise InvalidArgumentError(f"a transport name must be a non-empty string, got {name!r}")
    if name in _entries:
        raise InvalidArgumentError(f"transport {name!r} is already registered")
    if factory is None and not unavailable:
        raise InvalidArgumentError(
            f"transport {name!r}: give the reason it cannot start from the environment"
        )
    _entries[name] = _Entry(factory, job, unavailable)


def names() -> tuple[str, ...]:
    """Every registered name, sorted."""
    return tuple(sorted(_entries))


def selectable() -> tuple[str, ...]:
    """The names that ``TREECAST_TRANSPORT`` may hold (they start from the environment)."""
    return tuple(sorted(n for n, e in _entries.items() if e.factory is not None))


def _entry(name: str) -> _Entry:
    """The entry of a selectable transport.

    Raises:
        InvalidArgumentError: ``name`` is unknown or cannot start from the environment.
    """
    entry = _entries.get(name)
    if entry is None:
        raise InvalidArgumentError(
            f"{ENV_TRANSPORT}={name!r} is not a transport; known: {', '.join(selectable())}"
        )
    if entry.factory is None:
        raise InvalidArgumentError(
            f"{ENV_TRANSPORT}={name!r} cannot be chosen for a job: {entry.unavailable}; "
            f"choose one of: {', '.join(selectable())}"
        )
    return entry


def check(name: str) -> None:
    """Raise unless ``name`` can be chosen with ``TREECAST_TRANSPORT``.

    Raises:
        InvalidArgumentError: ``name`` is unknown or cannot start from the environment; the
            message names the value and the names that can.
    """
    _entry(name)


def make(name: str, rank: int, size: int, environ: Mapping[str, str]) -> Transport:
    """Build rank ``rank``'s endpoint of transport ``name`` from its environment.

    Raises:
        InvalidArgumentError: as :func:`check`.
        TreecastError, OSError, ValueError: the transport's own start-up failed.
    """
    factory = _entry(name).factory
    assert factory is not None  # _entry refuses the others
    return factory(rank, size, environ)


def make_job(name: str, job: str) -> TransportJob:
    """The launcher's half of transport ``name`` for the job of token ``job``.

    Raises:
        InvalidArgumentError: ``name`` cannot be chosen (as :func:`check`) or no launcher can
            start it.
    """
    factory = _entry(name).job
    if factory is None:
        raise InvalidArgumentError(
            f"{ENV_TRANSPORT}={name!r}: `treecast run` cannot start this transport's jobs"
        )
    return factory(job)


def _shm_rank(rank: int, size: int, environ: Mapping[str, str]) -> Transport:
    from .shm import ShmTransport

    return ShmTransport.from_env(rank, size, environ)


def _shm_job(job: str) -> TransportJob:
    from .shm import ShmJob

    return ShmJob(job)


register("shm", _shm_rank, job=_shm_job)
register(
    "inproc",
    None,
    unavailable="its ranks all live in one process; build them with "
    "treecast.transports.inproc.InprocWorld(size)",
)
