"""One copy per node: zero-copy broadcast (``bcast(..., copy=False)``) and shared arrays.

Both place data in a segment of the transport's node memory (the ``node_memory``
capability; with the default ``shm`` transport a POSIX shared-memory segment of the job,
``/treecast-<job>-...``, mode 0600) that every rank maps, then unlink its name as soon as
every rank has mapped it. From then on the memory lives exactly as long as some rank still
maps it: the kernel frees it when the last NumPy view on it is garbage-collected, or when the
job's processes exit. If a rank dies before the unlink, the launcher removes every segment of
the job at the end. A transport without node memory makes both raise
:class:`~treecast.errors.MissingCapabilityError`.

Who writes when (:func:`shared_array`): every rank sees the same bytes. Write from one rank,
or to disjoint parts from several, then call ``comm.barrier()`` before any rank reads what
others wrote; the barrier orders the writes before the reads (x86-64 stores are seen in
order, and the barrier's messages go through the same memory system).

The mechanics (segments, the ``copy=False`` pool, rebuilding objects on shared bytes) are in
:mod:`treecast.engine.sharing`, below the communicators that use them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .comm import Comm
from .engine.sharing import node_array
from .errors import InvalidArgumentError


def shared_array(
    comm: Comm, shape: int | tuple[int, ...], dtype: Any = np.float64, *, fill: Any = None
) -> np.ndarray:
    """A NumPy array that every rank of ``comm`` sees: one copy per node (what MPI-3 shared
    windows give, without the ceremony). Collective: every rank must call it with the same
    shape and dtype. The memory is zeroed (or set to ``fill``) before any rank gets it.

    Who writes when: write from one rank, or to disjoint parts, then ``comm.barrier()``
    before reading what other ranks wrote.

    Raises:
        InvalidArgumentError: a negative dimension or an unknown dtype (on every rank,
            before anything is created).
        MissingCapabilityError: the communicator's transport has no node memory (on every
            rank, before anything is created).
    """
    try:
        dt = np.dtype(dtype)
        shp = (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in shape)  # type: ignore[union-attr, arg-type]
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(
            f"shared_array: shape {shape!r} and dtype {dtype!r} must be ints and a NumPy dtype"
        ) from exc
    if any(s < 0 for s in shp) or dt.hasobject:
        raise InvalidArgumentError(
            f"shared_array: shape {shp} must be >= 0 and dtype {dt} must not hold Python objects"
        )
    return node_array(comm, shp, dt, fill)
