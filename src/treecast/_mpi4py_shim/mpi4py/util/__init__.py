"""treecast's stand-ins for ``mpi4py.util`` modules (``pkl5``, ``dtlib``)."""
