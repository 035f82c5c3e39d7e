"""What a transport can offer beyond moving messages: the names of its capabilities.

A transport declares the names it offers in :attr:`Transport.capabilities
<treecast.transports.base.Transport.capabilities>` (a frozenset of these strings); the
layers above choose algorithms and fast paths by asking for a name, never by asking which
transport they run on. A capability that a transport may or may not have on a given system
(``cma``) is probed when the transport starts, so the set is true for this run.
"""

from __future__ import annotations

NODE_MEMORY = "node_memory"
"""Every rank of the world can map the same memory by name, through
:meth:`Transport.node_memory <treecast.transports.base.Transport.node_memory>` (see
:mod:`.node_memory`: the job's POSIX shared-memory segments ``/dev/shm/treecast-<job>-*``
for ``shm``, memory named inside the process for ``inproc``), so node-level algorithms (one
shared write read by all ranks), shared arrays and ``bcast(copy=False)`` can run."""

CMA = "cma"
"""Ranks are processes of this machine and this process may call ``process_vm_readv``
(probed on itself at start): a rank can copy straight out of a peer's memory once that peer
has called :func:`treecast.transports.cma.enable`."""

INLINE_SMALL = "inline_small"
"""``send_inline``/``recv_inline`` are real fast paths for small one-frame messages rather
than the base's "never" answers: callers on a latency-bound path gain by trying them first."""

FAILURE_DETECTION = "failure_detection"
"""``peer_state`` tells a dead rank from a running or finished one, so a wait for a rank that
died raises :class:`~treecast.errors.ProcessFailedError` instead of waiting forever."""

ALL = frozenset({NODE_MEMORY, CMA, INLINE_SMALL, FAILURE_DETECTION})
"""Every capability name defined here."""

NODE_LOCAL = frozenset({NODE_MEMORY, CMA})
"""Capabilities that hold only among the ranks of one node (the transport's
:attr:`~treecast.transports.base.Transport.node_ids`): a communicator whose ranks span
several nodes lacks them, so node-level algorithms are never chosen on it."""
"""Every capability name defined here."""
