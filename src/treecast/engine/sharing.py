"""The mechanics of one copy per node (see :mod:`treecast.shared`): segments of node memory
that every rank maps, for ``bcast(obj, copy=False)`` (:func:`share_object`, pooled by
:mod:`treecast.engine.share_pool`) and for arrays every rank sees (:func:`node_array`, also
the node-level collectives' arenas). Takes a communicator as :class:`Members`: what it needs
(rank, size, a small ``bcast``, a ``barrier``, its transport), so that it sits below the
communicators. The segments come from the transport's node memory
(:meth:`~treecast.transports.base.Transport.node_memory`): a transport without the
``node_memory`` capability makes these calls raise
:class:`~treecast.errors.MissingCapabilityError` on every rank, before anything is sent.
"""

from __future__ import annotations

import io
import mmap
import pickle
from typing import Any

import numpy as np

from ..errors import SerializationError, TreecastError
from ..message import frames as frames_mod
from .share_pool import Members, SharePool, pool_of

ALIGN = 64
"""Buffers start at multiples of a cache line (and of every NumPy item size)."""


def _rebuild_shared(
    buf: Any, dtype: np.dtype, shape: tuple[int, ...], order: str, cls: type
) -> np.ndarray:
    """An array of ``cls`` on the shared bytes ``buf`` (see :class:`_SharingPickler`)."""
    arr = np.frombuffer(buf, np.uint8).view(dtype).reshape(shape, order=order)  # type: ignore[call-overload]
    return arr if cls is np.ndarray else arr.view(cls)


class _SharingPickler(pickle.Pickler):
    """Protocol 5 with the arrays that NumPy itself keeps in band sent out of band too, so
    that they also become views on the shared copy: datetime and timedelta arrays (their
    dtype has no buffer format), arrays that are not contiguous (the root copies them once)
    and subclasses that pickle as plain arrays (``np.matrix``, ``np.recarray``). Arrays of
    Python objects, masked arrays and other subclasses with their own pickling still travel
    in the stream, as private copies on every rank."""

    def reducer_override(self, obj: Any) -> Any:
        if not isinstance(obj, np.ndarray):
            return NotImplemented
        cls = type(obj)
        dtype = obj.dtype
        if (
            dtype.hasobject
            or dtype.itemsize == 0
            or (cls is not np.ndarray and _own_pickling(cls))
            or (
                cls is np.ndarray
                and dtype.kind not in "mM"
                and (obj.flags.c_contiguous or obj.flags.f_contiguous)
            )
        ):
            return NotImplemented  # NumPy's own way (out of band where it can)
        plain = obj.view(np.ndarray)
        if not (plain.flags.c_contiguous or plain.flags.f_contiguous):
            plain = np.ascontiguousarray(plain)
        order = "F" if plain.flags.f_contiguous and not plain.flags.c_contiguous else "C"
        raw = plain.reshape(-1, order=order).view(np.uint8)  # type: ignore[call-overload]
        return _rebuild_shared, (pickle.PickleBuffer(raw), dtype, plain.shape, order, cls)


def _own_pickling(cls: type) -> bool:
    """Whether an ndarray subclass pickles otherwise than a plain array (``np.ma``)."""
    return cls.__reduce__ is not np.ndarray.__reduce__ or (
        cls.__reduce_ex__ is not np.ndarray.__reduce_ex__
    )


def _dumps_all_out_of_band(obj: Any, where: str) -> tuple[bytes, list[memoryview]]:
    """Pickle ``obj`` with every contiguous buffer out of band (however small), so that
    every array of the result is a view on the shared copy."""
    buffers: list[memoryview] = []

    def out_of_band(pb: pickle.PickleBuffer) -> bool:
        try:
            buffers.append(pb.raw())
        except BufferError:  # not contiguous: stays in the stream (a private copy)
            return True
        return False

    try:
        out = io.BytesIO()
        _SharingPickler(out, protocol=5, buffer_callback=out_of_band).dump(obj)
        stream = out.getvalue()
    except Exception as exc:
        raise SerializationError(
            f"{where}: cannot pickle object of type {type(obj).__qualname__}: {exc}"
        ) from exc
    return stream, buffers


