"""Turning user data into frames: pickle-5 objects and buffer specs."""
