import math

import pytest

from treecast.topology import binomial_tree


@pytest.mark.parametrize("size", range(1, 65))
def test_binomial_every_root_is_a_spanning_tree(size):
    for root in range(size):
        t = binomial_tree(size, root)
        assert t.parents[root] is None
        for rank in range(size):
            if rank != root:
                p = t.parents[rank]
                assert p is not None and 0 <= p < size
                assert rank in t.children[p]
            for child in t.children[rank]:
                assert t.parents[child] == rank
        # every child appears exactly once
        kids = [c for cs in t.children for c in cs]
        assert sorted(kids) == sorted(set(range(size)) - {root})
        assert t.depth() == size.bit_length() - 1  # floor(lg p)
        assert len(t.children[root]) == (math.ceil(math.log2(size)) if size > 1 else 0)


def test_binomial_shape_matches_mpich():
    t = binomial_tree(8, 0)
    assert t.children[0] == (4, 2, 1)
    assert t.children[4] == (6, 5)
    assert t.children[6] == (7,)
    assert t.children[2] == (3,)


@pytest.mark.parametrize("size,root", [(0, 0), (4, 4), (4, -1)])
def test_binomial_rejects_bad_arguments(size, root):
    with pytest.raises(ValueError, match=r"root|size"):
        binomial_tree(size, root)


def test_render_lists_every_rank():
    text = binomial_tree(6, 2).render()
    assert text.splitlines()[0] == "2"
    assert sorted(int(line.split()[-1]) for line in text.splitlines()) == list(range(6))
