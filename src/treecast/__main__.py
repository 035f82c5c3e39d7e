"""``python -m treecast ...``: the same as the ``treecast`` command."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
