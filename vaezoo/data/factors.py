"""Ground-truth factor data as an interface (as in disentanglement_lib): what disentanglement metrics
sample from. A dataset with known factors of variation exposes one :class:`GroundTruthData`."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from torch import Tensor

from vaezoo.errors import DataError


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


class TableGroundTruth(GroundTruthData):
    """Ground truth from a finite table of examples with factor values (``dataset=arrays`` with factors).

    Each factor's distinct values are its classes. Factors are sampled as whole observed rows, so
    MIG, DCI and SAP see the data's own joint distribution; metrics that fix one factor and redraw the
    others (β-VAE and FactorVAE scores) need every combination to occur, and say so when one does not.
    """

    def __init__(
        self, names: Sequence[str], factors: np.ndarray, images: Callable[[np.ndarray], Tensor]
    ) -> None:
        factors = np.asarray(factors)
        values = [np.unique(factors[:, k]) for k in range(factors.shape[1])]
        self.table = np.stack([np.searchsorted(v, factors[:, k]) for k, v in enumerate(values)], axis=1)
        self._rows: dict[tuple[int, ...], int] = {}
        for i, row in enumerate(map(tuple, self.table.tolist())):
            self._rows.setdefault(row, i)
        self._images = images
        super().__init__(names, values, self._observe_rows)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.table[rng.integers(0, len(self.table), n)]

    def _observe_rows(self, classes: np.ndarray) -> Tensor:
        index = []
        for row in map(tuple, classes.tolist()):
            if row not in self._rows:
                values = {n: float(v[c]) for n, v, c in zip(self.names, self.values, row, strict=True)}
                raise DataError(
                    f"no example has the factor values {values}; this metric redraws factors independently "
                    "and needs every combination of factor values in the data (a full grid, as dSprites)"
                )
            index.append(self._rows[row])
        return self._images(np.asarray(index, dtype=np.int64))