def share_object(comm: Members, obj: Any, root: int, timeout: float | None = None) -> Any:
    """``comm.bcast(obj, root, copy=False)``: every rank returns the root's structure whose
    NumPy arrays (and other out-of-band buffers) are read-only views on one shared copy.

    The root writes each buffer once into a segment, reused from earlier calls once no rank
    views it any more (:mod:`treecast.engine.share_pool`); the other ranks map it without copying.
    Costs one small ``bcast`` (the segment's description) besides the root's write, and a
    barrier when the segment is new (every rank maps it by name before the name goes).

    Raises:
        MissingCapabilityError: the communicator's transport has no node memory (on every
            rank, nothing sent).
        SerializationError: at the root, ``obj`` cannot be pickled.
        OSError: at the root, the segment could not be created (node memory is full, say).
        SenderFailedError: on the other ranks after either of those (the root sends a
            marker instead of the segment's description, so nobody waits).
    """
    if comm._nodes is not None:
        return _share_across_nodes(comm, obj, root, timeout)
    pool = pool_of(comm)
    call = pool.enter()
    desc: Any = None
    mm = None
    failure: BaseException | None = None
    if comm.rank == root:
        desc, mm, failure = _root_write(pool, obj, call, root)
    return _distribute(comm, pool, root, desc, mm, failure, timeout)


def _root_write(
    pool: SharePool, obj: Any, call: int, root: int
) -> tuple[Any, mmap.mmap | None, BaseException | None]:
    """The root's write of ``obj`` into a segment: ``(description, mapping, None)``, or a
    marker for the others and the error when it fails (they raise SenderFailedError
    rather than wait for a description that would never come, or take the next call's)."""
    try:
        desc, mm = _write_shared(pool, obj, call)
        return desc, mm, None
    except Exception as exc:
        return frames_mod.SendFailed(root, f"{type(exc).__name__}: {exc}"), None, exc


def _distribute(
    comm: Members,
    pool: SharePool,
    root: int,
    desc: Any,
    mm: mmap.mmap | None,
    failure: BaseException | None,
    timeout: float | None,
) -> Any:
    """Hand the segment that ``root`` holds (``desc``, ``mm``; a marker and ``failure``
    when it has none) to every rank of ``comm``, which share one node: each maps it and
    rebuilds the object on it. See :func:`share_object`."""
    memory = pool.memory
    if failure is not None:
        comm.bcast(desc, root=root, timeout=timeout)
        raise failure
    try:
        name, fresh, capacity, stream, layout = comm.bcast(desc, root=root, timeout=timeout)
        if name is None:  # no buffer bytes at all (empty arrays)
            frames = [memoryview(stream), *(memoryview(b"") for _ in layout)]
            return frames_mod.loads(frames, "bcast(copy=False)")
        if mm is None:
            try:
                mm = _map(pool, name, fresh, capacity, comm.rank)
            except Exception as exc:  # still join the barrier below: nobody is left waiting
                failure = exc
        if fresh:
            comm.barrier(timeout=timeout)  # every rank has mapped it: the name can go
        if failure is not None:
            raise failure
        shared = memoryview(mm).toreadonly()  # type: ignore[arg-type]
        del mm
        return frames_mod.loads(
            [memoryview(stream), *(shared[off : off + n] for off, n in layout)],
            "bcast(copy=False)",
        )
    except BaseException:
        if comm.rank == root and desc is not None and desc[2]:
            # some rank may not have mapped it: never offer this segment again
            failed = pool.segments.get(str(desc[0]))
            if failed is not None:
                pool.discard(failed)
        raise
    finally:
        if comm.rank == root and desc is not None and desc[0] is not None and desc[1]:
            memory.unlink(desc[0])


