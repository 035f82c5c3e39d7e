"""Engines run schedules: blocking (here), step-wise for non-blocking calls, simulated."""
