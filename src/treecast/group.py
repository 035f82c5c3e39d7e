"""Process groups (mpi4py's ``MPI.Group``): ordered sets of the job's processes.

A group is local data, the world ranks of its members in order; making one never
communicates. ``comm.Get_group()`` gives a communicator's group, and ``comm.Create(group)``
(collective over ``comm``) or ``comm.Create_group(group)`` (collective over the group's
members only) make a communicator of a group.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from typing import Any

from .constants import PROC_NULL, UNDEFINED
from .errors import (
    ERR_ARG,
    ERR_GROUP,
    ERR_RANK,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    MPIError,
)

IDENT, CONGRUENT, SIMILAR, UNEQUAL = 0, 1, 2, 3


class GroupError(InvalidArgumentError, MPIError):
    """A bad group argument: a rank outside the group (``ERR_RANK``), a repeated rank or a
    bad range (``ERR_ARG``), or the null group (``ERR_GROUP``)."""

    def __init__(self, message: str, error_class: int) -> None:
        super().__init__(message)
        self.error_class = error_class

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.error_class))


def _ints(values: Iterable[Any], what: str, op: str) -> list[int]:
    try:
        return [operator.index(v) for v in values]
    except TypeError:
        raise InvalidArgumentTypeError(f"{op}: {what} must be ints, got {values!r}") from None


class Group:
    """An ordered set of processes. ``Group()`` is the null group; ``Group(other)`` a copy.

    Raises:
        InvalidArgumentTypeError: the argument is not a Group.
    """

    __slots__ = ("_me", "_members")

    def __init__(self, group: Group | None = None) -> None:
        if group is None:
            self._members: tuple[int, ...] | None = None
            self._me = -1
        elif isinstance(group, Group):
            self._members, self._me = group._members, group._me
        else:
            raise InvalidArgumentTypeError(
                f"Group: expected a Group to copy, got {type(group).__name__}"
            )

    @classmethod
    def _of(cls, members: Iterable[int], me: int) -> Group:
        """The group of world ranks ``members``, seen from world rank ``me``."""
        g = cls()
        g._members, g._me = tuple(members), me
        return g

    def _list(self, op: str) -> tuple[int, ...]:
        if self._members is None:
            raise GroupError(f"{op}: the group is GROUP_NULL", ERR_GROUP)
        return self._members

    def _same_process(self, other: Group) -> int:
        return self._me if self._me >= 0 else other._me

    # ---- queries -------------------------------------------------------------------------
    def Get_size(self) -> int:
        """Number of processes in the group.

        Raises:
            GroupError: the null group (``ERR_GROUP``).
        """
        return len(self._list("Get_size"))

    @property
    def size(self) -> int:
        return self.Get_size()

    def Get_rank(self) -> int:
        """This process's rank in the group, or ``UNDEFINED`` if it is not a member.

        Raises:
            GroupError: the null group (``ERR_GROUP``).
        """
        members = self._list("Get_rank")
        return members.index(self._me) if self._me in members else UNDEFINED

    @property
    def rank(self) -> int:
        return self.Get_rank()

    def Translate_ranks(
        self, ranks: Sequence[int] | None = None, group: Group | None = None
    ) -> list[int]:
        """The ranks in ``group`` (default: the world's group) of the processes with
        ``ranks`` in this group (default: all of them); ``UNDEFINED`` for a process that
        is not in ``group``, ``PROC_NULL`` stays ``PROC_NULL``.

        Raises:
            GroupError: a rank outside this group (``ERR_RANK``), or a null group.
        """
        mine = self._list("Translate_ranks")
        wanted = (
            list(range(len(mine))) if ranks is None else _ints(ranks, "ranks", "Translate_ranks")
        )
        # members are world ranks, so the world's group maps each to itself
        theirs = (
            None if group is None else {w: i for i, w in enumerate(group._list("Translate_ranks"))}
        )
        out = []
        for r in wanted:
            if r == PROC_NULL:
                out.append(PROC_NULL)
            elif not 0 <= r < len(mine):
                raise GroupError(
                    f"Translate_ranks: rank {r} is not in a group of {len(mine)}", ERR_RANK
                )
            else:
                out.append(mine[r] if theirs is None else theirs.get(mine[r], UNDEFINED))
        return out

    def Compare(self, group: Group) -> int:
        """``IDENT`` (0) for the same processes in the same order, ``SIMILAR`` (2) for the
        same processes in another order, else ``UNEQUAL`` (3).

        Raises:
            GroupError: a null group.
        """
        a, b = self._list("Compare"), group._list("Compare")
        if a == b:
            return IDENT
        return SIMILAR if sorted(a) == sorted(b) else UNEQUAL

    # ---- constructors --------------------------------------------------------------------
    def Dup(self) -> Group:
        """A copy of the group."""
        self._list("Dup")
        return Group(self)

    def Incl(self, ranks: Sequence[int]) -> Group:
        """The processes with ``ranks`` in this group, in that order.

        Raises:
            GroupError: a rank outside the group (``ERR_RANK``) or repeated (``ERR_ARG``).
        """
        members = self._list("Incl")
        picked = self._checked(_ints(ranks, "ranks", "Incl"), len(members), "Incl")
        return Group._of((members[r] for r in picked), self._me)

    def Excl(self, ranks: Sequence[int]) -> Group:
        """This group without the processes with ``ranks``, in the remaining order.

        Raises:
            GroupError: a rank outside the group (``ERR_RANK``) or repeated (``ERR_ARG``).
        """
        members = self._list("Excl")
        drop = set(self._checked(_ints(ranks, "ranks", "Excl"), len(members), "Excl"))
        return Group._of((w for i, w in enumerate(members) if i not in drop), self._me)

    def Range_incl(self, ranks: Sequence[tuple[int, int, int]]) -> Group:
        """:meth:`Incl` of the ranks of ``(first, last, stride)`` triplets (inclusive).

        Raises:
            GroupError: a zero stride or a range outside the group.
        """
        return self.Incl(self._ranges(ranks, "Range_incl"))

    def Range_excl(self, ranks: Sequence[tuple[int, int, int]]) -> Group:
        """:meth:`Excl` of the ranks of ``(first, last, stride)`` triplets (inclusive).

        Raises:
            GroupError: a zero stride or a range outside the group.
        """
        return self.Excl(self._ranges(ranks, "Range_excl"))

    def Union(self, group: Group) -> Group:
        """This group's processes, then ``group``'s that are not in it."""
        a, b = self._list("Union"), group._list("Union")
        seen = set(a)
        return Group._of([*a, *(w for w in b if w not in seen)], self._same_process(group))

    def Intersection(self, group: Group) -> Group:
        """This group's processes that are also in ``group``, in this group's order."""
        a, b = self._list("Intersection"), set(group._list("Intersection"))
        return Group._of((w for w in a if w in b), self._same_process(group))

    Intersect = Intersection

    def Difference(self, group: Group) -> Group:
        """This group's processes that are not in ``group``, in this group's order."""
        a, b = self._list("Difference"), set(group._list("Difference"))
        return Group._of((w for w in a if w not in b), self._same_process(group))

    def Free(self) -> None:
        """Make this handle the null group."""
        self._members = None

    # ---- helpers -------------------------------------------------------------------------
    @staticmethod
    def _checked(ranks: list[int], size: int, op: str) -> list[int]:
        bad = [r for r in ranks if not 0 <= r < size]
        if bad:
            raise GroupError(f"{op}: ranks {bad} are not in a group of {size}", ERR_RANK)
        if len(set(ranks)) != len(ranks):
            raise GroupError(f"{op}: ranks {ranks} repeat a rank", ERR_ARG)
        return ranks

    def _ranges(self, triplets: Sequence[tuple[int, int, int]], op: str) -> list[int]:
        size = len(self._list(op))
        out: list[int] = []
        for triplet in triplets:
            first, last, stride = _ints(triplet, "ranges", op)
            if stride == 0:
                raise GroupError(f"{op}: stride 0 in range {triplet!r}", ERR_ARG)
            if not (0 <= first < size and 0 <= last < size):
                raise GroupError(f"{op}: range {triplet!r} is outside a group of {size}", ERR_RANK)
            out.extend(range(first, last + (1 if stride > 0 else -1), stride))
        return out

    def __bool__(self) -> bool:
        return self._members is not None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Group):
            return NotImplemented
        return self._members == other._members

    __hash__ = None  # type: ignore[assignment]  # mutable (Free), as mpi4py's handles

    def __repr__(self) -> str:
        if self._members is None:
            return "<treecast.Group GROUP_NULL>"
        return f"<treecast.Group of {len(self._members)}>"

    def __reduce__(self) -> str | tuple[Any, ...]:
        if self is GROUP_NULL:
            return "GROUP_NULL"
        if self is GROUP_EMPTY:
            return "GROUP_EMPTY"
        if self._members is None:
            return (Group, ())
        if not self._members:
            return (Group, (GROUP_EMPTY,))
        raise ValueError("cannot pickle a process group (it names this job's processes)")


GROUP_NULL = Group()
GROUP_EMPTY = Group._of((), -1)
