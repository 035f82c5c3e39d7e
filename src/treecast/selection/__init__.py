"""Choosing an algorithm per call: a JSON rule table, forced names, restriction fallbacks."""
