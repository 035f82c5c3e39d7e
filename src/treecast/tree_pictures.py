"""``treecast tree``: a communication tree as text (the default) or as a picture.

``--format ascii`` prints the tree as indented text, children in the order they are sent to.
``--format svg`` and ``png`` draw it with matplotlib (the ``bench`` extra): every rank is a
labelled circle (the root's outline bold), every edge an arrow from parent to child numbered
with the step of its send (:meth:`~treecast.topology.trees.Tree.receive_steps`), the two trees
of the two-tree broadcast are drawn side by side, and with ``--nodes K`` (``K:interleaved``,
as ``TREECAST_FAKE_NODES``) the ranks of each node are boxed together and the edges between
nodes are dashed.

Layout (:func:`layout`): depth goes down; every leaf gets a column of its own, in the order
its parent sends to it, and a parent sits over the middle of its children (a tidy tree, so no
rank ever stands under a parent that is not its own). With nodes, each node's ranks take a
band of columns of their own, so that a node's box holds its ranks and nothing else; edges
between nodes run between the boxes. networkx's layered layout places a child under another
parent, and graphviz's clusters need the ``dot`` program, which pip cannot install: so the
layout is this small function, and matplotlib does the drawing.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .topology import trees
from .topology.trees import Tree

FORMATS = ("ascii", "svg", "png")
SHAPES = ("binomial", "knomial", "kary", "chain", "inorder", "two-tree")
RADIX = {"knomial": (4, 2), "kary": (2, 1)}
"""Shapes with a radix ``-k``: (default, least allowed)."""
MAX_DRAWN_RANKS = 256
"""Most ranks a picture holds (each rank is a column or a row of its own)."""
EXTRA_HINT = "pip install 'treecast[bench]'"

NODE_GAP = 0.6
"""Empty columns between two nodes' bands."""
BOX_PAD = 0.38
"""Margin of a node's box around its ranks' centres, in columns and levels."""
COLUMN_INCHES, LEVEL_INCHES = 0.62, 0.8
CHARACTER_INCHES = 0.085
"""About the width of a character of the titles, so that they are never cut."""
MARKER_POINTS = 22
EDGE_COLOURS = ("#1f5fa8", "#d9730d")
NODE_FILLS = ("#dbe9f6", "#fde2c8", "#d9f0d3", "#f3d9ec", "#fff3b0", "#e0e0e0", "#d5f2f2")
NODE_EDGES = ("#5b8fc7", "#e39b55", "#6fb36a", "#c27bb0", "#c9b13c", "#8c8c8c", "#4fa8a8")


@dataclass(frozen=True)
class Drawing:
    """What ``treecast tree`` shows: the trees of one shape and, if known, the node of
    each rank."""

    shape: str
    size: int
    root: int
    trees: tuple[Tree, ...]
    nodes: tuple[int, ...] | None = None
    placement: str = "contiguous"

    def heading(self, i: int) -> str:
        """The ascii heading of tree ``i`` (unchanged since the first release)."""
        tree = self.trees[i]
        several = f" (tree {i + 1} of {len(self.trees)})" if len(self.trees) > 1 else ""
        return (
            f"{self.shape} tree, {self.size} ranks, root {self.root}, depth {tree.depth()}"
            f"{several}:"
        )

    def title(self) -> str:
        """The picture's title: shape, size, root and, with nodes, how many sends cross."""
        name = "two trees" if len(self.trees) > 1 else f"{self.shape} tree"
        text = f"{name}, {self.size} rank{'s' if self.size > 1 else ''}, root {self.root}"
        if len(self.trees) == 1:
            text += f", depth {self.trees[0].depth()}"
        if self.nodes is None:
            return text
        crossing = sum(
            self.nodes[child] != self.nodes[parent]
            for tree in self.trees
            for child, parent in enumerate(tree.parents)
            if parent is not None
        )
        count = len(set(self.nodes))
        return (
            f"{text}\n{count} node{'s' if count > 1 else ''} ({self.placement}): "
            f"{crossing} send{'' if crossing == 1 else 's'} between nodes"
        )


