"""Reduction operators: object forms (mpi4py's definitions), vectorised buffer forms checked
element by element against the object forms, dtype rules, user-defined operators."""

from __future__ import annotations

import array
import pickle
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from treecast.errors import InvalidArgumentError, InvalidArgumentTypeError
from treecast.ops import (
    BAND,
    BOR,
    BXOR,
    LAND,
    LOR,
    LXOR,
    MAX,
    MAXLOC,
    MIN,
    MINLOC,
    NO_OP,
    OP_NULL,
    PROD,
    REPLACE,
    SUM,
    Op,
    OpBuffer,
    resolve_op,
)

PREDEFINED = [SUM, PROD, MAX, MIN, LAND, LOR, LXOR, BAND, BOR, BXOR, MAXLOC, MINLOC, REPLACE, NO_OP]
ELEMENTWISE = [op for op in PREDEFINED if op not in (MAXLOC, MINLOC)]

INTS = ["int32", "int64", "uint8"]
FLOATS = ["float32", "float64"]
DTYPES = [*INTS, *FLOATS, "complex128", "bool"]
VALID = {
    "SUM": {*INTS, *FLOATS, "complex128"},
    "PROD": {*INTS, *FLOATS, "complex128"},
    "MAX": {*INTS, *FLOATS},
    "MIN": {*INTS, *FLOATS},
    "LAND": {*INTS, "bool"},
    "LOR": {*INTS, "bool"},
    "LXOR": {*INTS, "bool"},
    "BAND": {*INTS, "bool"},
    "BOR": {*INTS, "bool"},
    "BXOR": {*INTS, "bool"},
    "REPLACE": set(DTYPES),
    "NO_OP": set(DTYPES),
}
PAIRS = [
    np.dtype([("value", "f8"), ("index", "i4")]),
    np.dtype([("v", "i4"), ("i", "i4")]),
    np.dtype([("x", "f4"), ("loc", "i8")]),
]


