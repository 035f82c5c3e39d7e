"""Shapes: who talks to whom. Pure functions of (size, root, ...), no I/O, cached."""

from .rings import RecursiveDoubling, bruck_rounds, recursive_doubling, ring_neighbors
from .trees import (
    Tree,
    binomial_tree,
    chain_tree,
    inorder_binary_tree,
    kary_tree,
    knomial_tree,
    two_trees,
)

__all__ = [
    "RecursiveDoubling",
    "Tree",
    "binomial_tree",
    "bruck_rounds",
    "chain_tree",
    "inorder_binary_tree",
    "kary_tree",
    "knomial_tree",
    "recursive_doubling",
    "ring_neighbors",
    "two_trees",
]
