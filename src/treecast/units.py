"""Sizes in bytes as people write them: ``4096``, ``64K``, ``1MiB``, ``256 KB``, ``1.5G``.

The one parser of every size a user gives treecast: the command line's options
(``treecast algorithms --bytes``, ``treecast bench --sizes``, ``treecast run
--ring-bytes``) through :func:`size_arg`, and the ``TREECAST_*`` variables that are sizes
(``TREECAST_SHARE_POOL_BYTES``, ``TREECAST_FRAME_POOL_BYTES``, ``TREECAST_RING_BYTES``,
``TREECAST_SHM_CHUNK``) through :func:`size_from_env`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping

from .errors import InvalidArgumentError

UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
"""Suffix -> bytes. Binary, as memory sizes are: ``K``, ``KB`` and ``KiB`` all mean 1024."""

SIZE_FORMS = (
    "a number of bytes with an optional suffix K, M, G or T (powers of 1024; KB and KiB "
    "alike), e.g. 4096, 64K, 1MiB, 1.5G"
)
"""The accepted forms, in words, for error messages and help texts."""

_SIZE = re.compile(r"(\d+)(?:\.(\d*))?\s*(?:([KMGT])(?:i?B)?|B)?", re.IGNORECASE)


def parse_size(text: str) -> int:
    """The byte count that ``text`` names: ``"64M"`` -> 67108864, ``"1.5K"`` -> 1536,
    ``"4096"``, ``"1 MiB"``, ``"2GB"`` (suffixes in any case, blanks around ignored).

    Raises:
        InvalidArgumentError: (a ``ValueError``) ``text`` is not such a size, or names a
            fraction of a byte; the message names ``text`` and the accepted forms.
    """
    m = _SIZE.fullmatch(text.strip())
    if m is None:
        raise InvalidArgumentError(f"{text!r} is not a size; expected {SIZE_FORMS}")
    whole, fraction, suffix = m.group(1), m.group(2) or "", (m.group(3) or "").upper()
    scaled = int(whole + fraction) * UNITS[suffix]
    value, rest = divmod(scaled, 10 ** len(fraction))
    if rest:
        raise InvalidArgumentError(
            f"{text!r} is not a whole number of bytes; expected {SIZE_FORMS}"
        )
    return value


def format_size(nbytes: int) -> str:
    """``67108864`` -> ``"64 MiB"``; sizes that are no whole number of a unit stay bytes
    (``"1536 B"``)."""
    for suffix in ("T", "G", "M", "K"):
        unit = UNITS[suffix]
        if nbytes >= unit and nbytes % unit == 0:
            return f"{nbytes // unit} {suffix}iB"
    return f"{nbytes} B"


def size_arg(*, at_least: int = 0) -> Callable[[str], int]:
    """An argparse ``type=`` for a size option: :func:`parse_size`, and refuse a size below
    ``at_least`` with a message naming the value and the accepted forms (argparse prints
    it as ``argument --bytes: ...``)."""
    import argparse  # only the command line needs it

    def size(text: str) -> int:
        try:
            value = parse_size(text)
        except InvalidArgumentError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        if value < at_least:
            raise argparse.ArgumentTypeError(
                f"expected a size of at least {at_least} bytes, got {text!r}"
            )
        return value

    return size


def size_from_env(
    name: str, default: int, *, at_least: int = 0, environ: Mapping[str, str] | None = None
) -> int:
    """The size in environment variable ``name`` (:func:`parse_size`'s forms), or
    ``default`` when it is unset or blank.

    Raises:
        InvalidArgumentError: the variable is set to something else than a size of at least
            ``at_least`` bytes; the message names the variable, its value and the forms.
    """
    raw = (os.environ if environ is None else environ).get(name, "")
    if not raw.strip():
        return default
    try:
        value = parse_size(raw)
    except InvalidArgumentError:
        raise InvalidArgumentError(
            f"environment variable {name}={raw!r} is not a size; expected {SIZE_FORMS} "
            f"(unset it for the default, {format_size(default)})"
        ) from None
    if value < at_least:
        raise InvalidArgumentError(
            f"environment variable {name}={raw!r} is below the least size, {at_least} "
            f"bytes (unset it for the default, {format_size(default)})"
        )
    return value
