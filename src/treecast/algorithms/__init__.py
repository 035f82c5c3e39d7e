"""Algorithms as schedules: generators of Send/Recv steps over a shape, free of I/O."""
