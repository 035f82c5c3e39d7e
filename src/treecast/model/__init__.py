"""A cost model of this machine that predicts what a collective's algorithms cost, in
process, at any number of ranks.

- :mod:`~treecast.model.machine`: the measured figures (latency, bandwidth, reduction and
  per-call costs, cores) and where they are stored (``treecast calibrate`` writes them).
- :mod:`~treecast.model.costs`: how many bytes each step of a schedule moves.
- :mod:`~treecast.model.costsim`: the cost simulator: an event-driven critical path over
  every rank's schedule, with the ranks sharing the machine's cores.
- :mod:`~treecast.model.predict`: every applicable algorithm of a collective, predicted and
  ranked (the node-level ones by their own model), and what was skipped and why.
- :mod:`~treecast.model.tuning`: a rule table (``selection/default.json``'s format) from a
  grid of measured or predicted times.
"""
