"""``treecast tree --format svg|png|ascii``: pictures of every shape, their layout, the node
boxes, and the errors for bad arguments."""

from __future__ import annotations

import re
import struct
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from treecast.cli import main
from treecast.topology.trees import binomial_tree, chain_tree
from treecast.tree_pictures import (
    COLUMN_INCHES,
    LABEL_CLEARANCE,
    LEVEL_INCHES,
    MARKER_POINTS,
    SHAPES,
    build_trees,
    label_spots,
    layout,
    node_boxes,
    node_layout,
)

pytest.importorskip("matplotlib")

SVG = "{http://www.w3.org/2000/svg}"


def _groups(path: Path, kind: str) -> dict[str, str]:
    """The SVG groups whose id is ``tree<i>-<kind>-...``: id -> the text they hold."""
    found = {}
    for element in ET.parse(path).getroot().iter(f"{SVG}g"):
        gid = element.get("id") or ""
        if gid.split("-")[1:2] == [kind]:
            found[gid] = "".join(t.text or "" for t in element.iter(f"{SVG}text"))
    return found


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.parametrize("shape", SHAPES)
def test_svg_of_every_shape_labels_every_rank_and_numbers_every_send(shape, tmp_path, capsys):
    path = tmp_path / f"{shape}.svg"
    assert main(["tree", "-n", "11", "--root", "3", "--shape", shape, "-o", str(path)]) == 0
    assert capsys.readouterr().out == f"treecast tree: wrote {path}\n"
    shape_trees = build_trees(shape, 11, 3)
    labels, steps, edges = _groups(path, "label"), _groups(path, "step"), _groups(path, "edge")
    assert len(labels) == 11 * len(shape_trees)
    assert len(edges) == len(steps) == 10 * len(shape_trees)
    for i, tree in enumerate(shape_trees, 1):
        assert {labels[f"tree{i}-label-{r}"] for r in range(11)} == {str(r) for r in range(11)}
        sent = tree.receive_steps()
        for child, parent in enumerate(tree.parents):
            if parent is not None:
                assert f"tree{i}-edge-{parent}-{child}" in edges
                assert steps[f"tree{i}-step-{parent}-{child}"] == str(sent[child])
    assert not _groups(path, "node")


@pytest.mark.parametrize("shape", SHAPES)
def test_png_of_every_shape(shape, tmp_path):
    small, large = tmp_path / "small.png", tmp_path / "large.png"
    assert main(["tree", "-n", "4", "--shape", shape, "--format", "png", "-o", str(small)]) == 0
    assert main(["tree", "-n", "20", "--shape", shape, "-o", str(large)]) == 0
    (w4, h4), (w20, h20) = _png_size(small.read_bytes()), _png_size(large.read_bytes())
    assert 300 < w4 < 3000 and 300 < h4 < 3000
    assert w20 * h20 > w4 * h4  # the picture grows with the tree


