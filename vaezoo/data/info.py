"""What a model needs to know about its data, independent of where the data comes from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataInfo:
    """Shape and value set of one dataset as the models see it.

    ``levels`` is the number of distinct values per pixel after preprocessing: 2 for binary
    data, 256 for 8-bit images, 17 for scikit-learn's digits. Pixels are scaled to [0, 1].
    """

    name: str
    shape: tuple[int, int, int]
    levels: int
    num_classes: int | None = None

    @property
    def binary(self) -> bool:
        return self.levels == 2

    @property
    def num_dims(self) -> int:
        c, h, w = self.shape
        return c * h * w

    @property
    def has_labels(self) -> bool:
        return self.num_classes is not None
