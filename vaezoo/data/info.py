"""What a model needs to know about its data, independent of where the data comes from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataInfo:
    """Shape and value set of one dataset as the models see it.

    ``levels`` is the number of distinct values per pixel after preprocessing: 2 for binary
    data, 256 for 8-bit images, 17 for scikit-learn's digits. Pixels are scaled to [0, 1].
    ``num_classes`` counts classes (labels [N]) or binary attributes (labels [N, A], CelebA);
    ``class_names`` names them when the data does. ``factor_names`` names the ground-truth factors
    of variation each split carries (``datamodule.splits[split].factors``, float [N, K]), which
    disentanglement metrics need; None when the data has none. ``train_size`` counts the training
    examples (β-TCVAE's estimators of the aggregate posterior weight by it); None where unknown.
    """

    name: str
    shape: tuple[int, int, int]
    levels: int
    num_classes: int | None = None
    class_names: tuple[str, ...] | None = None
    factor_names: tuple[str, ...] | None = None
    train_size: int | None = None

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

    @property
    def has_factors(self) -> bool:
        return self.factor_names is not None
