"""The engine: one interpreter of schedules (store.py), driven to completion by blocking calls,
step by step by non-blocking requests (progress.py), and over the in-process transport for
every rank at once by the simulator (simulate.py); node-level protocols (node.py) and the
node's shared copies (sharing.py, share_pool.py)."""