def test_a_picture_is_named_after_the_shape_by_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["tree", "--shape", "knomial", "-n", "9", "--format", "svg"]) == 0
    assert main(["tree", "--shape", "chain", "-n", "3", "--format", "png"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tree-chain-3.png", "tree-knomial-9.svg"]
    assert ET.parse(tmp_path / "tree-knomial-9.svg").getroot().tag == f"{SVG}svg"


def test_svg_to_stdout(capsysbinary):
    assert main(["tree", "-n", "5", "--format", "svg", "-o", "-"]) == 0
    out = capsysbinary.readouterr().out
    assert out.startswith(b"<?xml") and out.rstrip().endswith(b"</svg>")


def test_ascii_stays_the_default_and_unchanged(capsys, tmp_path):
    assert main(["tree"]) == 0
    expected = "binomial tree, 8 ranks, root 0, depth 3:\n" + binomial_tree(8, 0).render() + "\n"
    assert capsys.readouterr().out == expected
    assert expected.splitlines()[1:4] == ["0", "|-- 4", "|   |-- 6"]
    path = tmp_path / "tree.txt"
    assert main(["tree", "-o", str(path)]) == 0
    assert path.read_text() == expected


def test_nodes_box_the_ranks_of_each_node(tmp_path, capsys):
    path = tmp_path / "nodes.svg"
    assert main(["tree", "-n", "8", "--nodes", "2:interleaved", "-o", str(path)]) == 0
    assert set(_groups(path, "node")) == {"tree1-node-0", "tree1-node-1"}
    assert set(_groups(path, "nodename").values()) == {"node 0", "node 1"}
    title = "".join(t.text or "" for t in ET.parse(path).getroot().iter(f"{SVG}text"))
    # binomial 8, rank r on node r % 2: 0->1, 4->5, 2->3, 6->7 cross
    assert "2 nodes (interleaved): 4 sends between nodes" in title
    capsys.readouterr()
    assert main(["tree", "-n", "8", "--nodes", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:3] == ["0 [node 0]", "|-- 4 [node 1]"]


def test_two_tree_with_nodes_draws_both_trees_boxed(tmp_path):
    path = tmp_path / "two.svg"
    assert main(["tree", "-n", "12", "--shape", "two-tree", "--nodes", "3", "-o", str(path)]) == 0
    boxes = _groups(path, "node")
    assert set(boxes) == {f"tree{t}-node-{k}" for t in (1, 2) for k in range(3)}
    assert {gid.split("-")[0] for gid in _groups(path, "rank")} == {"tree1", "tree2"}


SIZES = [1, 2, 3, 7, 8, 13, 32]


@pytest.mark.parametrize("shape", SHAPES)
def test_layout_is_a_tidy_tree_with_one_band_per_node(shape):
    for size in SIZES:
        placements = [None] + [
            node_layout(f"{k}{how}", size)[0]
            for k in (1, 2, 3)
            if k <= size
            for how in ("", ":interleaved")
        ]
        for nodes in placements:
            for tree in build_trees(shape, size, size // 2):
                _check_layout(tree, nodes)


def _check_layout(tree, nodes):
    pos = layout(tree, nodes)
    node_of = nodes or (0,) * tree.size
    assert len(set(pos.values())) == tree.size
    for rank in range(tree.size):
        parent = tree.parents[rank]
        if parent is not None:
            assert pos[rank][1] == pos[parent][1] - 1  # one level below its parent
        kids = [c for c in tree.children[rank] if node_of[c] == node_of[rank]]
        if kids:  # over the middle of its children on its node, which keep send order
            assert pos[rank][0] == (pos[kids[0]][0] + pos[kids[-1]][0]) / 2
            assert [pos[c][0] for c in kids] == sorted(pos[c][0] for c in kids)
    for node in set(node_of):  # a node's box holds no rank of another node
        xs = [pos[r][0] for r in range(tree.size) if node_of[r] == node]
        others = [pos[r][0] for r in range(tree.size) if node_of[r] != node]
        assert not [x for x in others if min(xs) <= x <= max(xs)]


RANK_RADIUS = MARKER_POINTS / 2 / 72 / min(COLUMN_INCHES, LEVEL_INCHES) * 1.2
"""A rank's circle's radius in columns or levels (the larger of the two, with room)."""


def _box_faults(boxes, pos, nodes, radius):
    """Every rank whose circle is not wholly inside its node's box, or reaches into another
    node's box, as ``(rank, node of the box)``: ``boxes`` maps a node to its ``(x0, y0, x1,
    y1)``, ``pos`` a rank to its circle's centre."""
    faults = []
    for node, (x0, y0, x1, y1) in boxes.items():
        for rank, (x, y) in pos.items():
            inside = x0 + radius <= x <= x1 - radius and y0 + radius <= y <= y1 - radius
            touching = x0 - radius < x < x1 + radius and y0 - radius < y < y1 + radius
            if (nodes[rank] == node and not inside) or (nodes[rank] != node and touching):
                faults.append((rank, node))
    return faults


@pytest.mark.parametrize("shape", SHAPES)
def test_every_rank_is_in_its_own_nodes_box_and_no_other(shape):
    # whatever the layout, each circle lies inside its node's box and clear of the others',
    # a child whose parent is on another node too (two-tree 10 over 2 nodes: in the second
    # tree rank 1, on node 0, is the child of rank 9, on node 1)
    for size in range(1, 33):
        for root in sorted({0, size // 2, size - 1}):
            shape_trees = build_trees(shape, size, root)
            for k in range(1, min(4, size) + 1):
                for how in ("", ":interleaved"):
                    nodes = node_layout(f"{k}{how}", size)[0]
                    for i, tree in enumerate(shape_trees, 1):
                        pos = layout(tree, nodes)
                        faults = _box_faults(node_boxes(pos, nodes), pos, nodes, RANK_RADIUS)
                        assert not faults, (shape, size, root, f"{k}{how}", f"tree {i}", faults)


@pytest.mark.parametrize(
    "argv",
    [
        ["-n", "10", "--shape", "two-tree", "--nodes", "2"],
        ["-n", "12", "--shape", "binomial", "--nodes", "3:interleaved"],
    ],
)
def test_the_drawn_boxes_hold_their_nodes_circles(argv, tmp_path):
    # the same, measured in the SVG (in points): the box paths and the circles drawn
    path = tmp_path / "boxes.svg"
    assert main(["tree", *argv, "-o", str(path)]) == 0
    nodes = node_layout(argv[-1], int(argv[1]))[0]
    boxes: dict[str, dict] = {}
    circles: dict[str, dict] = {}
    for element in ET.parse(path).getroot().iter(f"{SVG}g"):
        parts = (element.get("id") or "").split("-")  # tree1-node-0, tree1-rank-3
        if len(parts) != 3:
            continue
        tree, kind, number = parts
        if kind == "node":
            corners = [float(v) for v in re.findall(r"-?[\d.]+", element[0].get("d"))]
            xs, ys = corners[0::2], corners[1::2]
            boxes.setdefault(tree, {})[int(number)] = (min(xs), min(ys), max(xs), max(ys))
        elif kind == "rank":
            use = next(element.iter(f"{SVG}use"))
            circles.setdefault(tree, {})[int(number)] = (
                float(use.get("x")),
                float(use.get("y")),
            )
    assert sorted(boxes) == sorted(circles) == [f"tree{i + 1}" for i in range(len(circles))]
    assert len(circles) == (2 if "two-tree" in argv else 1)
    for tree, pos in circles.items():
        assert sorted(boxes[tree]) == sorted(set(nodes)) and len(pos) == len(nodes)
        assert not _box_faults(boxes[tree], pos, nodes, MARKER_POINTS / 2), tree


def test_layout_never_puts_a_rank_under_another_parent():
    pos = layout(binomial_tree(8, 0))
    # 3 is the child of 2, and stands under it, not under 1 (a plain layered layout's mistake)
    assert pos[3][0] == pos[2][0] and pos[1][0] > pos[3][0]
    assert len({x for x, _ in layout(chain_tree(6, 2)).values()}) == 1


def test_receive_steps_number_the_sends():
    steps = binomial_tree(8, 0).receive_steps()
    assert steps == (0, 3, 2, 3, 1, 3, 2, 3)
    for shape in SHAPES:
        for tree in build_trees(shape, 13, 5):
            steps = tree.receive_steps()
            assert steps[5] == 0
            for rank in range(13):
                numbers = [steps[c] for c in tree.children[rank]]
                assert numbers == list(range(steps[rank] + 1, steps[rank] + 1 + len(numbers)))


def test_step_numbers_keep_clear_of_each_other():
    for shape in SHAPES:
        for size in (5, 16, 33):
            for nodes in (None, node_layout("2", size)[0]):
                for tree in build_trees(shape, size, 0):
                    spots = list(label_spots(tree, layout(tree, nodes)).values())
                    assert len(spots) == size - 1
                    for i, (x, y) in enumerate(spots):
                        for u, v in spots[:i]:
                            assert (
                                abs(x - u) >= LABEL_CLEARANCE[0] or abs(y - v) >= LABEL_CLEARANCE[1]
                            )


@pytest.mark.parametrize(
    "argv,message",
    [
        (["-n", "0"], "-n must be >= 1 (the number of ranks), got 0"),
        (["-n", "4", "--root", "4", "--format", "svg"], "root must be in [0, 3], got 4"),
        (["--root", "-1"], "root must be in [0, 7], got -1"),
        (["--shape", "knomial", "-k", "1"], "-k must be >= 2 for knomial, got 1"),
        (["--shape", "knomial", "-k", "0"], "-k must be >= 2 for knomial, got 0"),
        (["--shape", "kary", "-k", "0"], "-k must be >= 1 for kary, got 0"),
        (["--shape", "chain", "-k", "3"], "-k applies to knomial and kary, not to chain; got -k 3"),
        (["--nodes", "9"], "--nodes '9': expected K or K:interleaved (K nodes, 1 <= K <= 8"),
        (["--nodes", "2:striped"], "--nodes '2:striped': expected K or K:interleaved"),
        (["--nodes", "0"], "--nodes '0': expected K"),
        (["--format", "png", "-o", "t.svg"], "--format png but -o 't.svg' names a .svg file"),
        (["-n", "300", "-o", "t.svg"], "a picture holds at most 256 ranks, got -n 300"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(
    argv, message, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    assert main(["tree", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("treecast tree: ") and message in captured.err
    assert captured.out == "" and not list(tmp_path.iterdir())


def test_an_unknown_format_is_named(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["tree", "--format", "jpg"])
    assert exit_.value.code == 2
    assert "invalid choice: 'jpg'" in capsys.readouterr().err


def test_missing_matplotlib_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib... raises
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert main(["tree", "--format", "svg"]) == 2
    err = capsys.readouterr().err
    assert "--format svg needs matplotlib (pip install 'treecast[bench]')" in err
    assert not list(tmp_path.iterdir())
    assert main(["tree", "-n", "3"]) == 0  # ascii needs nothing
    assert capsys.readouterr().out.startswith("binomial tree, 3 ranks")


def test_an_unwritable_file_is_named(tmp_path, capsys):
    path = tmp_path / "missing" / "t.png"
    assert main(["tree", "-o", str(path)]) == 1
    assert f"cannot write {path}: No such file or directory" in capsys.readouterr().err


def test_the_docs_show_a_picture_of_every_shape():
    docs = Path(__file__).resolve().parents[2] / "docs"
    text = (docs / "trees.md").read_text()
    pictures = [line.split("](")[1].rstrip(")") for line in text.splitlines() if "![" in line]
    assert all((docs / picture).is_file() for picture in pictures)
    chain = "trees/chain-8.svg"
    assert {f"trees/{shape}-16.svg" for shape in SHAPES if shape != "chain"} | {chain} <= set(
        pictures
    )
