"""Transports move frames between two ranks; they know nothing of collectives."""
