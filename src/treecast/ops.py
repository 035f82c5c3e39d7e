"""Reduction operators (``SUM``, ``MAX``, ..., ``Op.Create``) for Python objects and buffers.

An operator combines two contributions as ``left (op) right``, where ``left`` holds the
lower ranks. Reductions keep rank order, so a reduce over ranks ``0..p-1`` computes
``x0 op x1 op ... op x(p-1)`` even for a non-commutative operator.

Object form (``allreduce`` and the other lowercase calls): ``op(left, right)`` returns the
result, with mpi4py's definitions: ``MAX``/``MIN`` compare with ``>``/``<`` and keep ``left``
on ties, ``LAND``/``LOR``/``LXOR`` return a ``bool``, ``MAXLOC``/``MINLOC`` take
``(value, index)`` pairs and the lower index wins ties, ``REPLACE`` returns ``right`` and
``NO_OP`` returns ``left``. A plain callable of two objects is accepted there too, as mpi4py
does.

Buffer form (``Allreduce`` and the other capitalised calls): :meth:`Op.apply_buffer` combines
two 1-D NumPy arrays in place with NumPy ufuncs, and :meth:`Op.check_buffer` tells before
anything is sent whether the operator is defined for a dtype. ``MAXLOC``/``MINLOC`` take
two-field structured dtypes (value, index), NumPy's spelling of MPI's ``DOUBLE_INT``,
``2INT``, ... pair types.

``REPLACE`` and ``NO_OP`` are not commutative: a reduction gives the last rank's contribution
with ``REPLACE`` and the first rank's with ``NO_OP``, for objects and buffers alike. MPICH
refuses both in buffer reductions (MPI meant them for one-sided accumulate); treecast
accepts them with these definitions.

User-defined operators (:meth:`Op.Create`) follow MPI's convention ``fn(invec, inoutvec,
datatype)``, computing ``inoutvec = invec (op) inoutvec``, so ``invec`` is the left operand.
For buffers, ``invec`` and ``inoutvec`` are :class:`OpBuffer` byte views that behave like
``mpi4py.MPI.buffer`` and ``datatype`` is the items' NumPy dtype. For objects, like mpi4py,
``fn(left, right, None)`` is called and its return value is the result.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import InvalidArgumentError, InvalidArgumentTypeError
from .message.buffers import as_array

ObjectForm = Callable[[Any, Any], Any]
BufferForm = Callable[[np.ndarray, np.ndarray, bool], None]

_PREDEFINED_NAMES = (
    "SUM",
    "PROD",
    "MAX",
    "MIN",
    "LAND",
    "LOR",
    "LXOR",
    "BAND",
    "BOR",
    "BXOR",
    "MAXLOC",
    "MINLOC",
    "REPLACE",
    "NO_OP",
)


class OpBuffer(np.ndarray):
    """The bytes of one operand, as a user-defined function receives them for buffers.

    A 1-D ``uint8`` NumPy array over the operand's memory (no copy) that behaves like
    ``mpi4py.MPI.buffer``: its length is in bytes, ``buf[i]`` is an ``int``,
    ``buf[a:b] = obj`` copies the raw bytes of any buffer-protocol object (an
    ``array.array``, a NumPy array of any dtype, ``bytes``) and ``buf[a:b] = n`` fills with
    the byte ``n``. ``numpy.frombuffer(buf, dtype)`` views it as items, writable.
    """

    def __getitem__(self, key: Any) -> Any:
        item = super().__getitem__(key)
        return int(item) if isinstance(item, np.uint8) else item

    def __setitem__(self, key: Any, value: Any) -> None:
        if (
            self.dtype == np.uint8
            and isinstance(key, slice)
            and not isinstance(value, (int, np.integer))
        ):
            value = _raw_bytes(value)
        super().__setitem__(key, value)

    @property
    def address(self) -> int:
        """Address of the first byte, as ``mpi4py.MPI.buffer.address``."""
        return int(self.ctypes.data)

    @property
    def readonly(self) -> bool:
        """Whether the bytes are read-only, as ``mpi4py.MPI.buffer.readonly``."""
        return not self.flags.writeable

    def cast(self, format: str, shape: tuple[int, ...] | None = None) -> memoryview:
        """A ``memoryview`` of the bytes with another format, as ``mpi4py.MPI.buffer.cast``.

        Raises:
            TypeError: ``format`` is not a single native ``struct`` format character.
            ValueError: the byte length is not a multiple of the format's size.
        """
        view: Any = self.data
        return view.cast(format) if shape is None else view.cast(format, shape)


def _raw_bytes(value: Any) -> Any:
    """The bytes of a buffer-protocol ``value`` as a ``uint8`` array; anything else as is."""
    if isinstance(value, np.ndarray):
        return np.ascontiguousarray(value).reshape(-1).view(np.uint8)
    try:
        return np.frombuffer(value, dtype=np.uint8)
    except TypeError:
        return value


def _op_buffer(array: np.ndarray) -> OpBuffer:
    return array.view(np.uint8).view(OpBuffer)


# ---- object forms, as mpi4py defines them ----------------------------------------------


def _max(x: Any, y: Any) -> Any:
    return y if y > x else x


def _min(x: Any, y: Any) -> Any:
    return y if y < x else x


def _maxloc(x: Any, y: Any) -> tuple[Any, Any]:
    u, i = x
    v, j = y
    if u > v:
        return u, i
    if v > u or j < i:
        return v, j
    return u, i


def _minloc(x: Any, y: Any) -> tuple[Any, Any]:
    u, i = x
    v, j = y
    if u < v:
        return u, i
    if v < u or j < i:
        return v, j
    return u, i


_OBJECT_FORMS: dict[str, ObjectForm] = {
    "SUM": lambda x, y: x + y,
    "PROD": lambda x, y: x * y,
    "MAX": _max,
    "MIN": _min,
    "LAND": lambda x, y: bool(x) & bool(y),
    "LOR": lambda x, y: bool(x) | bool(y),
    "LXOR": lambda x, y: bool(x) ^ bool(y),
    "BAND": lambda x, y: x & y,
    "BOR": lambda x, y: x | y,
    "BXOR": lambda x, y: x ^ y,
    "MAXLOC": _maxloc,
    "MINLOC": _minloc,
    "REPLACE": lambda x, y: y,
    "NO_OP": lambda x, y: x,
}


# ---- buffer forms ------------------------------------------------------------------------


def _ufunc_form(ufunc: np.ufunc) -> BufferForm:
    def combine(incoming: np.ndarray, local: np.ndarray, incoming_first: bool) -> None:
        # Operand order is kept even for commutative ufuncs: np.maximum(0.0, -0.0) and
        # np.maximum(-0.0, 0.0) differ, and results must not depend on the schedule's side.
        if incoming_first:
            ufunc(incoming, local, out=local)
        else:
            ufunc(local, incoming, out=local)

    return combine


def _loc_form(better: np.ufunc) -> BufferForm:
    """MAXLOC (``better`` = ``np.greater``) or MINLOC (``np.less``) on (value, index) pairs,
    with exactly the object form's choice: ``right`` wins when its value is better, or when
    neither value is better (ties, NaN) and its index is lower."""

    def combine(incoming: np.ndarray, local: np.ndarray, incoming_first: bool) -> None:
        value, index = local.dtype.names or ()
        left, right = (incoming, local) if incoming_first else (local, incoming)
        take_right = better(right[value], left[value]) | (
            ~better(left[value], right[value]) & (right[index] < left[index])
        )
        np.copyto(local, incoming, where=~take_right if incoming_first else take_right)

    return combine


def _replace(incoming: np.ndarray, local: np.ndarray, incoming_first: bool) -> None:
    if not incoming_first:
        np.copyto(local, incoming)


def _no_op(incoming: np.ndarray, local: np.ndarray, incoming_first: bool) -> None:
    if incoming_first:
        np.copyto(local, incoming)


_BUFFER_FORMS: dict[str, BufferForm] = {
    "SUM": _ufunc_form(np.add),
    "PROD": _ufunc_form(np.multiply),
    "MAX": _ufunc_form(np.maximum),
    "MIN": _ufunc_form(np.minimum),
    "LAND": _ufunc_form(np.logical_and),
    "LOR": _ufunc_form(np.logical_or),
    "LXOR": _ufunc_form(np.logical_xor),
    "BAND": _ufunc_form(np.bitwise_and),
    "BOR": _ufunc_form(np.bitwise_or),
    "BXOR": _ufunc_form(np.bitwise_xor),
    "MAXLOC": _loc_form(np.greater),
    "MINLOC": _loc_form(np.less),
    "REPLACE": _replace,
    "NO_OP": _no_op,
}


def _is_pair(dtype: np.dtype) -> bool:
    fields = dtype.fields
    if fields is None or len(fields) != 2:
        return False
    value, index = (fields[name][0] for name in dtype.names or ())
    return value.kind in "iuf" and index.kind in "iu"


_PAIR = (
    "a two-field structured (value, index) dtype such as [('value', 'f8'), ('index', 'i4')], "
    "the value integer or floating-point, the index integer"
)
_NUMERIC = "an integer, floating-point or complex dtype"
_ORDERED = "an integer or floating-point dtype (complex numbers have no order)"
_LOGICAL = "an integer or bool dtype"

# Which dtypes each predefined operator takes, after MPI's type groups.
_BUFFER_RULES: dict[str, tuple[Callable[[np.dtype], bool], str]] = {
    "SUM": (lambda dt: dt.kind in "iufc", _NUMERIC),
    "PROD": (lambda dt: dt.kind in "iufc", _NUMERIC),
    "MAX": (lambda dt: dt.kind in "iuf", _ORDERED),
    "MIN": (lambda dt: dt.kind in "iuf", _ORDERED),
    "LAND": (lambda dt: dt.kind in "iub", _LOGICAL),
    "LOR": (lambda dt: dt.kind in "iub", _LOGICAL),
    "LXOR": (lambda dt: dt.kind in "iub", _LOGICAL),
    "BAND": (lambda dt: dt.kind in "iub", _LOGICAL),
    "BOR": (lambda dt: dt.kind in "iub", _LOGICAL),
    "BXOR": (lambda dt: dt.kind in "iub", _LOGICAL),
    "MAXLOC": (_is_pair, _PAIR),
    "MINLOC": (_is_pair, _PAIR),
}


# ---- operators -------------------------------------------------------------------------

_NULL = "null"
_PREDEFINED = "predefined"
_USER = "user"
_CALLABLE = "callable"
_FREED = "freed"


class _Handle:
    """The identity of one operator: every :class:`Op` copied from another shares its handle
    and compares equal to it, like two mpi4py ``Op`` objects holding the same MPI handle."""

    __slots__ = ("commute", "function", "kind", "name")

    def __init__(
        self, name: str, kind: str, commute: bool, function: Callable[..., Any] | None = None
    ) -> None:
        self.name = name
        self.kind = kind
        self.commute = commute
        self.function = function


_NULL_HANDLE = _Handle("OP_NULL", _NULL, False)


def _function_name(function: Callable[..., Any]) -> str:
    return str(getattr(function, "__qualname__", None) or repr(function))


_ACCEPTED: set[tuple[str, np.dtype]] = set()
"""(predefined operator, dtype) pairs already checked: the check runs once per pair."""


class Op:
    """A reduction operator, mpi4py-compatible.

    The predefined ones are module constants (``SUM``, ``MAX``, ...); :meth:`Create` makes a
    user-defined one. ``Op()`` is ``OP_NULL`` and ``Op(other)`` a copy that compares equal to
    ``other``.

    Args:
        op: the operator to copy, or ``None`` for ``OP_NULL``.

    Raises:
        InvalidArgumentTypeError: ``op`` is neither an ``Op`` nor ``None``.
    """

    __slots__ = ("_handle",)

    def __init__(self, op: Op | None = None) -> None:
        if op is not None and not isinstance(op, Op):
            raise InvalidArgumentTypeError(
                f"Op: expected an Op to copy, or nothing for OP_NULL; got {_describe(op)}"
            )
        self._handle: _Handle = _NULL_HANDLE if op is None else op._handle

    @classmethod
    def Create(cls, function: Callable[..., Any], commute: bool = False) -> Op:
        """Create a user-defined operator, as ``MPI_Op_create``.

        ``function(invec, inoutvec, datatype)`` must compute ``inoutvec = invec (op)
        inoutvec``. For buffers it gets two :class:`OpBuffer` byte views and the items'
        NumPy dtype, and writes into ``inoutvec``; for objects it gets ``(left, right, None)``
        and returns the result (mpi4py's convention). ``commute=True`` lets reductions
        combine contributions out of rank order.

        Raises:
            InvalidArgumentTypeError: ``function`` is not callable, or its signature cannot
                take the three arguments (checked here, not inside a reduction on every rank).
        """
        if not callable(function):
            raise InvalidArgumentTypeError(
                f"Op.Create: function must be callable as function(invec, inoutvec, datatype); "
                f"got {_describe(function)}"
            )
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):  # a builtin without one: trust it
            signature = None
        if signature is not None:
            try:
                signature.bind(None, None, None)
            except TypeError:
                raise InvalidArgumentTypeError(
                    f"Op.Create: function must take three arguments (invec, inoutvec, "
                    f"datatype), as MPI_Op_create's; {_function_name(function)}{signature} "
                    f"cannot"
                ) from None
        op = cls.__new__(cls)
        op._handle = _Handle(_function_name(function), _USER, bool(commute), function)
        return op

    @property
    def name(self) -> str:
        """``"SUM"``, ``"OP_NULL"``..., or the qualified name of a user-defined function."""
        return self._handle.name

    @property
    def is_predefined(self) -> bool:
        """Whether this is a predefined operator or ``OP_NULL``."""
        return self._handle.kind in (_PREDEFINED, _NULL)

    @property
    def is_commutative(self) -> bool:
        """Whether reductions may combine contributions out of rank order.

        Raises:
            InvalidArgumentError: the operator is ``OP_NULL`` or was freed.
        """
        return self.Is_commutative()

    def Is_commutative(self) -> bool:
        """Whether reductions may combine contributions out of rank order: ``True`` for the
        predefined operators except ``REPLACE`` and ``NO_OP``, ``commute`` for
        :meth:`Create`, ``False`` for a plain callable.

        Raises:
            InvalidArgumentError: the operator is ``OP_NULL`` or was freed.
        """
        self._usable("Is_commutative")
        return self._handle.commute

    def Free(self) -> None:
        """Free a user-defined operator: this object becomes ``OP_NULL``, and its copies
        (``Op(op)``) refuse to run.

        Raises:
            InvalidArgumentError: the operator is predefined, ``OP_NULL`` or already freed.
        """
        handle = self._handle
        if handle.kind == _PREDEFINED:
            raise InvalidArgumentError(f"Free: cannot free the predefined operator {handle.name}")
        self._usable("Free")
        handle.kind = _FREED
        self._handle = _NULL_HANDLE

    def free(self) -> None:
        """Call :meth:`Free` unless the operator is predefined, ``OP_NULL`` or freed."""
        if self._handle.kind in (_USER, _CALLABLE):
            self.Free()

    def __call__(self, x: Any, y: Any) -> Any:
        """``x (op) y`` for two Python objects, as mpi4py's ``Op.__call__``.

        Raises:
            InvalidArgumentError: the operator is ``OP_NULL`` or was freed.
        """
        handle = self._handle
        if handle.kind == _PREDEFINED:
            return _OBJECT_FORMS[handle.name](x, y)
        self._usable("Op.__call__")
        assert handle.function is not None
        if handle.kind == _USER:
            return handle.function(x, y, None)
        return handle.function(x, y)

    def check_buffer(self, dtype: np.dtype, where: str) -> None:
        """Check that the operator can reduce buffers of ``dtype``, before anything is sent.

        Predefined operators follow MPI's type groups: ``SUM``/``PROD`` take integer,
        floating-point and complex dtypes; ``MAX``/``MIN`` integer and floating-point;
        the logical and bitwise operators integer and bool; ``MAXLOC``/``MINLOC``
        two-field structured (value, index) dtypes. ``REPLACE``, ``NO_OP`` and user-defined
        operators take any dtype. No operator takes a dtype holding Python objects.

        Args:
            dtype: the items' dtype.
            where: the calling collective, for messages (``"Allreduce"``).

        Raises:
            InvalidArgumentError: the operator is not defined for ``dtype``, or is
                ``OP_NULL`` or freed.
            InvalidArgumentTypeError: the operator is a plain callable, which only the
                lowercase object forms accept.
        """
        dtype = np.dtype(dtype)
        handle = self._handle
        if (handle.name, dtype) in _ACCEPTED and handle.kind == _PREDEFINED:
            return
        self._usable(where)
        if handle.kind == _CALLABLE:
            raise InvalidArgumentTypeError(
                f"{where}: op {handle.name} is a plain callable, which only the lowercase "
                f"object forms accept; for buffers make one with Op.Create(fn, commute), where "
                f"fn(invec, inoutvec, datatype) writes invec (op) inoutvec into inoutvec"
            )
        if dtype.hasobject:
            raise InvalidArgumentError(
                f"{where}: op {handle.name} cannot reduce dtype {dtype}, which holds Python "
                f"objects; use the lowercase object form for objects"
            )
        rule = _BUFFER_RULES.get(handle.name) if handle.kind == _PREDEFINED else None
        if rule is not None and not rule[0](dtype):
            raise InvalidArgumentError(
                f"{where}: op {handle.name} is not defined for dtype {dtype}; expected {rule[1]}"
            )
        if handle.kind == _PREDEFINED:
            _ACCEPTED.add((handle.name, dtype))

    def apply_buffer(self, incoming: np.ndarray, local: np.ndarray, incoming_first: bool) -> None:
        """Combine two buffers in place, vectorised: ``local = incoming (op) local`` if
        ``incoming_first``, else ``local = local (op) incoming``.

        ``incoming`` and ``local`` are 1-D contiguous arrays of one dtype and length, which
        :meth:`check_buffer` accepted. ``REPLACE`` keeps the right operand and ``NO_OP``
        the left one. A user-defined function is called once for the whole arrays; for ``local (op) incoming`` it writes into a copy of ``incoming``,
        which is then copied into ``local``.

        Raises:
            InvalidArgumentError: the operator is ``OP_NULL`` or was freed.
            InvalidArgumentTypeError: the operator is a plain callable.
        """
        handle = self._handle
        if handle.kind == _PREDEFINED:
            _BUFFER_FORMS[handle.name](incoming, local, incoming_first)
            return
        self.check_buffer(local.dtype, "apply_buffer")
        if local.size == 0:
            return
        assert handle.function is not None
        if incoming_first:
            handle.function(_op_buffer(incoming), _op_buffer(local), local.dtype)
        else:
            result = incoming.copy()
            handle.function(_op_buffer(local), _op_buffer(result), local.dtype)
            np.copyto(local, result)

    def Reduce_local(self, inbuf: Any, inoutbuf: Any) -> None:
        """``inoutbuf = inbuf (op) inoutbuf`` on local buffers, as ``MPI_Reduce_local``.

        Args:
            inbuf: a NumPy array, a buffer-protocol object, or ``[buf, datatype]`` /
                ``[buf, count, datatype]``.
            inoutbuf: the same, writable, with as many items of the same dtype.

        Raises:
            InvalidBufferError: a buffer is not contiguous, or ``inoutbuf`` is read-only.
            InvalidArgumentError: the dtypes or item counts differ, or the operator is not
                defined for the dtype, is ``OP_NULL`` or freed.
            InvalidArgumentTypeError: the operator is a plain callable.
        """
        where = "Reduce_local"
        source = as_array(inbuf, f"{where} inbuf")
        target = as_array(inoutbuf, f"{where} inoutbuf", writable=True)
        if source.dtype != target.dtype:
            raise InvalidArgumentError(
                f"{where}: inbuf has dtype {source.dtype} and inoutbuf {target.dtype}; "
                f"they must match"
            )
        if source.size != target.size:
            raise InvalidArgumentError(
                f"{where}: inbuf has {source.size} items and inoutbuf {target.size}; "
                f"they must match"
            )
        self.check_buffer(target.dtype, where)
        self.apply_buffer(source, target, incoming_first=True)

    def _usable(self, where: str) -> None:
        """Raise unless the operator can run."""
        handle = self._handle
        if handle.kind == _NULL:
            raise InvalidArgumentError(
                f"{where}: op is OP_NULL; expected a predefined operator (SUM, MAX, ...) or "
                f"one made with Op.Create"
            )
        if handle.kind == _FREED:
            raise InvalidArgumentError(f"{where}: op {handle.name} was freed")

    def __bool__(self) -> bool:
        return self._handle is not _NULL_HANDLE

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Op):
            return NotImplemented
        return self._handle is other._handle

    def __hash__(self) -> int:
        return id(self._handle)

    def __repr__(self) -> str:
        handle = self._handle
        if handle.kind == _USER:
            return f"<Op {handle.name} (user-defined, commute={handle.commute})>"
        if handle.kind == _CALLABLE:
            return f"<Op {handle.name} (callable)>"
        if handle.kind == _FREED:
            return f"<Op {handle.name} (freed)>"
        return f"<Op {handle.name}>"

    def __reduce__(self) -> str | tuple[Any, ...]:
        handle = self._handle
        if handle.kind == _USER:
            return (type(self).Create, (handle.function, handle.commute))
        if handle.kind == _CALLABLE:
            return (_from_callable, (handle.function,))
        if handle.kind == _FREED:
            raise InvalidArgumentError(f"cannot pickle op {handle.name}: it was freed")
        canonical = _BY_NAME[handle.name]
        return handle.name if self is canonical else (Op, (canonical,))


def _from_callable(function: Callable[[Any, Any], Any]) -> Op:
    """A non-commutative operator calling ``function(left, right)`` on objects."""
    op = Op.__new__(Op)
    op._handle = _Handle(_function_name(function), _CALLABLE, False, function)
    return op


def _predefined(name: str) -> Op:
    op = Op.__new__(Op)
    op._handle = _Handle(name, _PREDEFINED, name not in ("REPLACE", "NO_OP"))
    return op


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def resolve_op(op: Any, where: str) -> Op:
    """The :class:`Op` for a collective's ``op`` argument, checked before anything is sent.

    An ``Op`` is returned as is. Any other callable is accepted, as mpi4py's lowercase
    calls accept it, and wrapped as a non-commutative operator calling ``op(left, right)``;
    :meth:`Op.check_buffer` refuses it for buffers.

    Args:
        op: the argument.
        where: the calling collective, for messages (``"allreduce"``).

    Raises:
        InvalidArgumentTypeError: ``op`` is neither an ``Op`` nor callable.
        InvalidArgumentError: ``op`` is ``OP_NULL`` or was freed.
    """
    if isinstance(op, Op):
        op._usable(where)
        return op
    if callable(op):
        return _from_callable(op)
    hint = (
        f" (did you mean treecast.{op.upper()}?)"
        if isinstance(op, str) and op.upper() in _PREDEFINED_NAMES
        else ""
    )
    raise InvalidArgumentTypeError(
        f"{where}: op must be an Op ({', '.join(_PREDEFINED_NAMES)}, or one made with "
        f"Op.Create) or, for the lowercase object forms, a callable of two objects; "
        f"got {_describe(op)}{hint}"
    )


OP_NULL = Op()
SUM = _predefined("SUM")
PROD = _predefined("PROD")
MAX = _predefined("MAX")
MIN = _predefined("MIN")
LAND = _predefined("LAND")
LOR = _predefined("LOR")
LXOR = _predefined("LXOR")
BAND = _predefined("BAND")
BOR = _predefined("BOR")
BXOR = _predefined("BXOR")
MAXLOC = _predefined("MAXLOC")
MINLOC = _predefined("MINLOC")
REPLACE = _predefined("REPLACE")
NO_OP = _predefined("NO_OP")

_BY_NAME: dict[str, Op] = {
    op.name: op
    for op in (
        OP_NULL,
        SUM,
        PROD,
        MAX,
        MIN,
        LAND,
        LOR,
        LXOR,
        BAND,
        BOR,
        BXOR,
        MAXLOC,
        MINLOC,
        REPLACE,
        NO_OP,
    )
}

__all__ = [
    "BAND",
    "BOR",
    "BXOR",
    "LAND",
    "LOR",
    "LXOR",
    "MAX",
    "MAXLOC",
    "MIN",
    "MINLOC",
    "NO_OP",
    "OP_NULL",
    "PROD",
    "REPLACE",
    "SUM",
    "Op",
    "OpBuffer",
    "resolve_op",
]
