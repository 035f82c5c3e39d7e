"""A rule table (``selection/default.json``'s format, loadable with ``TREECAST_RULES``) from
a grid of times, and the differences between two tables.

The grid holds, for one collective and form, the time of each algorithm at each (ranks,
bytes) point, measured or predicted. Each grid rank count ``n`` stands for the band of
counts up to the next one; in a band, each byte size's ranking becomes a *chain* of rules:
the best algorithm (the current table's choice instead where it is within
:data:`MARGIN` of the best), with the conditions its restrictions need (``pof2``, ``commutative``),
then, if it had any or needs a transport capability (the selector skips such a rule on a
transport without it), the next best that covers what is left, down to one that always
runs. Neighbouring sizes with the same chain merge, switching halfway (geometrically)
between grid sizes; neighbouring bands with the same rules merge too. The object form
cannot see sizes (the table gets -1 bytes), so each band gets the algorithm nearest to
the best over all sizes (geometric mean of time over the best time).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

from ..algorithms import registry
from ..selection.rules import choose, unusable

Table = dict[str, list[dict[str, Any]]]
"""collective -> its rules, first match wins."""
Times = dict[tuple[int, int], dict[str, float]]
"""(ranks, bytes) -> algorithm -> seconds, for one collective and form."""
Rule = dict[str, Any]
NODE_MEMORY = frozenset({"node_memory"})


def packaged_table() -> Table:
    """The rule table shipped with treecast (whatever ``TREECAST_RULES`` says)."""
    text = resources.files("treecast.selection").joinpath("default.json").read_text()
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def chain(collective: str, ranked: Sequence[str], all_pof2: bool) -> list[tuple[str, Rule]]:
    """(algorithm, extra conditions) rules for one grid point whose algorithms, best first,
    are ``ranked``: each with the conditions its restrictions need, until one needs none
    and no transport capability (then the collective's safe algorithm if none did)."""
    out: list[tuple[str, Rule]] = []
    covered: list[Rule] = []  # conditions of emitted rules that any transport can run
    for name in ranked:
        algo = registry.get(collective, name)
        cond: Rule = {}
        if algo.pof2_only and not all_pof2:
            cond["pof2"] = True
        if algo.commutative_only:
            cond["commutative"] = True
        if any(c.items() <= cond.items() for c in covered):
            continue  # an earlier rule catches every case this one would
        out.append((name, cond))
        if not algo.requires:
            covered.append(cond)
            if not cond:
                return out
    return [*out, (registry.SAFE[collective], {})]


def _edge(lo: int, hi: int) -> int:
    """A switch point between grid sizes ``lo < hi``: the power of two nearest their
    geometric mean, strictly above ``lo`` and at most ``hi``."""
    mid = 1 << round(math.log2(math.sqrt(max(lo, 1) * hi)))
    return max(lo + 1, min(hi, mid))


MARGIN = 0.1
"""How much faster than the current choice an algorithm must be to replace it."""

Prefer = Callable[[int, int], str]
"""(ranks, bytes) -> the algorithm the current table runs there."""


def ranked(times: dict[str, float], preferred: str, margin: float = MARGIN) -> list[str]:
    """Algorithms best first, the ``preferred`` one first if within ``margin`` of the best
    (a change must pay for itself: measurements and the model are not exact)."""
    order = sorted(times, key=lambda name: times[name])
    if preferred in times and times[preferred] <= (1 + margin) * times[order[0]]:
        order.remove(preferred)
        order.insert(0, preferred)
    return order


def _band_rules(
    collective: str, times: Times, n: int, sizes: Sequence[int], all_pof2: bool, keep: Prefer
) -> list[Rule]:
    """The byte-size rules of one band (whose grid rank count is ``n``), without the band's
    own condition."""
    chains = [chain(collective, ranked(times[n, s], keep(n, s)), all_pof2) for s in sizes]
    rules: list[Rule] = []
    for i, links in enumerate(chains):
        if i + 1 < len(chains) and chains[i + 1] == links:
            continue  # the next size uses the same chain: one rule for both
        upper = {"bytes_lt": _edge(sizes[i], sizes[i + 1])} if i + 1 < len(chains) else {}
        rules += [{"if": {**upper, **cond}, "use": name} for name, cond in links]
    return rules


def _object_choice(times: Times, n: int, sizes: Sequence[int], preferred: str) -> list[str]:
    """Algorithms at band ``n``, best first by the geometric mean over ``sizes`` of their
    time over the best time at each size (those timed at every size only), ``preferred``
    first if within :data:`MARGIN` of the best."""
    names = set.intersection(*(set(times[n, s]) for s in sizes))

    def score(name: str) -> float:
        logs = [math.log(times[n, s][name] / min(times[n, s].values())) for s in sizes]
        return math.exp(sum(logs) / len(logs))

    return ranked({name: score(name) for name in names}, preferred)


def _with_band(rules: list[Rule], band: Rule) -> list[Rule]:
    out = []
    for r in rules:
        cond = {**band, **r.get("if", {})}
        out.append({"if": cond, "use": r["use"]} if cond else {"use": r["use"]})
    return out


def form_rules(collective: str, form: str, times: Times, keep: Prefer) -> list[Rule]:
    """The rules of one collective and form from its grid of times (every rank count of
    the grid at every size); ``keep`` gives the current choice at each point, kept unless
    another is :data:`MARGIN` faster."""
    ns = sorted({n for n, _ in times})
    sizes = sorted({s for _, s in times})
    bands: list[tuple[int, list[Rule]]] = []
    for j, n in enumerate(ns):
        hi = ns[j + 1] if j + 1 < len(ns) else None
        all_pof2 = hi is not None and all(k & (k - 1) == 0 for k in range(n, hi))
        if form == "object":
            links = chain(collective, _object_choice(times, n, sizes, keep(n, -1)), all_pof2)
            rules = [{"if": cond, "use": name} for name, cond in links]
        else:
            rules = _band_rules(collective, times, n, sizes, all_pof2, keep)
        if not bands or bands[-1][1] != rules:  # the same rules as the band below: merge
            bands.append((j, rules))
    out: list[Rule] = []
    for k, (_, rules) in enumerate(bands):
        nxt = bands[k + 1][0] if k + 1 < len(bands) else None
        band: Rule = {"size_lt": ns[nxt]} if nxt is not None else {}
        if form == "object":
            band["form"] = "object"
        out += _with_band(rules, band)
    return out


OBJECT_REDUCTIONS = frozenset({"reduce", "allreduce", "scan", "exscan"})
"""Object-form reductions: always selected as non-commutative (rank order)."""


def tuned_table(grids: dict[tuple[str, str], Times], base: Table) -> Table:
    """``base`` with the rules of every (collective, form) in ``grids`` replaced by rules
    from its times; ``base``'s multi-node rules (``nodes_ge``) stay first."""
    table: Table = {}
    for collective, rules in base.items():
        forms = [f for f in ("object", "buffer") if (collective, f) in grids]
        if not forms:
            table[collective] = rules
            continue
        new = [r for r in rules if "nodes_ge" in r.get("if", {})]
        if "object" not in forms:
            new += [r for r in rules if r.get("if", {}).get("form") == "object"]
        for form in forms:

            def keep(n: int, nbytes: int, c: str = collective, f: str = form) -> str:
                return effective(base, c, n, nbytes, f, NODE_MEMORY)

            new += form_rules(collective, form, grids[collective, form], keep)
        table[collective] = new
    return table


def effective(
    table: Table, collective: str, size: int, nbytes: int, form: str, capabilities: frozenset[str]
) -> str:
    """What ``select`` runs with ``table`` for this call (a commutative operator for
    buffers): the rule's algorithm, or the safe one where its restriction fails."""
    buffer = form == "buffer"
    commutative = buffer or collective not in OBJECT_REDUCTIONS
    n = nbytes if buffer else -1
    algo = choose(table, collective, size, n, commutative, buffer, capabilities)
    if unusable(algo, size, n, commutative, buffer, capabilities) is not None:
        return registry.SAFE[collective]
    return algo.name


def differences(
    base: Table, table: Table, collective: str, ns: Sequence[int], sizes: Sequence[int]
) -> list[tuple[str, int, int, str, str]]:
    """(form, ranks, bytes, base's choice, ``table``'s choice) wherever the two tables run
    different algorithms on a transport with node memory (bytes -1 for the object form,
    which the tables cannot tell apart by size)."""
    forms = (
        ["buffer"]
        if collective in ("reduce_scatter", "reduce_scatter_block")
        else ["object", "buffer"]
    )
    if collective == "barrier":
        forms = ["buffer"]
    out = []
    for form in forms:
        for n in ns:
            for b in sizes if form == "buffer" else [-1]:
                was = effective(base, collective, n, b, form, NODE_MEMORY)
                now = effective(table, collective, n, b, form, NODE_MEMORY)
                if was != now:
                    out.append((form, n, b, was, now))
    return out
