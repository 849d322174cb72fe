"""Pictures of a trained model's latent space, drawn only through the latent-space interface of
:class:`vaezoo.models.base.VAEModel` (``representation``, ``decode_latent``, ``prior_latents``,
``kl_per_dim``, ``standard_normal_prior``, ``sample``) and its declared capabilities (``requires_labels``,
``latent_layers``, ``code_indices``).

Each module in this package is one picture: it registers a :class:`Picture` with :func:`picture`, saying
where it applies (e.g. "2-unit latent spaces", "labelled data") and how it is drawn. Adding a picture is
adding one file; :func:`draw_pictures` draws every registered picture that applies.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vaezoo.errors import ConfigError

log = logging.getLogger("vaezoo")

#: Out-of-distribution sets for the anomaly histograms, made from the test images themselves.
OOD_TRANSFORMS: dict[str, Callable[[Tensor], Tensor]] = {
    "rotated": lambda x: x.flip(-1, -2),  # turned upside down (180 degrees)
    "inverted": lambda x: 1.0 - x,  # dark on light
}
#: Variance of a posterior mean across examples below which a unit counts as inactive (Burda et al.).
ACTIVE_THRESHOLD = 0.01


@dataclass(frozen=True)
class Factors:
    """Ground-truth factors of the test examples (dSprites-like data): names and values [N, F]."""

    names: list[str]
    values: Tensor


@dataclass
class Scene:
    """What a picture may look at: a model in eval mode and a fixed subset of its test examples."""

    model: Any  # VAEModel
    x: Tensor
    y: Tensor | None = None
    factors: Factors | None = None
    metrics_rows: list[dict[str, str]] = field(default_factory=list)
    ood: str | None = "rotated"
    tsne_points: int = 1000
    traversal_steps: int = 9
    max_traversal_dims: int = 10
    batch_size: int = 250
    seed: int = 0
    samplers: dict[str, Any] = field(default_factory=dict)  # fitted latent samplers (vaezoo.samplers)

    @property
    def labels_are_classes(self) -> bool:
        return self.y is not None and self.y.dim() == 1

    def batched(self, fn: Callable[..., Tensor], x: Tensor, y: Tensor | None = None) -> Tensor:
        """fn(x, y) over batches of ``batch_size``, concatenated (bounded memory on large subsets)."""
        out = []
        for start in range(0, len(x), self.batch_size):
            stop = start + self.batch_size
            out.append(fn(x[start:stop], None if y is None else y[start:stop]))
        return torch.cat(out)

    @cached_property
    def codes(self) -> Tensor:
        """Posterior means [N, D] of the test subset."""
        return self.batched(self.model.representation, self.x, self.y)

    @cached_property
    def kl_per_dim(self) -> Tensor:
        """Mean KL per latent dimension over the test subset [D], in nats."""
        return self.batched(self.model.kl_per_dim, self.x, self.y).mean(0)

    @cached_property
    def active(self) -> Tensor:
        """Per dimension: is the variance of its posterior mean across examples above ACTIVE_THRESHOLD."""
        return (
            self.codes.var(0) > ACTIVE_THRESHOLD
            if len(self.codes) > 1
            else torch.ones_like(self.kl_per_dim, dtype=torch.bool)
        )

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.batched(self.model.decode_latent, z, y)


@dataclass(frozen=True)
class Picture:
    """One picture: ``skip(scene)`` says why it does not apply (None when it does); ``draw`` saves it."""

    name: str
    applies_to: str  # where it applies, in words (README, logs)
    title: str  # what it shows, as a heading (the HTML report)
    uses: str  # what it is drawn from
    skip: Callable[[Scene], str | None]
    draw: Callable[[Scene, Path], Path]


PICTURES: dict[str, Picture] = {}


def picture(
    name: str,
    applies_to: str,
    *,
    title: str,
    uses: str,
    skip: Callable[[Scene], str | None] = lambda s: None,
):
    """Register ``draw(scene, path) -> path`` as the picture ``name`` (saved as ``<name>.png``).

    ``title`` says what it shows and ``uses`` what it is drawn from, so a report labels it from this
    declaration, not from its file name.
    """
    if not title.strip() or not uses.strip():
        raise ValueError(f"picture {name!r}: say what it shows (title=) and what it is drawn from (uses=)")

    def add(draw: Callable[[Scene, Path], Path]) -> Callable[[Scene, Path], Path]:
        if name in PICTURES:
            raise ValueError(f"picture {name!r} is registered twice")
        PICTURES[name] = Picture(name, applies_to, title, uses, skip, draw)
        return draw

    return add


def described(name: str) -> tuple[str, str] | None:
    """(title, what it is drawn from) of a job's picture ``name``: a registered picture's, or one of the
    grids training saves (:data:`vaezoo.training.callbacks.GRIDS`); None for any other PNG."""
    from vaezoo.training.callbacks import GRIDS

    if name in PICTURES:
        return PICTURES[name].title, PICTURES[name].uses
    return GRIDS.get(name)


def first_test_examples(datamodule: Any, n: int, batch_size: int = 500) -> tuple[Tensor, Tensor | None]:
    """The first n test examples (x, y) of a data module, through its own ``loader('test')``."""
    datamodule.setup("test")
    xs, ys, taken = [], [], 0
    for batch in datamodule.loader("test", batch_size=batch_size):
        keep = min(n - taken, batch["x"].shape[0])
        xs.append(batch["x"][:keep].float())
        if batch.get("y") is not None:
            ys.append(batch["y"][:keep])
        taken += keep
        if taken >= n:
            break
    if not xs:
        raise ConfigError("the test split is empty; pictures need test examples")
    return torch.cat(xs), torch.cat(ys) if ys else None


def test_factors(datamodule: Any, n: int) -> Factors | None:
    """The first n test examples' ground-truth factors, where the data has them (DataInfo.factor_names
    and ``datamodule.splits["test"].factors``, as every data module with factors exposes them)."""
    names = getattr(datamodule.info, "factor_names", None)
    split = getattr(datamodule, "splits", {}).get("test")
    values = getattr(split, "factors", None)
    if not names or values is None:
        return None
    return Factors(list(names), torch.as_tensor(values)[:n].float())


def draw_pictures(
    model: Any,
    datamodule: Any,
    out_dir: str | Path,
    *,
    metrics_rows: Iterable[dict[str, str]] = (),
    n_examples: int = 1000,
    ood: str | None = "rotated",
    tsne_points: int = 1000,
    only: Iterable[str] | None = None,
    seed: int = 0,
    samplers: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Draw every picture that applies to ``model`` on ``datamodule``'s test split into ``out_dir``.

    ``metrics_rows`` are the job's ``metrics.csv`` rows (:meth:`vaezoo.jobs.folder.Job.metrics_rows`) for the
    training curves; ``ood`` names the out-of-distribution set of the anomaly histograms (a key of
    :data:`OOD_TRANSFORMS`, or None); ``only`` restricts the pictures by name. Factor traversals use
    the test split's ground-truth factors (:func:`test_factors`) when the data has them; ``samplers`` are
    the job's fitted latent samplers ({name: sampler}, :mod:`vaezoo.samplers.store`).
    Returns {picture name: PNG path}; pictures that do not apply are logged and left out.
    """
    if ood is not None and ood not in OOD_TRANSFORMS:
        raise ConfigError(
            f"pictures.ood={ood!r} is not known; use one of {', '.join(OOD_TRANSFORMS)} or null"
        )
    names = list(PICTURES) if only is None else list(only)
    unknown = [n for n in names if n not in PICTURES]
    if unknown:
        raise ConfigError(f"unknown picture(s) {', '.join(unknown)}; choose from {', '.join(PICTURES)}")
    device = next(model.parameters()).device
    x, y = first_test_examples(datamodule, n_examples)
    factors = test_factors(datamodule, len(x))
    scene = Scene(
        model=model,
        x=x.to(device),
        y=None if y is None else y.to(device),
        factors=factors,
        metrics_rows=list(metrics_rows),
        ood=ood,
        tsne_points=tsne_points,
        seed=seed,
        samplers=dict(samplers or {}),
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    drawn: dict[str, Path] = {}
    try:
        with torch.no_grad():
            for name in names:
                pic = PICTURES[name]
                reason = pic.skip(scene)
                if reason:
                    log.info("picture %s skipped: %s", name, reason)
                    continue
                torch.manual_seed(seed)  # every picture sees the same random draws, whatever ran before it
                drawn[name] = pic.draw(scene, out_dir / f"{name}.png")
    finally:
        model.train(was_training)
    return drawn


def _import_all() -> None:
    for module in pkgutil.iter_modules(__path__):
        if module.name != "figures":
            importlib.import_module(f"{__name__}.{module.name}")


_import_all()