def build_trees(shape: str, size: int, root: int, k: int | None = None) -> tuple[Tree, ...]:
    """The trees of ``shape`` (two for ``"two-tree"``, else one).

    Raises:
        ValueError: an unknown shape, ``size < 1``, ``root`` outside ``[0, size)``, or a
            radix ``k`` below the shape's least (2 for knomial, 1 for kary) or given to a
            shape without one.
    """
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; expected one of {', '.join(SHAPES)}")
    if size < 1:
        raise ValueError(f"-n must be >= 1 (the number of ranks), got {size}")
    if k is not None and shape not in RADIX:
        raise ValueError(f"-k applies to knomial and kary, not to {shape}; got -k {k}")
    default, least = RADIX.get(shape, (0, 0))
    radix = default if k is None else k
    if radix < least:
        raise ValueError(f"-k must be >= {least} for {shape}, got {radix}")
    if shape == "knomial":
        return (trees.knomial_tree(size, root, radix),)
    if shape == "kary":
        return (trees.kary_tree(size, root, radix),)
    if shape == "chain":
        return (trees.chain_tree(size, root),)
    if shape == "inorder":
        return (trees.inorder_binary_tree(size, root),)
    if shape == "two-tree":
        return trees.two_trees(size, root)
    return (trees.binomial_tree(size, root),)


