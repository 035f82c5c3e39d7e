"""mpi4py's buffer specs: counts per block, displacements, vector forms, None and BOTTOM."""

import numpy as np
import pytest

from treecast import MPI
from treecast.errors import InvalidBufferError, InvalidCountError
from treecast.message.buffers import as_array, byte_view, vector_spec


def test_simple_specs_take_count_per_block_and_a_displacement():
    a = np.arange(10, dtype=np.int32)
    assert as_array([a, MPI.INT], "t").tolist() == list(range(10))
    assert as_array([a, 3, MPI.INT], "t").tolist() == [0, 1, 2]
    assert as_array([a, 3, MPI.INT], "t", blocks=2).tolist() == list(range(6))
    assert as_array([a, (2, 5), MPI.INT], "t").tolist() == [5, 6]
    assert as_array([a, 2, 5, "i"], "t", blocks=2).tolist() == [5, 6, 7, 8]
    assert as_array([a, (4, 1)], "t").tolist() == [1, 2, 3, 4]
    with pytest.raises(InvalidCountError, match=r"count 4 x 3 blocks does not fit"):
        as_array([a, 4, MPI.INT], "t", blocks=3)
    with pytest.raises(InvalidCountError, match="displacement 11"):
        as_array([a, (0, 11), MPI.INT], "t")
    assert byte_view([a, (2, 1), MPI.INT], "t").tobytes() == a[1:3].tobytes()
    assert byte_view([a, 2], "t").nbytes == 8  # item size from the buffer's format


def test_none_is_an_empty_message_only_with_a_zero_count():
    assert byte_view([None, 0, MPI.BYTE], "t").nbytes == 0
    assert as_array([None, 0, MPI.DOUBLE], "t").size == 0
    with pytest.raises(InvalidBufferError, match="count 3"):
        byte_view([None, 3, MPI.BYTE], "t")
    with pytest.raises(InvalidBufferError, match="NoneType"):
        byte_view(None, "t")  # a bare None is a mistake, not a message


def test_bottom_is_named_as_not_implemented():
    with pytest.raises(NotImplementedError, match="BOTTOM"):
        byte_view([MPI.BOTTOM, 1, MPI.INT], "t")
    assert MPI.BOTTOM is not MPI.IN_PLACE


@pytest.mark.parametrize("convert", [as_array, byte_view, lambda b, w: vector_spec(b, w, 2)])
def test_a_non_buffer_is_named_with_its_value_and_the_spec_that_holds_it(convert):
    with pytest.raises(InvalidBufferError, match=r"Bcast buf: .*got float 3\.5$"):
        convert(3.5, "Bcast buf")
    with pytest.raises(InvalidBufferError, match=r"first item of buffer spec \[1, 2\], got int 1$"):
        convert([1, 2], "Bcast buf")
    long = [list(range(1000)), MPI.INT]
    with pytest.raises(InvalidBufferError) as info:
        convert(long, "Bcast buf")
    assert len(str(info.value)) < 300  # long values are shortened


def test_vector_specs_follow_mpi4py():
    a = np.arange(7.0)
    _, c, d = vector_spec(a, "t", 3)  # no counts: split as evenly as possible
    assert (c, d) == ((3, 2, 2), (0, 3, 5))
    _, c, d = vector_spec([a, 2], "t", 3)  # one count for every rank, packed
    assert (c, d) == ((2, 2, 2), (0, 2, 4))
    _, c, d = vector_spec([a, (1, 3), MPI.DOUBLE], "t", 3)  # (count, stride)
    assert (c, d) == ((1, 1, 1), (0, 3, 6))
    _, c, d = vector_spec([a, ([1, 2, 3], [0, 1, 3])], "t", 3)
    assert (c, d) == ((1, 2, 3), (0, 1, 3))
    _, c, d = vector_spec([a, [1, 2, 3], None, MPI.DOUBLE], "t", 3)
    assert (c, d) == ((1, 2, 3), (0, 1, 3))
    with pytest.raises(InvalidCountError, match="rank 2"):
        vector_spec([a, [1, 2, 3], [0, 1, 5], MPI.DOUBLE], "t", 3)
