"""Every shape, every size 1..64, every root: one parent each, lists agree, promised depth."""

import math

import pytest

from treecast.topology import (
    binomial_tree,
    bruck_rounds,
    chain_tree,
    inorder_binary_tree,
    kary_tree,
    knomial_tree,
    recursive_doubling,
    ring_neighbors,
    two_trees,
)

SIZES = range(1, 65)


def assert_spanning(t, size, root):
    assert t.size == size and t.root == root
    assert t.parents[root] is None
    for rank in range(size):
        if rank != root:
            p = t.parents[rank]
            assert p is not None and 0 <= p < size and rank in t.children[p]
        for child in t.children[rank]:
            assert t.parents[child] == rank
    kids = [c for cs in t.children for c in cs]
    assert sorted(kids) == sorted(set(range(size)) - {root})  # each non-root exactly once


def nonzero_digits(v, k):
    n = 0
    while v:
        n += v % k != 0
        v //= k
    return n


@pytest.mark.parametrize("size", SIZES)
def test_knomial_for_several_radixes(size):
    for k in (2, 3, 4, 8):
        for root in range(size):
            t = knomial_tree(size, root, k)
            assert_spanning(t, size, root)
            assert t.depth() == max(nonzero_digits(v, k) for v in range(size))
            assert t.depth() <= (math.ceil(math.log(size, k) - 1e-9) if size > 1 else 0)
    assert knomial_tree(size, 0, 2) == binomial_tree(size, 0)


@pytest.mark.parametrize("size", SIZES)
def test_kary_and_chain(size):
    for root in range(size):
        for k in (1, 2, 3):
            t = kary_tree(size, root, k)
            assert_spanning(t, size, root)
            assert all(len(c) <= k for c in t.children)
            level, v = 0, size - 1  # the last rank in heap order is the deepest
            while v:
                v, level = (v - 1) // k, level + 1
            assert t.depth() == level
        chain = chain_tree(size, root)
        assert chain.depth() == size - 1
        assert all(
            chain.children[r] == (((r + 1) % size),) for r in range(size) if (r + 1) % size != root
        )


@pytest.mark.parametrize("size", SIZES)
def test_inorder_and_two_trees(size):
    for root in range(size):
        t = inorder_binary_tree(size, root)
        assert_spanning(t, size, root)
        assert all(len(c) <= 2 for c in t.children)
        assert t.depth() == (1 + math.floor(math.log2(size - 1)) if size > 1 else 0)
        first, second = two_trees(size, root)
        assert first == t
        assert_spanning(second, size, root)
        assert second.depth() == first.depth()
        if size > 3:  # complementary: some leaves of one tree are interior in the other
            leaves1 = {r for r in range(size) if not first.children[r]}
            interior2 = {r for r in range(size) if second.children[r] and r != root}
            assert leaves1 & interior2


@pytest.mark.parametrize("size", SIZES)
def test_ring_and_bruck(size):
    for rank in range(size):
        left, right = ring_neighbors(size, rank)
        assert ring_neighbors(size, right)[0] == rank and ring_neighbors(size, left)[1] == rank
    rounds = [bruck_rounds(size, r) for r in range(size)]
    assert all(len(r) == (math.ceil(math.log2(size)) if size > 1 else 0) for r in rounds)
    for k in range(len(rounds[0])):  # each round is a permutation and sends match receives
        assert sorted(r[k][0] for r in rounds) == list(range(size))
        for rank in range(size):
            to, _ = rounds[rank][k]
            assert rounds[to][k][1] == rank


@pytest.mark.parametrize("size", SIZES)
def test_recursive_doubling_pairs_are_symmetric(size):
    plans = [recursive_doubling(size, r) for r in range(size)]
    pof2 = 1 << (size.bit_length() - 1)
    active = [r for r in range(size) if plans[r].active]
    assert len(active) == pof2
    assert sorted(plans[r].new_rank for r in active) == list(range(pof2))
    for r in range(size):
        plan = plans[r]
        if plan.fold_partner is not None:
            assert plans[plan.fold_partner].fold_partner == r
        for i, partner in enumerate(plan.partners):
            assert plans[partner].partners[i] == r
        assert len(plan.partners) == (pof2.bit_length() - 1 if plan.active else 0)


@pytest.mark.parametrize(
    "call",
    [
        lambda: knomial_tree(4, 0, 1),
        lambda: kary_tree(4, 0, 0),
        lambda: inorder_binary_tree(3, 3),
        lambda: ring_neighbors(0, 0),
        lambda: recursive_doubling(4, 4),
        lambda: bruck_rounds(2, -1),
    ],
)
def test_shapes_reject_bad_arguments(call):
    with pytest.raises(ValueError):
        call()
