import threading

import numpy as np
import pytest

from treecast.errors import DeserializationError, SenderFailedError, SerializationError
from treecast.message import frames
from treecast.message.buffers import byte_view


def test_large_arrays_travel_out_of_band_without_copy():
    a = np.arange(100_000, dtype=np.float64)
    fr = frames.dumps({"a": a, "small": np.arange(3)})
    assert len(fr) == 2
    assert fr[1].nbytes == a.nbytes
    assert np.shares_memory(np.frombuffer(fr[1], dtype=np.float64), a)
    # rebuilt arrays sit on the received frames (no copy)
    received = [memoryview(bytearray(f)) for f in fr]
    out = frames.loads(received)
    np.testing.assert_array_equal(out["a"], a)
    assert np.shares_memory(out["a"], np.frombuffer(received[1], dtype=np.uint8))


def test_non_contiguous_arrays_round_trip():
    a = np.arange(200_000).reshape(400, 500)[:, ::3]
    out = frames.loads(frames.dumps(a))
    np.testing.assert_array_equal(out, a)


def test_unpicklable_raises_serialization_error_naming_type():
    with pytest.raises(SerializationError, match=r"_thread\.lock"):
        frames.dumps(threading.Lock())
    with pytest.raises(TypeError):
        frames.dumps(lambda x: x)


def test_garbage_raises_deserialization_error():
    with pytest.raises(DeserializationError):
        frames.loads([memoryview(b"not a pickle")])


def test_byte_view_of_specs_and_orders():
    a = np.arange(10, dtype=np.int32)
    assert byte_view(a, "x").nbytes == 40
    assert byte_view([a, np.int32], "x").nbytes == 40
    assert byte_view([a, 3, np.int32], "x").nbytes == 12
    f = np.asfortranarray(np.arange(12.0).reshape(3, 4))
    v = byte_view(f, "x", writable=True)
    assert v.nbytes == 96
    with pytest.raises(TypeError, match="contiguous"):
        byte_view(np.arange(10)[::2], "Send buf")
    with pytest.raises(TypeError, match="read-only"):
        byte_view(b"abc", "Recv buf", writable=True)
    with pytest.raises(TypeError, match="buffer"):
        byte_view(3.5, "Send buf")
    with pytest.raises(ValueError, match="count 11"):
        byte_view([a, 11, np.int32], "Send buf")


@pytest.mark.parametrize(
    "a",
    [
        np.arange(8, dtype=np.uint8),
        np.zeros((3, 4), ">f4"),
        np.arange(100_000.0).reshape(10, -1),
        np.zeros(0),
        np.array(5),
        np.ones(3, complex),
        np.array([True, False]),
    ],
)
def test_plain_arrays_skip_pickle_and_round_trip_writable(a):
    fr = frames.dumps(a)
    assert bytes(fr[0][:4]) == frames.ARRAY_MAGIC
    assert len(fr) == (2 if a.nbytes >= frames.OOB_THRESHOLD else 1)
    for received in ([memoryview(bytes(f)) for f in fr], [memoryview(bytearray(f)) for f in fr]):
        out = frames.loads(received)
        assert out.dtype == a.dtype and out.shape == a.shape and out.flags.writeable
        np.testing.assert_array_equal(out, a)


def test_arrays_that_are_not_plain_still_pickle():
    for a in (np.arange(10)[::2], np.zeros(2, [("x", "i4")]), np.array([1, "a"], dtype=object)):
        fr = frames.dumps(a)
        assert bytes(fr[0][:4]) != frames.ARRAY_MAGIC
        out = frames.loads(fr)
        assert out.dtype == a.dtype and (out == a).all()


@pytest.mark.parametrize("dtype", ["f8", "i4", "c16", "f2", "u1"])
@pytest.mark.parametrize("shape", [(3,), (2, 3), (1, 1, 4), ()])
@pytest.mark.parametrize("offset", [0, 5, 8])
def test_small_plain_arrays_come_back_aligned_from_any_frame(dtype, shape, offset):
    a = np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape)
    (frame,) = frames.dumps(a)
    # a writable frame as a transport hands it over: at an 8-aligned or odd address
    raw = bytearray(frame.nbytes + 16)
    start = -np.frombuffer(raw, np.uint8).ctypes.data % 16 + offset
    raw[start : start + frame.nbytes] = frame
    out = frames.loads([memoryview(raw)[start : start + frame.nbytes]])
    np.testing.assert_array_equal(out, a)
    assert out.dtype == a.dtype and out.flags.aligned and out.flags.writeable
    if offset == 0:  # on an aligned frame the array is a view, no copy
        assert np.shares_memory(out, np.frombuffer(raw, np.uint8))


def test_a_marker_stands_for_what_could_not_be_pickled():
    fr, failure = frames.dumps_or_marker({"lock": threading.Lock()}, "gather", 3)
    assert isinstance(failure, SerializationError) and "_thread.lock" in str(failure)
    marker = frames.loads([memoryview(bytearray(f)) for f in fr])
    with pytest.raises(SenderFailedError, match=r"gather #1: rank 3 could not send.*_thread"):
        frames.raise_if_failed([1, marker, 2], "gather #1")
    frames.raise_if_failed([1, 2], "gather #1")  # nothing missing: no error
    assert frames.dumps_or_marker([1], "gather", 0)[1] is None
