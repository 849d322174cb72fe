"""vaezoo: a Hydra-driven experiment zoo of variational autoencoders."""

__version__ = "0.1.0"
