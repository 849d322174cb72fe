"""Benchmarks: ``python -m vaezoo.bench`` times vaezoo against the loops users would otherwise write."""
