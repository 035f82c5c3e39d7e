"""``mpi4py.util.dtlib`` under treecast: NumPy dtypes to and from MPI datatypes (the
predefined ones; derived datatypes are not implemented)."""

from __future__ import annotations

from typing import Any

import numpy as np

from treecast import MPI


def from_numpy_dtype(dtype: Any) -> Any:
    """The predefined ``MPI.Datatype`` of a NumPy dtype.

    Raises:
        NotImplementedError: the dtype needs a derived datatype (structured, sub-array).
    """
    dt = np.dtype(dtype)
    try:
        return MPI.Datatype.fromcode(dt.str if dt.fields is None else dt.descr)
    except (ValueError, TypeError):
        pass
    for d in vars(MPI).values():
        if isinstance(d, MPI.Datatype) and d and d.dtype == dt:
            return d
    raise NotImplementedError(f"from_numpy_dtype: {dt} needs a derived MPI datatype")


def to_numpy_dtype(datatype: Any) -> np.dtype:
    """The NumPy dtype of a predefined ``MPI.Datatype``."""
    return datatype.dtype