def _random(dtype: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Small values with repeats, so that ties and zeros (for logical operators) occur."""
    if dtype == "bool":
        return rng.integers(0, 2, n).astype(bool)
    if dtype == "uint8":
        return rng.integers(0, 256, n).astype(np.uint8)
    if dtype == "complex128":
        # integer parts: Python and NumPy products then agree to the last bit
        return (rng.integers(-9, 9, n) + 1j * rng.integers(-9, 9, n)).astype(np.complex128)
    if dtype in FLOATS:
        return (rng.integers(-4, 4, n) * rng.choice([0.5, 1.25, 1e30], n)).astype(dtype)
    return rng.integers(-100, 100, n).astype(dtype)


def _wrap(value: Any, dtype: np.dtype) -> Any:
    """A Python result as the dtype holds it: integers wrap around like NumPy's."""
    if dtype.kind in "iu" and not isinstance(value, bool):
        bits = 8 * dtype.itemsize
        value %= 1 << bits
        if dtype.kind == "i" and value >= 1 << (bits - 1):
            value -= 1 << bits
    return value


def _elementwise(op: Op, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The reference: the object form applied to each pair of Python scalars."""
    with np.errstate(over="ignore"):
        return np.array(
            [
                _wrap(op(x, y), left.dtype)
                for x, y in zip(left.tolist(), right.tolist(), strict=True)
            ],
            dtype=left.dtype,
        )


def _apply(op: Op, incoming: np.ndarray, local: np.ndarray, incoming_first: bool) -> np.ndarray:
    out = local.copy()
    with np.errstate(over="ignore", invalid="ignore"):
        op.apply_buffer(incoming.copy(), out, incoming_first)
    return out


# ---- object forms --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "x", "y", "expected"),
    [
        (MIN, 2, 3, 2),
        (MAX, 2, 3, 3),
        (SUM, 2, 3, 5),
        (PROD, 2, 3, 6),
        (SUM, [1], [2], [1, 2]),
        (SUM, "ab", "c", "abc"),
        (BAND, 6, 3, 2),
        (BOR, 6, 3, 7),
        (BXOR, 6, 3, 5),
        (LAND, 3, 5, True),
        (LAND, 3, 0, False),
        (LOR, 0, "x", True),
        (LOR, 0, [], False),
        (LXOR, 3, 5, False),
        (LXOR, 0, 5, True),
        (REPLACE, 2, 3, 3),
        (REPLACE, 3, 2, 2),
        (NO_OP, 2, 3, 2),
        (NO_OP, 3, 2, 3),
        (MAXLOC, (1.0, 4), (2.0, 3), (2.0, 3)),
        (MINLOC, (1.0, 4), (2.0, 3), (1.0, 4)),
    ],
)
def test_object_forms_match_mpi4py(op: Op, x: Any, y: Any, expected: Any) -> None:
    assert op(x, y) == expected
    assert type(op(x, y)) is type(expected)
    assert Op(op)(x, y) == expected


@pytest.mark.parametrize("x", [False, True])
@pytest.mark.parametrize("y", [False, True])
def test_logical_object_forms_on_bools(x: bool, y: bool) -> None:
    assert LAND(x, y) is (x and y)
    assert LOR(x, y) is (x or y)
    assert LXOR(x, y) is (x ^ y)


def test_max_min_keep_the_left_operand_on_ties() -> None:
    x, y = [1], [1]
    assert MAX(x, y) is x
    assert MIN(x, y) is x


def test_maxloc_minloc_objects_lower_index_wins_ties() -> None:
    u, v = ([1], [2]), ([2], [1])
    assert MINLOC(u, v)[0] is u[0] and MINLOC(v, u)[0] is u[0]
    assert MAXLOC(u, v)[0] is v[0] and MAXLOC(v, u)[1] is v[1]
    for i, j in [(0, 1), (1, 0), ([0], [1]), ([1], [0])]:
        a, b = ([1], i), ([1], j)
        winner = a if i < j else b
        for op in (MINLOC, MAXLOC):
            result = op(a, b)
            assert result[0] is winner[0] and result[1] is winner[1]


def test_op_null_and_freed_ops_refuse_to_run() -> None:
    with pytest.raises(TypeError):
        OP_NULL(None)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="OP_NULL"):
        OP_NULL(None, None)
    op = Op.Create(lambda a, b, dt: a)
    copy = Op(op)
    op.Free()
    assert op == OP_NULL
    with pytest.raises(InvalidArgumentError, match="was freed"):
        copy(1, 2)


# ---- buffer forms --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "dtype"),
    [
        pytest.param(op, dt, id=f"{op.name}-{dt}")
        for op in ELEMENTWISE
        for dt in DTYPES
        if dt in VALID[op.name]
    ],
)
def test_buffer_forms_equal_the_object_forms_elementwise(op: Op, dtype: str) -> None:
    rng = np.random.default_rng(hash((op.name, dtype)) % 2**32)
    for n in (0, 1, 2, 7, 33):
        incoming, local = _random(dtype, n, rng), _random(dtype, n, rng)
        got = _apply(op, incoming, local, incoming_first=True)
        np.testing.assert_array_equal(got, _elementwise(op, incoming, local))
        got = _apply(op, incoming, local, incoming_first=False)
        np.testing.assert_array_equal(got, _elementwise(op, local, incoming))
        assert got.dtype == np.dtype(dtype)


def test_buffer_examples_with_known_values() -> None:
    local = np.array([1, -2, 3], np.int32)
    SUM.apply_buffer(np.array([10, 20, 30], np.int32), local, True)
    np.testing.assert_array_equal(local, [11, 18, 33])
    local = np.array([1.5, -2.0, 3.0])
    MAX.apply_buffer(np.array([1.0, 7.0, 3.0]), local, False)
    np.testing.assert_array_equal(local, [1.5, 7.0, 3.0])
    local = np.array([0b1100, 0b1010], np.uint8)
    BXOR.apply_buffer(np.array([0b1010, 0b1010], np.uint8), local, True)
    np.testing.assert_array_equal(local, [0b0110, 0])
    local = np.array([0, 2, 0, 5], np.int64)
    LOR.apply_buffer(np.array([0, 0, 9, 1], np.int64), local, True)
    np.testing.assert_array_equal(local, [0, 1, 1, 1])


@pytest.mark.parametrize(
    ("op", "incoming_first", "expected"),
    [
        (REPLACE, True, [1, 2]),
        (REPLACE, False, [7, 8]),
        (NO_OP, True, [7, 8]),
        (NO_OP, False, [1, 2]),
    ],
)
def test_replace_keeps_the_right_operand_and_no_op_the_left(
    op: Op, incoming_first: bool, expected: list[int]
) -> None:
    local = np.array([1, 2], np.int16)
    op.apply_buffer(np.array([7, 8], np.int16), local, incoming_first)
    np.testing.assert_array_equal(local, expected)


def test_buffer_max_min_propagate_nan() -> None:
    for op in (MAX, MIN):
        local = np.array([np.nan, 1.0, np.nan])
        op.apply_buffer(np.array([1.0, np.nan, np.nan]), local, True)
        assert np.isnan(local).all()


@pytest.mark.parametrize("op", [MAXLOC, MINLOC], ids=lambda op: op.name)
@pytest.mark.parametrize("dtype", PAIRS, ids=str)
def test_maxloc_minloc_buffers_equal_the_object_forms(op: Op, dtype: np.dtype) -> None:
    value, index = dtype.names or ()
    rng = np.random.default_rng(7)
    for n in (0, 1, 5, 64):
        incoming, local = np.zeros(n, dtype), np.zeros(n, dtype)
        for arr in (incoming, local):
            arr[value] = rng.integers(0, 3, n)  # many value ties
            arr[index] = rng.integers(0, 4, n)
        if dtype[value].kind == "f" and n:
            incoming[value][0] = np.nan
        for first in (True, False):
            left, right = (incoming, local) if first else (local, incoming)
            expected = np.array(
                [
                    op(tuple(a), tuple(b))
                    for a, b in zip(left.tolist(), right.tolist(), strict=True)
                ],
                dtype,
            )
            got = _apply(op, incoming, local, first)
            np.testing.assert_array_equal(got[value], expected[value])
            np.testing.assert_array_equal(got[index], expected[index])


def test_maxloc_minloc_buffer_ties_go_to_the_lower_index() -> None:
    dt = PAIRS[0]
    incoming = np.array([(5.0, 3), (5.0, 1), (2.0, 0), (9.0, 9)], dt)
    local = np.array([(5.0, 2), (5.0, 2), (4.0, 8), (1.0, 0)], dt)
    for first in (True, False):
        got = _apply(MAXLOC, incoming, local, first)
        assert got.tolist() == [(5.0, 2), (5.0, 1), (4.0, 8), (9.0, 9)]
        got = _apply(MINLOC, incoming, local, first)
        assert got.tolist() == [(5.0, 2), (5.0, 1), (2.0, 0), (1.0, 0)]


# ---- user-defined operators ------------------------------------------------------------------

MATRIX = np.dtype([("m", "f8", (2, 2))])


def _matmul(invec: Any, inoutvec: Any, datatype: Any) -> None:
    """inoutvec = invec @ inoutvec, per element: non-commutative."""
    assert datatype == MATRIX
    a = np.frombuffer(invec, dtype=datatype)["m"]
    b = np.frombuffer(inoutvec, dtype=datatype)["m"]
    b[...] = a @ b


@pytest.mark.parametrize("n", [1, 4, 9])
def test_non_commutative_user_op_in_both_orders(n: int) -> None:
    rng = np.random.default_rng(n)
    incoming, local = np.zeros(n, MATRIX), np.zeros(n, MATRIX)
    incoming["m"] = rng.integers(-5, 5, (n, 2, 2))
    local["m"] = rng.integers(-5, 5, (n, 2, 2))
    local["m"][0] = [[0, 1], [0, 0]]
    incoming["m"][0] = [[0, 0], [1, 0]]
    op = Op.Create(_matmul, commute=False)
    assert not op.is_commutative
    op.check_buffer(MATRIX, "Allreduce")
    first = _apply(op, incoming, local, incoming_first=True)
    np.testing.assert_array_equal(first["m"], incoming["m"] @ local["m"])
    second = _apply(op, incoming, local, incoming_first=False)
    np.testing.assert_array_equal(second["m"], local["m"] @ incoming["m"])
    assert not np.array_equal(first["m"][0], second["m"][0])


def test_user_op_affine_order_matters_and_incoming_is_untouched() -> None:
    def twice_plus(invec: Any, inoutvec: Any, datatype: Any) -> None:
        a = np.frombuffer(invec, dtype=datatype)
        b = np.frombuffer(inoutvec, dtype=datatype)
        b[:] = 2 * a + b

    op = Op.Create(twice_plus)
    incoming = np.array([1, 2, 3], np.int64)
    local = np.array([10, 20, 30], np.int64)
    out = local.copy()
    op.apply_buffer(incoming, out, True)
    np.testing.assert_array_equal(out, [12, 24, 36])
    out = local.copy()
    op.apply_buffer(incoming, out, False)
    np.testing.assert_array_equal(out, [21, 42, 63])
    np.testing.assert_array_equal(incoming, [1, 2, 3])
    empty = np.zeros(0, np.int64)
    op.apply_buffer(empty, empty.copy(), False)


def _mysum(a: Any, b: Any, dt: Any) -> Any:
    """mpi4py's test_op.mysum: objects when dt is None, else int buffers via array.array."""
    if dt is None:
        for i in range(len(a)):
            b[i] = a[i] + b[i]
        return b
    assert dt == np.dtype("i")
    assert len(a) == len(b)
    x, y = array.array("i"), array.array("i")
    x.frombytes(memoryview(a).tobytes())
    y.frombytes(memoryview(b).tobytes())
    b[:] = array.array("i", [p + q for p, q in zip(x, y, strict=True)])
    return None


def test_user_op_written_for_mpi4py_buffers_and_objects() -> None:
    op = Op.Create(_mysum, commute=True)
    assert op.is_commutative and not op.is_predefined
    a = array.array("i", [0, 1, 2, 3])
    b = array.array("i", [5, 5, 5, 5])
    op.Reduce_local(a, b)
    assert list(b) == [5, 6, 7, 8]
    res = op(a, b)
    assert res is b and list(b) == [5, 7, 9, 11]
    assert Op(op)([1], [2]) == [3]


def test_user_op_byte_loop_like_mpi4py_mybor() -> None:
    def mybor(a: Any, b: Any, dt: Any) -> None:
        assert dt == np.uint8 and len(a) == len(b)
        for i in range(len(a)):
            b[i] = a[i] | b[i]

    b1, b2 = bytearray([2] * 3), bytearray([4] * 3)
    Op.Create(mybor).Reduce_local([b1, "B"], [b2, "B"])
    assert b1 == bytearray([2] * 3) and b2 == bytearray([6] * 3)


def test_user_functions_get_op_buffers_like_mpi4py_buffer() -> None:
    seen: list[tuple[Any, Any, Any]] = []
    Op.Create(lambda a, b, dt: seen.append((a, b, dt))).apply_buffer(
        np.arange(3, dtype=np.float32), np.ones(3, np.float32), True
    )
    a, b, dt = seen[0]
    assert isinstance(a, OpBuffer) and isinstance(b, OpBuffer)
    assert dt == np.float32 and len(a) == a.nbytes == 12
    assert not b.readonly and isinstance(b.address, int)
    assert a.cast("f").tolist() == [0.0, 1.0, 2.0]
    assert type(a[4]) is int and a[4:8].nbytes == 4
    b[0:4] = np.array([7.5], np.float32)
    b[4:8] = 0
    assert np.frombuffer(b, np.float32).tolist() == [7.5, 0.0, 1.0]


def test_user_op_on_objects_gets_none_as_datatype() -> None:
    calls: list[Any] = []

    def f(x: Any, y: Any, dt: Any) -> Any:
        calls.append(dt)
        return x * 10 + y

    assert Op.Create(f)(1, 2) == 12
    assert calls == [None]


# ---- dtype rules -------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ELEMENTWISE, ids=lambda op: op.name)
def test_check_buffer_accepts_exactly_mpi_type_groups(op: Op) -> None:
    for dtype in DTYPES:
        if dtype in VALID[op.name]:
            op.check_buffer(np.dtype(dtype), "Allreduce")
        else:
            with pytest.raises(InvalidArgumentError, match=f"{op.name}.*{dtype}"):
                op.check_buffer(np.dtype(dtype), "Allreduce")


@pytest.mark.parametrize(
    ("op", "dtype", "expected"),
    [
        (BAND, "float64", "integer or bool"),
        (MAXLOC, "float64", "structured"),
        (MINLOC, "int32", "structured"),
        (SUM, "object", "Python objects"),
        (MAX, "complex128", "no order"),
        (SUM, "bool", "integer, floating-point or complex"),
        (LAND, "float32", "integer or bool"),
    ],
)
def test_check_buffer_rejections_name_op_dtype_and_expectation(
    op: Op, dtype: str, expected: str
) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        op.check_buffer(np.dtype(dtype), "Allreduce")
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    for part in ("Allreduce", op.name, dtype, expected):
        assert part in message


def test_check_buffer_pair_dtypes() -> None:
    for dt in PAIRS:
        MAXLOC.check_buffer(dt, "Reduce")
        MINLOC.check_buffer(dt, "Reduce")
    for bad in (
        np.dtype([("v", "f8"), ("i", "f8")]),
        np.dtype([("v", "c16"), ("i", "i4")]),
        np.dtype([("v", "f8"), ("i", "i4"), ("x", "i4")]),
        np.dtype([("v", "f8", (2,)), ("i", "i4")]),
    ):
        with pytest.raises(InvalidArgumentError, match="MAXLOC"):
            MAXLOC.check_buffer(bad, "Reduce")
    with pytest.raises(InvalidArgumentError, match="SUM is not defined for dtype"):
        SUM.check_buffer(PAIRS[0], "Reduce")


def test_user_ops_take_any_dtype_but_objects() -> None:
    op = Op.Create(_matmul)
    for dtype in [*DTYPES, "U3", MATRIX, PAIRS[0]]:
        op.check_buffer(np.dtype(dtype), "Allreduce")
    with pytest.raises(InvalidArgumentError, match="object"):
        op.check_buffer(np.dtype(object), "Allreduce")
    with pytest.raises(InvalidArgumentError, match="object"):
        REPLACE.check_buffer(np.dtype([("a", "O"), ("b", "i4")]), "Allreduce")


# ---- resolve_op ------------------------------------------------------------------------------


def test_resolve_op_returns_ops_and_wraps_plain_callables() -> None:
    assert resolve_op(SUM, "allreduce") is SUM
    op = resolve_op(lambda a, b: a * 10 + b, "allreduce")
    assert op(1, 2) == 12 and op(2, 1) == 21
    assert not op.is_commutative and not op.is_predefined
    assert resolve_op(max, "allreduce")(2, 3) == 3
    with pytest.raises(InvalidArgumentTypeError, match=r"Allreduce.*plain callable.*Op\.Create"):
        op.check_buffer(np.dtype("f8"), "Allreduce")
    with pytest.raises(InvalidArgumentTypeError):
        op.apply_buffer(np.ones(2), np.ones(2), True)


@pytest.mark.parametrize(("value", "shown"), [("sum", "'sum'"), (3, "3 (int)"), (None, "None")])
def test_resolve_op_rejects_garbage_naming_the_value(value: Any, shown: str) -> None:
    with pytest.raises(InvalidArgumentTypeError) as info:
        resolve_op(value, "allreduce")
    message = str(info.value)
    assert isinstance(info.value, TypeError)
    assert "allreduce" in message and shown in message and "SUM" in message


def test_resolve_op_suggests_the_constant_for_a_name() -> None:
    with pytest.raises(InvalidArgumentTypeError, match=r"treecast\.MAX"):
        resolve_op("max", "reduce")


def test_resolve_op_rejects_null_and_freed_ops() -> None:
    with pytest.raises(InvalidArgumentError, match="reduce: op is OP_NULL"):
        resolve_op(Op(), "reduce")
    op = Op.Create(_mysum)
    copy = Op(op)
    op.Free()
    with pytest.raises(InvalidArgumentError, match="_mysum was freed"):
        resolve_op(copy, "reduce")


# ---- the Op object ----------------------------------------------------------------------------


def test_predefined_ops_are_commutative_except_replace_and_no_op() -> None:
    for op in PREDEFINED:
        assert op.is_predefined and bool(op)
        assert op.Is_commutative() is op.is_commutative is (op not in (REPLACE, NO_OP))
    assert OP_NULL.is_predefined and not OP_NULL
    with pytest.raises(InvalidArgumentError):
        OP_NULL.Is_commutative()


def test_copies_compare_equal_and_hash_alike() -> None:
    assert Op() == OP_NULL and Op(SUM) == SUM and Op(SUM) is not SUM
    assert SUM != MAX and SUM != "SUM"
    assert len({SUM, Op(SUM), MAX}) == 2
    op = Op.Create(_mysum, True)
    assert Op(op) == op and op != Op.Create(_mysum, True)
    with pytest.raises(InvalidArgumentTypeError):
        Op("SUM")  # type: ignore[arg-type]


def test_create_and_free() -> None:
    for commute in (True, False, 1, 0):
        op = Op.Create(_mysum, commute)  # type: ignore[arg-type]
        assert op.Is_commutative() is bool(commute)
        op.Free()
        assert op == OP_NULL and op.is_predefined
        with pytest.raises(InvalidArgumentError, match="OP_NULL"):
            op.Free()
    op = Op.Create(_mysum)
    op.free()
    op.free()
    assert op == OP_NULL
    with pytest.raises(InvalidArgumentError, match="predefined operator SUM"):
        SUM.Free()
    SUM.free()
    assert SUM.is_commutative
    with pytest.raises(InvalidArgumentTypeError, match="callable"):
        Op.Create(3)  # type: ignore[arg-type]


def test_repr_names_the_op() -> None:
    assert repr(SUM) == "<Op SUM>" and repr(OP_NULL) == "<Op OP_NULL>"
    assert "_mysum" in repr(Op.Create(_mysum)) and "commute=False" in repr(Op.Create(_mysum))
    assert "max" in repr(resolve_op(max, "reduce"))


def test_pickling() -> None:
    for op in [*PREDEFINED, OP_NULL]:
        assert pickle.loads(pickle.dumps(op)) is op
        clone = pickle.loads(pickle.dumps(Op(op)))
        assert clone is not op and clone == op
    for commute in (True, False):
        user = Op.Create(_mysum, commute)
        clone = pickle.loads(pickle.dumps(user))
        assert clone != user
        user.Free()
        assert clone([2], [3]) == [5] and clone.Is_commutative() is commute
    assert pickle.loads(pickle.dumps(resolve_op(max, "reduce")))(2, 5) == 5


def test_reduce_local() -> None:
    inout = np.array([[1, 2], [3, 4]], np.int32)
    SUM.Reduce_local(np.full((2, 2), 10, np.int32), inout)
    np.testing.assert_array_equal(inout, [[11, 12], [13, 14]])
    with pytest.raises(InvalidArgumentError, match="3 items and inoutbuf 2"):
        SUM.Reduce_local(np.ones(3), np.ones(2))
    with pytest.raises(InvalidArgumentError, match="float64 and inoutbuf int64"):
        SUM.Reduce_local(np.ones(2), np.ones(2, np.int64))
    with pytest.raises(InvalidArgumentError, match=r"BAND.*float64"):
        BAND.Reduce_local(np.ones(2), np.ones(2))


# ---- property: vectorised == element by element ----------------------------------------------

INT_OPS = [SUM, PROD, MAX, MIN, LAND, LOR, LXOR, BAND, BOR, BXOR, REPLACE, NO_OP]
FLOAT_OPS = [SUM, PROD, MAX, MIN, REPLACE, NO_OP]


@st.composite
def _case(draw: st.DrawFn) -> tuple[Op, np.ndarray, np.ndarray, bool]:
    dtype = draw(st.sampled_from(["int64", "float64"]))
    op = draw(st.sampled_from(INT_OPS if dtype == "int64" else FLOAT_OPS))
    n = draw(st.integers(0, 40))
    elements = (
        st.integers(-(2**63), 2**63 - 1)
        if dtype == "int64"
        else st.floats(allow_nan=False, allow_subnormal=True)
    )
    pair = hnp.arrays(np.dtype(dtype), n, elements=elements)
    return op, draw(pair), draw(pair), draw(st.booleans())


@settings(max_examples=100, deadline=None)
@given(_case())
def test_apply_buffer_equals_elementwise_reference(
    case: tuple[Op, np.ndarray, np.ndarray, bool],
) -> None:
    op, incoming, local, incoming_first = case
    got = _apply(op, incoming, local, incoming_first)
    left, right = (incoming, local) if incoming_first else (local, incoming)
    np.testing.assert_array_equal(got, _elementwise(op, left, right))


def test_op_create_checks_the_functions_signature_at_once():
    with pytest.raises(InvalidArgumentTypeError, match=r"three arguments.*\(a, b\)"):
        Op.Create(lambda a, b: a + b)
    for fn in (lambda a, b, dt: None, lambda a, b, dt=None: None, lambda *args: None, max):
        assert Op.Create(fn, commute=True).is_commutative
