"""Hydra configs; installed as the package ``vaezoo.conf``."""