def node_layout(spec: str, size: int) -> tuple[tuple[int, ...], str]:
    """The node of each of ``size`` ranks for ``--nodes spec`` and the placement's name:
    ``"K"`` puts ranks ``0 .. size/K - 1`` on node 0 and so on, ``"K:interleaved"`` rank
    ``r`` on node ``r mod K`` (as ``TREECAST_FAKE_NODES``).

    Raises:
        ValueError: not ``K`` or ``K:interleaved`` with ``1 <= K <= size``.
    """
    count, _, placement = spec.partition(":")
    k = int(count) if count.strip().isdigit() else 0
    placement = placement.strip() or "contiguous"
    if not 1 <= k <= size or placement not in ("contiguous", "interleaved"):
        raise ValueError(
            f"--nodes {spec!r}: expected K or K:interleaved (K nodes, 1 <= K <= {size}, "
            "the number of ranks), e.g. --nodes 2"
        )
    if placement == "interleaved":
        return tuple(r % k for r in range(size)), placement
    return tuple(r * k // size for r in range(size)), placement


def _preorder(top: int, children: Sequence[Sequence[int]]) -> list[int]:
    """``top`` and the ranks below it through ``children``, parents before children,
    children in the order they are sent to."""
    order, todo = [], [top]
    while todo:
        rank = todo.pop()
        order.append(rank)
        todo.extend(reversed(children[rank]))
    return order


def layout(tree: Tree, nodes: Sequence[int] | None = None) -> dict[int, tuple[float, float]]:
    """The ``(x, y)`` of every rank: ``y`` is minus its depth; leaves take columns left to
    right in send order and a parent sits over the middle of its children on its node.
    With ``nodes`` (the node of each rank), each node in turn lays its ranks in a band of
    columns of its own: the subtrees its ranks form are placed side by side, in tree order.
    """
    node_of = tuple(nodes) if nodes is not None else (0,) * tree.size
    order = _preorder(tree.root, tree.children)
    depth = [0] * tree.size
    for rank in order:
        parent = tree.parents[rank]
        depth[rank] = 0 if parent is None else depth[parent] + 1
    kids = [[c for c in tree.children[r] if node_of[c] == node_of[r]] for r in range(tree.size)]
    on_node_below = {c for r in range(tree.size) for c in kids[r]}  # all but subtree tops
    xs: dict[int, float] = {}
    column = 0.0

    for node in sorted(set(node_of)):
        tops = [r for r in order if node_of[r] == node and r not in on_node_below]
        band = [r for top in tops for r in _preorder(top, kids)]  # subtree by subtree
        for rank in band:
            if not kids[rank]:
                xs[rank] = column
                column += 1
        for rank in reversed(band):  # children before parents
            if kids[rank]:
                xs[rank] = (xs[kids[rank][0]] + xs[kids[rank][-1]]) / 2
        column += NODE_GAP
    return {rank: (xs[rank], -float(depth[rank])) for rank in range(tree.size)}


def _matplotlib() -> Any:
    """matplotlib's ``Figure`` class.

    Raises:
        ImportError: matplotlib is not installed.
    """
    from matplotlib.figure import Figure

    return Figure


def node_boxes(
    pos: dict[int, tuple[float, float]], nodes: Sequence[int]
) -> dict[int, tuple[float, float, float, float]]:
    """The box of each node, ``(left, bottom, right, top)``: around its ranks' centres,
    :data:`BOX_PAD` away from the outermost."""
    boxes = {}
    for node in sorted(set(nodes)):
        xs = [pos[r][0] for r in pos if nodes[r] == node]
        ys = [pos[r][1] for r in pos if nodes[r] == node]
        boxes[node] = (min(xs) - BOX_PAD, min(ys) - BOX_PAD, max(xs) + BOX_PAD, max(ys) + BOX_PAD)
    return boxes


def _draw_boxes(
    ax: Any, pos: dict[int, tuple[float, float]], nodes: Sequence[int], gid: str
) -> None:
    """Box the ranks of each node (:func:`node_boxes`), its name in the box's lower left
    corner."""
    from matplotlib.patches import FancyBboxPatch

    for node, (x0, y0, x1, y1) in node_boxes(pos, nodes).items():
        width, height = x1 - x0, y1 - y0
        colour = node % len(NODE_FILLS)
        box = FancyBboxPatch(
            (x0, y0),
            width,
            height,
            boxstyle="round,pad=0,rounding_size=0.12",
            facecolor=NODE_FILLS[colour],
            edgecolor=NODE_EDGES[colour],
            alpha=0.7,
            zorder=0,
            gid=f"{gid}-node-{node}",
        )
        ax.add_patch(box)
        ax.text(  # in the margin under its ranks, where only its own edges pass
            x0 + 0.06,
            y0 + 0.03,
            f"node {node}",
            fontsize=7,
            va="bottom",
            color=NODE_EDGES[colour],
            gid=f"{gid}-nodename-{node}",
        )


LABEL_ALONG = (0.6, 0.4, 0.7, 0.3, 0.5)
"""Where an edge's step number may sit, as a fraction of the way from parent to child, in
the order tried: all between the levels, clear of the ranks' circles."""
LABEL_CLEARANCE = (0.32, 0.2)
"""Least distance, in columns and levels, that keeps two step numbers apart."""


def label_spots(tree: Tree, pos: dict[int, tuple[float, float]]) -> dict[int, tuple[float, float]]:
    """Where to write the step number of the edge into each non-root rank: the first of
    :data:`LABEL_ALONG` that keeps clear of the numbers placed before (edges taken in
    step order), or the first of them when none does."""
    steps = tree.receive_steps()
    spots: dict[int, tuple[float, float]] = {}
    for child in sorted(range(tree.size), key=lambda r: (steps[r], pos[r][0])):
        parent = tree.parents[child]
        if parent is None:
            continue
        (x0, y0), (x1, y1) = pos[parent], pos[child]
        tries = [(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t) for t in LABEL_ALONG]
        clear = [
            (x, y)
            for x, y in tries
            if all(
                abs(x - u) >= LABEL_CLEARANCE[0] or abs(y - v) >= LABEL_CLEARANCE[1]
                for u, v in spots.values()
            )
        ]
        spots[child] = (clear or tries)[0]
    return spots


def _draw_edges(
    ax: Any,
    tree: Tree,
    pos: dict[int, tuple[float, float]],
    nodes: Sequence[int] | None,
    colour: str,
    gid: str,
) -> None:
    """An arrow from each parent to each child, numbered with the step of its send; dashed
    between nodes."""
    from matplotlib.patches import FancyArrowPatch

    steps = tree.receive_steps()
    spots = label_spots(tree, pos)
    radius = MARKER_POINTS / 2
    for child, parent in enumerate(tree.parents):
        if parent is None:
            continue
        between = nodes is not None and nodes[child] != nodes[parent]
        (x0, y0), (x1, y1) = pos[parent], pos[child]
        arrow = FancyArrowPatch(
            (x0, y0),
            (x1, y1),
            arrowstyle="-|>",
            mutation_scale=11,
            shrinkA=radius,
            shrinkB=radius + 1,
            color=colour,
            linewidth=1.3,
            linestyle="--" if between else "-",
            zorder=1,
            gid=f"{gid}-edge-{parent}-{child}",
        )
        ax.add_patch(arrow)
        ax.text(
            *spots[child],
            str(steps[child]),
            fontsize=7,
            ha="center",
            va="center",
            color=colour,
            bbox={
                "boxstyle": "round,pad=0.15",
                "facecolor": "white",
                "edgecolor": colour,
                "linewidth": 0.6,
            },
            zorder=3,
            gid=f"{gid}-step-{parent}-{child}",
        )


def _draw_ranks(
    ax: Any, tree: Tree, pos: dict[int, tuple[float, float]], nodes: Sequence[int] | None, gid: str
) -> None:
    """A circle for every rank with its number; the root's outline bold."""
    for rank, (x, y) in pos.items():
        fill = "white" if nodes is None else NODE_FILLS[nodes[rank] % len(NODE_FILLS)]
        root = rank == tree.root
        ax.plot(
            [x],
            [y],
            marker="o",
            markersize=MARKER_POINTS,
            markerfacecolor=fill,
            markeredgecolor="black",
            markeredgewidth=2.2 if root else 1.0,
            linestyle="none",
            zorder=4,
            gid=f"{gid}-rank-{rank}",
        )
        ax.text(
            x,
            y,
            str(rank),
            fontsize=9,
            ha="center",
            va="center",
            zorder=5,
            fontweight="bold" if root else "normal",
            gid=f"{gid}-label-{rank}",
        )


def _panel_title(drawing: Drawing, i: int) -> str:
    if len(drawing.trees) == 1:
        return ""
    half = "first" if i == 0 else "second"
    depth = drawing.trees[i].depth()
    return f"tree {i + 1} of {len(drawing.trees)} ({half} half of the bytes), depth {depth}"


def render_picture(drawing: Drawing, fmt: str) -> bytes:
    """The picture of ``drawing`` as SVG or PNG bytes. In SVG every rank, edge, step number
    and node box is a group whose id says what it is (``tree1-rank-3``, ``tree1-edge-0-4``,
    ``tree1-step-0-4``, ``tree1-node-1``) and text stays text.

    Raises:
        ImportError: matplotlib is not installed.
        ValueError: ``fmt`` is neither ``"svg"`` nor ``"png"``.
    """
    if fmt not in ("svg", "png"):
        raise ValueError(f"cannot draw format {fmt!r}; expected svg or png")
    figure = _matplotlib()
    from matplotlib import rc_context

    layouts = [layout(tree, drawing.nodes) for tree in drawing.trees]
    spans = [max(x for x, _ in p.values()) - min(x for x, _ in p.values()) + 1.6 for p in layouts]
    depth = max(tree.depth() for tree in drawing.trees)
    title = drawing.title()
    characters = max(
        max(map(len, title.splitlines())),
        sum(len(_panel_title(drawing, i)) + 6 for i in range(len(layouts))),
    )
    width = max(5.0, COLUMN_INCHES * sum(spans), CHARACTER_INCHES * characters)
    fig = figure(figsize=(width, LEVEL_INCHES * (depth + 1.2) + 1.5), layout="constrained")
    axes = fig.subplots(1, len(layouts), squeeze=False, width_ratios=spans)[0]
    for i, (ax, tree, pos) in enumerate(zip(axes, drawing.trees, layouts, strict=True)):
        gid = f"tree{i + 1}"
        if drawing.nodes is not None:
            _draw_boxes(ax, pos, drawing.nodes, gid)
        _draw_edges(ax, tree, pos, drawing.nodes, EDGE_COLOURS[i % len(EDGE_COLOURS)], gid)
        _draw_ranks(ax, tree, pos, drawing.nodes, gid)
        xs = [x for x, _ in pos.values()]
        ax.set_xlim(min(xs) - 0.8, max(xs) + 0.8)
        ax.set_ylim(-depth - 0.6, 0.6)
        ax.set_title(_panel_title(drawing, i), fontsize=9)
        ax.set_axis_off()
    fig.suptitle(title, fontsize=10)
    note = "Numbers on edges: the step of each send (one send at a time per rank, in order);"
    note += "\nequal numbers are sent at once."
    if drawing.nodes is not None:
        note += " Dashed: a send between nodes."
    fig.supxlabel(note, fontsize=7, color="#444444")
    out = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "treecast"}):
        fig.savefig(out, format=fmt, dpi=150, metadata=metadata)
    return out.getvalue()


