"""The rule table (``default.json``) and :func:`select`.

A table maps each collective to an ordered list of rules ``{"if": {...}, "use": name}``;
the first rule whose conditions all hold names the algorithm. ``TREECAST_RULES=path.json``
replaces the table (same format) for tuning experiments.
"""

from __future__ import annotations

import json
import logging
import os
from functools import lru_cache
from importlib import resources
from typing import Any

from ..algorithms import registry
from ..algorithms.registry import Algorithm
from ..errors import InvalidArgumentError

log = logging.getLogger("treecast.selection")

CONDITIONS = (
    "size_lt",
    "size_ge",
    "bytes_lt",
    "bytes_ge",
    "pof2",
    "commutative",
    "form",
    "nodes_ge",
)


@lru_cache(maxsize=4)
def load_rules(path: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """The rule table: ``path``, else ``TREECAST_RULES``, else the packaged default.

    Raises:
        InvalidArgumentError: the table names an unknown collective, condition or algorithm.
    """
    path = path or os.environ.get("TREECAST_RULES") or None
    if path:
        with open(path, encoding="utf-8") as f:
            table = json.load(f)
    else:
        table = json.loads(resources.files(__package__).joinpath("default.json").read_text())
    table = {k: v for k, v in table.items() if not k.startswith("_")}
    for collective, rules in table.items():
        if collective not in registry.ALGORITHMS:
            raise InvalidArgumentError(
                f"rule table: unknown collective {collective!r}; expected one of "
                f"{sorted(registry.ALGORITHMS)}"
            )
        for rule in rules:
            registry.get(collective, rule["use"])
            bad = set(rule.get("if", {})) - set(CONDITIONS)
            if bad:
                raise InvalidArgumentError(
                    f"rule table: unknown condition(s) {sorted(bad)} in {collective} rule "
                    f"{rule}; expected {list(CONDITIONS)}"
                )
    return table


def clear_caches() -> None:
    """Forget the loaded table, the forced names and every cached choice (after changing
    ``TREECAST_RULES`` or ``TREECAST_<COLLECTIVE>_ALGORITHM`` in a running process)."""
    load_rules.cache_clear()
    forced_from_env.cache_clear()
    _select.cache_clear()


def _holds(cond: dict[str, Any], facts: dict[str, Any]) -> bool:
    for key, want in cond.items():
        if key == "size_lt" and not facts["size"] < want:
            return False
        if key == "size_ge" and not facts["size"] >= want:
            return False
        if key == "bytes_lt" and not facts["bytes"] < want:
            return False
        if key == "bytes_ge" and not facts["bytes"] >= want:
            return False
        if key == "nodes_ge" and not facts["nodes"] >= want:
            return False
        if key in ("pof2", "commutative", "form") and facts[key] != want:
            return False
    return True


@lru_cache(maxsize=64)
def forced_from_env(collective: str) -> str | None:
    """``TREECAST_<COLLECTIVE>_ALGORITHM``, or None (read once; see :func:`clear_caches`)."""
    return os.environ.get(f"TREECAST_{collective.upper()}_ALGORITHM") or None


def select(
    collective: str,
    size: int,
    nbytes: int,
    *,
    commutative: bool = True,
    buffer: bool = True,
    forced: str | None = None,
    capabilities: frozenset[str] | None = None,
    nodes: int = 1,
) -> Algorithm:
    """The algorithm to run: ``forced`` (a call's ``algorithm=``) or
    ``TREECAST_<COLLECTIVE>_ALGORITHM`` if given, else the first matching rule whose
    algorithm the transport can run. An algorithm whose restriction fails here (also one
    that needs a transport capability missing from ``capabilities``, or a node layout on a
    communicator of one node) falls back to the collective's safe algorithm (logged at
    debug level). ``capabilities=None`` (callers without a communicator: tools, tests of
    the table) skips the capability check; ``nodes`` is how many nodes the communicator
    spans.

    Raises:
        InvalidArgumentError: ``forced`` is not an algorithm of ``collective``.
    """
    return _select(
        collective,
        size,
        nbytes,
        commutative,
        buffer,
        forced or forced_from_env(collective),
        capabilities,
        nodes,
    )


@lru_cache(maxsize=4096)
def _select(
    collective: str,
    size: int,
    nbytes: int,
    commutative: bool,
    buffer: bool,
    name: str | None,
    capabilities: frozenset[str] | None,
    nodes: int,
) -> Algorithm:
    if name is not None:
        algo = registry.get(collective, name)
    else:
        algo = choose(
            load_rules(), collective, size, nbytes, commutative, buffer, capabilities, nodes
        )
    why = unusable(algo, size, nbytes, commutative, buffer, capabilities, nodes)
    if why is None:
        return algo
    safe = registry.get(collective, registry.SAFE[collective])
    log.debug("%s: %s cannot run here (%s); using %s", collective, algo.name, why, safe.name)
    return safe


def choose(
    table: dict[str, list[dict[str, Any]]],
    collective: str,
    size: int,
    nbytes: int,
    commutative: bool = True,
    buffer: bool = True,
    capabilities: frozenset[str] | None = None,
    nodes: int = 1,
) -> Algorithm:
    """The algorithm that ``table``'s first matching rule names (whose algorithm the
    transport can run), else the collective's safe one; restrictions are not checked here
    (:func:`select` falls back when they fail)."""
    facts = {
        "size": size,
        "bytes": nbytes,
        "pof2": size & (size - 1) == 0,
        "commutative": commutative,
        "form": "buffer" if buffer else "object",
        "nodes": nodes,
    }
    rules = table.get(collective) or [{"use": registry.SAFE[collective]}]
    use = next(
        (
            r["use"]
            for r in rules
            if _holds(r.get("if", {}), facts)
            and _can_run(registry.get(collective, r["use"]), capabilities)
        ),
        None,
    )
    return registry.get(collective, use or registry.SAFE[collective])


def _can_run(algo: Algorithm, capabilities: frozenset[str] | None) -> bool:
    return capabilities is None or algo.requires <= capabilities


def unusable(
    algo: Algorithm,
    size: int,
    nbytes: int,
    commutative: bool,
    buffer: bool,
    capabilities: frozenset[str] | None = None,
    nodes: int = 1,
) -> str | None:
    """Why ``algo`` cannot run with these facts, or None."""
    why = algo.unusable(size, nbytes, commutative, buffer, capabilities, nodes)
    if why is None and not buffer and algo.chunks(size, nbytes) > 1:
        why = "it cuts the vector into chunks, which needs a buffer"
    return why