def _share_across_nodes(comm: Members, obj: Any, root: int, timeout: float | None) -> Any:
    """:func:`share_object` on a communicator whose ranks span nodes: the root writes its
    segment, the other nodes' leaders receive the bytes straight into a segment of their
    own node (one transfer per node, over the leaders' communicator), then each node shares
    its segment as on one node. The leader of the root's node is the root."""
    node, leaders, node_root = comm._node_split(root)
    pool = pool_of(node)
    call = pool.enter()
    desc: Any = None
    mm: mmap.mmap | None = None
    failure: BaseException | None = None
    if leaders is not None:
        desc, mm, failure = _leaders_stage(
            leaders, pool, call, obj, comm.rank, root, comm.rank == root, timeout
        )
    return _distribute(node, pool, node_root, desc, mm, failure, timeout)


def _leaders_stage(
    leaders: Members,
    pool: SharePool,
    call: int,
    obj: Any,
    me: int,
    root: int,
    is_root: bool,
    timeout: float | None,
) -> tuple[Any, mmap.mmap | None, BaseException | None]:
    """A node leader's part of :func:`_share_across_nodes`: the root writes its segment and
    sends the stream and layout; every other leader makes a segment of its node; the
    leaders agree that all of them have one, then the bytes go straight into them. Returns
    this node's description and mapping, or a marker and the error for the whole node (a
    failing leader, or root, makes every rank of every node raise, naming it)."""
    got: Any = None
    if is_root:
        desc, mm, failure = _root_write(pool, obj, call, root)
        if failure is not None:
            leaders.bcast((None, desc.message, 0), root=0, timeout=timeout)
            return desc, None, failure
        stream, layout, nbytes = desc[3], desc[4], _extent(desc[4])
        leaders.bcast((stream, layout, nbytes), root=0, timeout=timeout)
    else:
        stream, layout, nbytes = leaders.bcast(None, root=0, timeout=timeout)
        if stream is None:  # the root could not pickle or write: layout holds why
            marker = frames_mod.SendFailed(root, layout)
            return marker, None, marker.error("bcast(copy=False)")
        desc, mm, failure = (None, True, 0, stream, layout), None, None
        if nbytes:
            try:
                name, mm, fresh, capacity, got = _segment_for(pool, nbytes, call)
                desc = (name, fresh, capacity, stream, layout)
            except Exception as exc:  # agreed on below: nobody waits for this node
                failure = exc
    why = None if failure is None else f"{type(failure).__name__}: {failure}"
    problems = [(r, w) for r, w in leaders.allgather((me, why)) if w is not None]
    if problems:
        if failure is None and desc[0] is not None:  # this leader's segment goes unused
            _release(pool, got, desc)
        rank, first = problems[0]
        marker = frames_mod.SendFailed(
            rank, f"that node leader could not make its node's copy: {first}"
        )
        return marker, None, failure or marker.error("bcast(copy=False)")
    if nbytes:
        assert mm is not None
        try:
            leaders.Bcast(np.frombuffer(mm, np.uint8, nbytes), root=0, timeout=timeout)
        except BaseException:
            _release(pool, got, desc)
            raise
    return desc, mm, None


def _release(pool: SharePool, got: Any, desc: Any) -> None:
    """Give up the segment ``desc`` names (``got``: a non-root leader's pool entry) when
    the broadcast fails after it was made: never offer it again, unlink a new one."""
    name, fresh, capacity = desc[0], desc[1], desc[2]
    if got is None and capacity:
        got = pool.segments.get(str(name))
    _drop(pool, got, fresh, name)


def _extent(layout: list[tuple[int, int]]) -> int:
    """Bytes of a segment that holds buffers at ``layout``'s (offset, size)."""
    return max((off + n for off, n in layout), default=0)


def _drop(pool: SharePool, got: Any, fresh: bool, name: str) -> None:
    """Give up a segment from :func:`_segment_for` whose bytes never all arrived: never
    offer the pool's entry again, and unlink a new one's name."""
    if got is not None:
        pool.discard(got)
    if fresh:
        pool.memory.unlink(name)


