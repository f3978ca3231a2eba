"""Benchmarks: scripts that print figures (speed, memory, accuracy); no test depends on them."""
