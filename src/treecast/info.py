"""mpi4py's ``MPI.Info``: hints as string keys and values (treecast reads none)."""

from __future__ import annotations

from typing import Any

from .errors import ERR_ARG, InvalidArgumentTypeError, MPIError


class Info:
    """mpi4py's ``MPI.Info``: string keys and values. treecast reads no hints from them;
    they are kept so that calls passing one (``Split_type(..., info)``) run.
    ``Info()`` is the null info object (``INFO_NULL``); :meth:`Create` makes an empty one.
    """

    __slots__ = ("_items",)

    def __init__(self, info: Info | None = None) -> None:
        self._items: dict[str, str] | None = (
            None if info is None or info._items is None else dict(info._items)
        )

    @classmethod
    def Create(cls, items: Any = None) -> Info:
        """An info object holding ``items`` (a mapping or pairs)."""
        info = cls()
        info._items = {}
        if items is not None:
            for k, v in dict(items).items():
                info.Set(k, v)
        return info

    def _live(self) -> dict[str, str]:
        if self._items is None:
            raise MPIError(ERR_ARG)
        return self._items

    def Set(self, key: str, value: str) -> None:
        """Set ``key`` to ``value`` (both strings).

        Raises:
            InvalidArgumentTypeError: a key or value that is not a string.
            MPIError: ``ERR_ARG`` on ``INFO_NULL``.
        """
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidArgumentTypeError(
                f"Info.Set: keys and values are strings, got {key!r}: {value!r}"
            )
        self._live()[key] = value

    def Get(self, key: str) -> str | None:
        """The value of ``key``, or None."""
        return self._live().get(key)

    def Delete(self, key: str) -> None:
        """Remove ``key``.

        Raises:
            KeyError: ``key`` is not set.
        """
        del self._live()[key]

    def Get_nkeys(self) -> int:
        """Number of keys."""
        return len(self._live())

    def Get_nthkey(self, n: int) -> str:
        """The ``n``-th key."""
        return list(self._live())[n]

    def Dup(self) -> Info:
        """A copy."""
        return Info(self)

    def Free(self) -> None:
        """Make this the null info object."""
        self._items = None

    def __bool__(self) -> bool:
        return self._items is not None

    def __len__(self) -> int:
        return len(self._items or {})

    def __contains__(self, key: object) -> bool:
        return key in (self._items or {})

    def __iter__(self) -> Any:
        return iter(list(self._items or {}))

    def __getitem__(self, key: str) -> str:
        return self._live()[key]

    def __setitem__(self, key: str, value: str) -> None:
        self.Set(key, value)

    def __delitem__(self, key: str) -> None:
        self.Delete(key)

    def get(self, key: str, default: Any = None) -> Any:
        return (self._items or {}).get(key, default)

    def keys(self) -> list[str]:
        return list(self._items or {})

    def values(self) -> list[str]:
        return list((self._items or {}).values())

    def items(self) -> list[tuple[str, str]]:
        return list((self._items or {}).items())

    def update(self, other: Any = (), **kwargs: str) -> None:
        for k, v in {**dict(other), **kwargs}.items():
            self.Set(k, v)

    def pop(self, key: str, *default: Any) -> Any:
        return self._live().pop(key, *default)

    def clear(self) -> None:
        self._live().clear()

    def copy(self) -> Info:
        return Info(self)

    def __eq__(self, other: object) -> bool:
        """Info objects are equal if they are the same one, or both null (as handles)."""
        if not isinstance(other, Info):
            return NotImplemented
        return self is other or (self._items is None and other._items is None)

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> str | tuple[Any, ...]:
        if self is INFO_NULL:
            return "INFO_NULL"
        if self is INFO_ENV:
            return "INFO_ENV"
        if self._items is None:
            return (Info, ())
        return (Info.Create, (dict(self._items),))


INFO_NULL = Info()
INFO_ENV = Info.Create()