def render_ascii(drawing: Drawing) -> str:
    """The trees as indented text (the first release's output); with nodes, each rank is
    followed by ``[node K]``."""
    nodes = drawing.nodes
    label = None if nodes is None else (lambda rank: f"[node {nodes[rank]}]")
    parts = [f"{drawing.heading(i)}\n{tree.render(label)}" for i, tree in enumerate(drawing.trees)]
    return "\n".join(parts) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``treecast tree``'s options."""
    parser.description = (
        "Draw a communication tree: as text (the default), or as an SVG or PNG picture with "
        "rank labels, the step of every send and, with --nodes, the ranks of each node boxed "
        "(pictures need matplotlib: " + EXTRA_HINT + ")."
    )
    parser.add_argument("-n", "--size", type=int, default=8, help="number of ranks (default 8)")
    parser.add_argument("--root", type=int, default=0, help="root rank (default 0)")
    parser.add_argument("--shape", choices=SHAPES, default="binomial", help="tree shape")
    parser.add_argument("-k", type=int, default=None, help="radix of knomial (4) or kary (2)")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="ascii (default), svg or png; also taken from -o FILE's suffix",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        default=None,
        help="write here ('-' for stdout); default: stdout for ascii, "
        "tree-SHAPE-N.FORMAT for pictures",
    )
    parser.add_argument(
        "--nodes",
        metavar="K[:interleaved]",
        default=None,
        help="the ranks lie on K nodes, as TREECAST_FAKE_NODES: 0..n/K-1 on node 0 and so "
        "on, or rank r on node r mod K; pictures box each node, ascii names it",
    )


