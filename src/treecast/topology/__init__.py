"""Shapes: who talks to whom. Pure functions of (size, root, ...), no I/O, cached."""

from .trees import Tree, binomial_tree

__all__ = ["Tree", "binomial_tree"]
