"""Node memory: memory that every rank of a world maps by name (the ``node_memory``
capability, :data:`~.capabilities.NODE_MEMORY`).

A transport that declares the capability gives it out with
:meth:`Transport.node_memory <treecast.transports.base.Transport.node_memory>`. The layers
above (shared arrays, the ``copy=False`` pool, the node-level collectives' arenas) make,
map and unlink their segments through it alone, so they never learn where the memory lives:

- :class:`ShmNodeMemory`: POSIX shared memory of the job, named ``/treecast-<job>-<label>-<hex>``
  (:mod:`.segments`), which the launcher (and its reaper) removes when the job ends;
- :class:`InprocNodeMemory`: anonymous memory (``memfd_create``) named inside one process,
  for the ranks of an :class:`~treecast.transports.inproc.InprocWorld`.

A segment lives as long as it is named or mapped: :meth:`NodeMemory.unlink` drops its name
(no rank can attach any more), and the memory goes with the last mapping of it.
"""

from __future__ import annotations

import mmap
import os
import secrets
import threading
import weakref
from abc import ABC, abstractmethod

from . import segments


class NodeMemory(ABC):
    """Segments that every rank of one world maps by name.

    Subclasses provide the names and the file descriptors (:meth:`_new`, :meth:`_open`) and
    :meth:`unlink`; mapping is the same for all.
    """

    @abstractmethod
    def _new(self, label: str, nbytes: int) -> tuple[str, int]:
        """Make a new segment of ``nbytes`` (at least 1) whose name contains ``label``;
        return its name and an open descriptor that the caller closes.

        Raises:
            OSError: the system refused (nothing is left named).
        """

    @abstractmethod
    def _open(self, name: str, writable: bool) -> int:
        """An open descriptor of segment ``name``, which the caller closes.

        Raises:
            FileNotFoundError: no segment of that name (never made, or unlinked).
        """

    @abstractmethod
    def unlink(self, name: str) -> bool:
        """Drop segment ``name``'s name (mappings stay valid); False if it had none."""

    def create(self, label: str, nbytes: int) -> tuple[str, mmap.mmap]:
        """Make a zeroed segment of ``nbytes`` (a 0-byte segment maps 1 byte) and map it
        read-write. Its name, for :meth:`attach` on the other ranks, is new and contains
        ``label``.

        Raises:
            ValueError: ``nbytes`` is negative.
            OSError: the system refused (memory is full, say); nothing is left named.
        """
        if nbytes < 0:
            raise ValueError(f"node memory: segment size {nbytes} must be >= 0")
        name, fd = self._new(label, max(nbytes, 1))
        try:
            return name, mmap.mmap(fd, max(nbytes, 1))
        except BaseException:
            self.unlink(name)
            raise
        finally:
            os.close(fd)

    def attach(
        self, name: str, *, offset: int = 0, nbytes: int | None = None, writable: bool = True
    ) -> mmap.mmap:
        """Map ``nbytes`` of segment ``name`` from ``offset`` (a multiple of
        ``mmap.ALLOCATIONGRANULARITY``); the rest of the segment by default. Read-only
        (``writable=False``): writing through the mapping raises ``TypeError``.

        Raises:
            FileNotFoundError: no segment of that name (never made, or unlinked).
            ValueError: ``offset`` or ``nbytes`` is outside the segment.
            OSError: the system refused the mapping.
        """
        fd = self._open(name, writable)
        try:
            size = os.fstat(fd).st_size
            if nbytes is None:
                nbytes = size - offset
            if offset < 0 or nbytes < 1 or offset + nbytes > size:
                raise ValueError(
                    f"node memory: {nbytes} bytes from offset {offset} are outside segment "
                    f"{name!r} of {size} bytes"
                )
            prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
            return mmap.mmap(fd, nbytes, mmap.MAP_SHARED, prot, offset=offset)
        finally:
            os.close(fd)


class ShmNodeMemory(NodeMemory):
    """The job's POSIX shared-memory segments, ``/treecast-<job>-<label>-<12 hex>``, mode
    0600: the launcher's reaper removes every ``treecast-<job>-*`` of ``/dev/shm`` when the
    job ends, however it ends.

    Args:
        job: the job's token (``TREECAST_JOB``); a process started without the launcher
            passes its own (``solo<pid>``).
    """

    def __init__(self, job: str) -> None:
        self.job = job

    def _new(self, label: str, nbytes: int) -> tuple[str, int]:
        name = segments.segment_name(self.job, f"{label}-{secrets.token_hex(6)}")
        return name, segments.create_segment_fd(name, nbytes)

    def _open(self, name: str, writable: bool) -> int:
        return segments.open_segment_fd(name, writable)

    def unlink(self, name: str) -> bool:
        """Unlink ``/dev/shm`` segment ``name``; False if it did not exist."""
        return segments.unlink_segment(name)


class InprocNodeMemory(NodeMemory):
    """Anonymous memory shared by name inside this process: the node memory of one
    :class:`~treecast.transports.inproc.InprocWorld`. Nothing is named outside the process,
    so nothing can be left behind when it exits; what is still named when the object goes
    (a rank died before it unlinked) is dropped with it. Needs ``os.memfd_create`` (Linux).
    """

    def __init__(self) -> None:
        self._fds: dict[str, int] = {}
        self._lock = threading.Lock()  # the world's ranks are threads
        weakref.finalize(self, _close_all, self._fds)

    def _new(self, label: str, nbytes: int) -> tuple[str, int]:
        name = f"inproc-{label}-{secrets.token_hex(6)}"
        fd = os.memfd_create(name, os.MFD_CLOEXEC)
        try:
            os.ftruncate(fd, nbytes)
            mine = os.dup(fd)
        except BaseException:
            os.close(fd)
            raise
        with self._lock:
            self._fds[name] = fd
        return name, mine

    def _open(self, name: str, writable: bool) -> int:
        with self._lock:
            fd = self._fds.get(name)
            if fd is None:
                raise FileNotFoundError(f"no in-process segment {name!r} (unlinked, or never made)")
            return os.dup(fd)

    def unlink(self, name: str) -> bool:
        """Forget ``name``; False if no segment had it."""
        with self._lock:
            fd = self._fds.pop(name, None)
        if fd is None:
            return False
        os.close(fd)
        return True

    def names(self) -> list[str]:
        """The names of the segments still named (made and not unlinked), sorted."""
        with self._lock:
            return sorted(self._fds)


def _close_all(fds: dict[str, int]) -> None:
    """Close the descriptors that still name segments (their mappings stay valid)."""
    for fd in fds.values():
        os.close(fd)
    fds.clear()
