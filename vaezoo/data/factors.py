"""Ground-truth factor data as an interface (as in disentanglement_lib): what disentanglement metrics
sample from. A dataset with known factors of variation exposes one :class:`GroundTruthData`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from torch import Tensor


class GroundTruthData:
    """Discrete factors of variation with their value grids, and the images that show them.

    ``observe(classes)`` turns an int array [n, F] of factor classes (index into each factor's value
    grid) into float images [n, C, H, W] in [0, 1]. Every combination of classes must have an image.
    """

    def __init__(
        self,
        names: Sequence[str],
        values: Sequence[np.ndarray],
        observe: Callable[[np.ndarray], Tensor],
    ) -> None:
        if len(names) != len(values):
            raise ValueError(f"{len(names)} factor names for {len(values)} value grids")
        self.names = tuple(names)
        self.values = tuple(np.asarray(v) for v in values)
        self._observe = observe

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.values)

    @property
    def num_factors(self) -> int:
        return len(self.names)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n factor-class vectors [n, F], each factor uniform over its grid."""
        return np.stack([rng.integers(0, size, n) for size in self.factor_sizes], axis=1)

    def sample_observations_from_factors(self, classes: np.ndarray, rng: np.random.Generator) -> Tensor:
        """Images [n, C, H, W] for factor classes [n, F] (``rng`` for datasets with nuisance variation)."""
        return self._observe(np.asarray(classes, dtype=np.int64))

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, Tensor]:
        classes = self.sample_factors(n, rng)
        return classes, self.sample_observations_from_factors(classes, rng)
