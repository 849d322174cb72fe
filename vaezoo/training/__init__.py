"""Lightning glue: the module that trains a model on the objective, and callbacks."""

from vaezoo.training.module import VAEModule

__all__ = ["VAEModule"]
