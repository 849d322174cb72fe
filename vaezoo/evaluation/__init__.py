"""End-of-run evaluation: test ELBO, importance-weighted bound, active units, results.json."""

from vaezoo.evaluation.metrics import active_units, importance_weighted_bound

__all__ = ["active_units", "importance_weighted_bound"]
