"""vaezoo: a Hydra-driven experiment zoo of variational autoencoders."""

from vaezoo.paths import register_resolvers

__version__ = "0.1.0"

register_resolvers()