def _format(fmt: str | None, output: str | None) -> str:
    """The format asked for, or the one ``output``'s suffix names, or ascii."""
    suffix = Path(output).suffix.lstrip(".").lower() if output and output != "-" else ""
    if fmt is None:
        return suffix if suffix in ("svg", "png") else "ascii"
    if suffix in ("svg", "png") and suffix != fmt:
        raise ValueError(f"--format {fmt} but -o {output!r} names a .{suffix} file")
    return fmt


def _drawing(args: argparse.Namespace) -> Drawing:
    """What to draw, every argument checked."""
    shape_trees = build_trees(args.shape, args.size, args.root, args.k)
    nodes, placement = (None, "contiguous")
    if args.nodes is not None:
        nodes, placement = node_layout(args.nodes, args.size)
    return Drawing(args.shape, args.size, args.root, shape_trees, nodes, placement)


def run(args: argparse.Namespace) -> int:
    """Run ``treecast tree``; return the exit status (2 for a bad argument or a missing
    matplotlib, 1 when the file cannot be written)."""
    try:
        fmt = _format(args.format, args.output)
        drawing = _drawing(args)
        if fmt != "ascii" and args.size > MAX_DRAWN_RANKS:
            raise ValueError(
                f"a picture holds at most {MAX_DRAWN_RANKS} ranks, got -n {args.size}; "
                "use --format ascii"
            )
    except ValueError as exc:
        print(f"treecast tree: {exc}", file=sys.stderr)
        return 2
    if fmt == "ascii":
        data = render_ascii(drawing).encode()
    else:
        try:
            data = render_picture(drawing, fmt)
        except ImportError:
            print(f"treecast tree: --format {fmt} needs matplotlib ({EXTRA_HINT})", file=sys.stderr)
            return 2
    path = args.output or (None if fmt == "ascii" else f"tree-{args.shape}-{args.size}.{fmt}")
    if path is None or path == "-":
        if fmt == "ascii":
            sys.stdout.write(data.decode())
        else:
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        print(f"treecast tree: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"treecast tree: wrote {path}")
    return 0