def _segment_for(pool: SharePool, nbytes: int, call: int) -> tuple[str, mmap.mmap, bool, int, Any]:
    """A segment of at least ``nbytes`` for call ``call``: pooled (reused or new) or one-off
    (capacity 0); returns its name, mapping, whether it is new, its capacity and the pool's
    entry (None for a one-off).

    Raises:
        OSError: it could not be made (nothing is left behind).
    """
    got = pool.acquire(nbytes, call)
    if got is not None:
        seg, fresh = got
        return seg.name, seg.data, fresh, seg.capacity, seg
    name, mm = pool.memory.create("bcast", nbytes)
    return name, mm, True, 0, None


def _write_shared(pool: SharePool, obj: Any, call: int) -> tuple[Any, mmap.mmap | None]:
    """The root's part of :func:`share_object`: pickle ``obj`` with every buffer out of
    band, write the buffers into a segment (pooled, or new); return the description that
    the others get and the segment's mapping.

    Raises:
        SerializationError: ``obj`` cannot be pickled.
        OSError: the segment could not be made (nothing is left behind).
    """
    stream, buffers = _dumps_all_out_of_band(obj, "bcast(copy=False)")
    layout, pos = [], 0
    for b in buffers:
        layout.append((pos, b.nbytes))
        pos += -(-b.nbytes // ALIGN) * ALIGN
    if not pos:
        return (None, True, 0, stream, layout), None
    name, mm, fresh, capacity, got = _segment_for(pool, pos, call)
    try:
        view = memoryview(mm)
        for (off, n), b in zip(layout, buffers, strict=True):
            view[off : off + n] = b.cast("B")
        del view
    except BaseException:
        _drop(pool, got, fresh, name)
        raise
    # pooled segments are sent with their capacity (receivers map exactly that much)
    return (name, fresh, capacity, stream, layout), mm


def _map(pool: SharePool, name: str, fresh: bool, capacity: int, rank: int) -> mmap.mmap:
    """A receiver's mapping of the data of segment ``name``: one-off (``capacity`` 0), new
    in the pool, or kept in the pool from an earlier call.

    Raises:
        TreecastError: the root reused a segment this rank never mapped.
        OSError: the segment cannot be mapped.
    """
    if not capacity:
        return pool.memory.attach(name, writable=False)
    if fresh:
        return pool.attach(name, capacity).data
    seg = pool.segments.get(name)
    if seg is None:
        raise TreecastError(
            f"bcast(copy=False): rank {rank} was sent segment {name!r} again but never "
            f"mapped it (an earlier copy=False broadcast failed on this rank)"
        )
    return seg.data


def node_array(
    comm: Members,
    shape: tuple[int, ...],
    dtype: np.dtype,
    fill: Any = None,
    what: str = "shared_array",
) -> np.ndarray:
    """A zeroed (or ``fill``-ed) array of ``shape`` and ``dtype`` that every rank of
    ``comm`` maps: :func:`treecast.shared_array` after its checks. Collective.

    Args:
        comm: the ranks that share the array.
        shape: its shape.
        dtype: its dtype.
        fill: the value of every item (None: zeros).
        what: the operation, for the error when there is no node memory.

    Raises:
        MissingCapabilityError: the communicator's transport has no node memory (on every
            rank, nothing sent).
        OSError: at rank 0, the segment could not be created; at another rank, it could
            not be mapped.
        ProcessFailedError: a rank died during the call (also on a rank that got the
            segment's name after rank 0 gave up and removed it).
    """
    memory = comm._node_memory(what)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    count = nbytes // dtype.itemsize if dtype.itemsize else 0
    name = None
    if comm.rank == 0:
        name, mm = memory.create("array", nbytes)
        if fill is not None:
            np.frombuffer(mm, dtype, count=count)[...] = fill
    failure: OSError | None = None
    try:
        name = comm.bcast(name, root=0)
        if comm.rank != 0:
            try:
                mm = memory.attach(name)
            except OSError as exc:
                # still join the barrier: when rank 0 gave up the call (a rank died) and
                # removed the name before this rank mapped it, the barrier names the death
                failure = exc
        comm.barrier()
    finally:
        if comm.rank == 0 and name is not None:
            memory.unlink(name)
    if failure is not None:
        raise failure
    return np.frombuffer(mm, dtype, count=count).reshape(shape)
