"""The figures of the cost model and where they are stored.

``treecast calibrate`` measures them and writes them as JSON to :func:`default_path`
(``$TREECAST_MODEL``, else ``$XDG_CONFIG_HOME/treecast/model.json``, else
``~/.config/treecast/model.json``); ``treecast predict`` and ``treecast tune`` read them back
with :func:`load`, or use :data:`DEFAULTS` and say so.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from ..errors import InvalidArgumentError

FORMAT = 1
"""Version of the stored file's layout."""


@dataclass(frozen=True)
class Machine:
    """What one message, byte, reduction and call costs on a machine (seconds).

    Attributes:
        alpha: per message: the CPU work of posting a send and of receiving it, half on
            each side (ping-pong of 8 bytes: half a round trip).
        beta: per byte copied (a shared-memory message is copied into a ring by the sender
            and out of it by the receiver, pipelined in chunks), while the call's data
            fits in the cache.
        beta_mem: the same once it does not (every rank's copy of the payload together
            outgrows ``cache_bytes``): memory bandwidth, not cache.
        gamma: per byte reduced (NumPy's ``add`` of two float64 vectors, per byte of one),
            in cache.
        gamma_mem: the same out of cache.
        cache_bytes: the last-level cache (the switch between the two rates).
        alloc: per byte of fresh memory a receive lands in (page faults: the object form
            receives into new buffers, buffers reuse the caller's).
        overhead: per call and rank: planning, selection, signature and sequence checks
            (of a collective and form not in ``overheads``).
        overheads: the per-call overhead of each ``"collective/form"`` measured
            (``"allreduce/buffer"``): planning a reduction costs more than a broadcast.
        object_overhead: per message of the object form: pickling and unpickling.
        node_sync: per synchronisation of a node-level algorithm (one write read by all,
            or one stage of the node allreduce): publishing and polling counters.
        steal: with more ranks than cores, how much waiting ranks slow the work of the
            others at most: they yield in a loop before they sleep, taking turns on the
            cores; work takes ``min(ranks / cores, 1 + steal)`` times as long.
        sleep_extra: how much longer than asked a short ``time.sleep`` takes: a rank that
            waited past its yielding phase sleeps (``transports/wait.py``) and notices
            its message at the end of a sleep.
        cores: cores the ranks share.
        note: where the figures come from (``calibrated on HOST at TIME``, or defaults).
    """

    alpha: float = 7e-6
    beta: float = 1e-10
    beta_mem: float = 1.5e-10
    gamma: float = 4e-11
    gamma_mem: float = 3e-10
    cache_bytes: float = 16 << 20
    alloc: float = 0.0
    overhead: float = 5e-6
    object_overhead: float = 1e-6
    node_sync: float = 4e-6
    steal: float = 0.8
    sleep_extra: float = 55e-6
    cores: int = 2
    note: str = "defaults"
    overheads: dict[str, float] = field(default_factory=dict)

    def rates(self, working_set: float) -> tuple[float, float]:
        """(per byte copied, per byte reduced) when the call touches ``working_set``
        bytes in all: the cache's rates while it fits, memory's beyond."""
        if working_set <= self.cache_bytes:
            return self.beta, self.gamma
        return self.beta_mem, self.gamma_mem

    def stretch(self, size: int) -> float:
        """How much longer work takes with ``size`` ranks sharing the cores (1 if each
        has a core)."""
        if not 0 < self.cores < size:
            return 1.0
        return min(size / self.cores, 1.0 + self.steal)

    def overhead_of(self, collective: str, form: str) -> float:
        """The per-call overhead of ``collective`` in ``form`` (``"buffer"``/``"object"``)."""
        return self.overheads.get(f"{collective}/{form}", self.overhead)

    def with_cores(self, cores: int) -> Machine:
        """A copy with ``cores`` cores (0: one per rank, as on a cluster)."""
        if cores < 0:
            raise InvalidArgumentError(f"cores must be >= 0 (0: one per rank), got {cores}")
        return replace(self, cores=cores)


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


DEFAULTS = Machine(cores=usable_cores())
"""Figures of the kind measured on this project's 2-core VM, for when none are stored."""

_NUMBERS = tuple(f.name for f in fields(Machine) if f.type in ("float", float))


def from_dict(data: dict[str, Any], where: str) -> Machine:
    """A :class:`Machine` from its JSON object.

    Raises:
        InvalidArgumentError: a field is missing, not a finite number >= 0, or ``cores`` is
            not an int >= 1 (the message names the field, the value and ``where``).
    """
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidArgumentError(
            f'{where}: not a treecast model file (expected a JSON object with "format": '
            f"{FORMAT}); rerun treecast calibrate"
        )
    values: dict[str, Any] = {}
    for name in _NUMBERS:
        v: Any = data.get(name)
        if not _seconds(v):
            raise InvalidArgumentError(
                f"{where}: {name} must be a finite number >= 0 (seconds), got {v!r}"
            )
        values[name] = float(v)
    cores = data.get("cores")
    if isinstance(cores, bool) or not isinstance(cores, int) or cores < 1:
        raise InvalidArgumentError(f"{where}: cores must be an int >= 1, got {cores!r}")
    overheads = data.get("overheads", {})
    if not isinstance(overheads, dict) or not all(
        isinstance(k, str) and _seconds(v) for k, v in overheads.items()
    ):
        raise InvalidArgumentError(
            f"{where}: overheads must map 'collective/form' to seconds >= 0, got {overheads!r}"
        )
    note = str(data.get("note", ""))
    return Machine(**values, cores=cores, note=note, overheads=dict(overheads))


def _seconds(v: Any) -> bool:
    """Whether ``v`` is a finite number of seconds >= 0 (not a bool)."""
    return not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(v) and v >= 0


def to_dict(machine: Machine) -> dict[str, Any]:
    """The JSON object :func:`from_dict` reads."""
    return {"format": FORMAT, **asdict(machine)}


def default_path() -> str:
    """Where the model is stored: ``$TREECAST_MODEL``, else the XDG config directory's
    ``treecast/model.json``."""
    explicit = os.environ.get("TREECAST_MODEL")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "treecast", "model.json")


def load(path: str | None = None) -> tuple[Machine, bool]:
    """(the stored model, True), or (:data:`DEFAULTS`, False) when ``path`` (default
    :func:`default_path`) does not exist.

    Raises:
        InvalidArgumentError: the file exists but is not a valid model.
    """
    path = path or default_path()
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        return DEFAULTS, False
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(f"{path}: not JSON ({exc}); rerun treecast calibrate") from None
    return from_dict(data, path), True


def save(machine: Machine, path: str | None = None, measured: list[Any] | None = None) -> str:
    """Write ``machine`` to ``path`` (default :func:`default_path`, its directory made if
    needed), with the ``measured`` figures it came from (kept for reference, not read
    back); return the path."""
    path = path or default_path()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    data = to_dict(machine)
    if measured is not None:
        data["measured"] = measured
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1)
        fh.write("\n")
    return path
