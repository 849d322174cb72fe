"""Benchmarks: ``python -m benchmarks`` times vaezoo against the loops users would otherwise write."""
