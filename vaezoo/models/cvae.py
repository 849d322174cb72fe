"""The conditional VAE (Sohn et al. 2015): encoder, decoder and prior all see the label.

Labels are class indices [B] (digits, MNIST, Fashion-MNIST, CIFAR-10) or binary attribute vectors
[B, A] (CelebA's 40 attributes). Either becomes a one-hot / multi-hot vector, used as it is
(``label_encoding=onehot``) or through a learned linear embedding (``label_encoding=embedding``;
for one-hot inputs this is exactly an embedding table).

The prior is Sohn et al.'s prior network p(z|y) = N(mu(y), diag σ²(y)) (``prior=conditional``, a
linear map of the label vector, starting at N(0, I)) or the fixed N(0, I) (``prior=standard_normal``).
Why the default is conditional: a 20-dimensional latent can carry the class itself, and then samples
drawn from N(0, I) for class c ignore c (MNIST, zoo_mnist after 5 epochs: 37 % of them are
classified c); a class-dependent prior puts class c's draws where class c's codes are, so the label is
obeyed whichever path (z or y) carries the class (68 % after 5 epochs, 91 % after 40).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vaezoo.data.info import DataInfo
from vaezoo.errors import ConfigError
from vaezoo.likelihoods import Likelihood
from vaezoo.models import register
from vaezoo.models.gaussian import GaussianLatentVAE

LABEL_ENCODINGS = ("onehot", "embedding")
PRIORS = ("conditional", "standard_normal")


@register("cvae")
class ConditionalVAE(GaussianLatentVAE):
    """q(z|x, y), p(x|z, y) and p(z|y) (or N(0, I)); ``sample(n, y)`` draws images of the given labels."""

    requires_labels = True

    def __init__(
        self,
        data_info: DataInfo,
        likelihood: Likelihood,
        latent_dim: int = 20,
        net: Mapping[str, Any] | None = None,
        label_encoding: str = "onehot",
        embedding_dim: int = 16,
        prior: str = "conditional",
    ) -> None:
        if label_encoding not in LABEL_ENCODINGS:
            raise ConfigError(
                f"model.label_encoding={label_encoding!r} must be one of {', '.join(LABEL_ENCODINGS)}"
            )
        if prior not in PRIORS:
            raise ConfigError(f"model.prior={prior!r} must be one of {', '.join(PRIORS)}")
        num_classes = int(data_info.num_classes or 0)
        condition_dim = num_classes if label_encoding == "onehot" else embedding_dim
        super().__init__(data_info, likelihood, latent_dim, net, condition_dim=condition_dim)
        self.num_classes = num_classes
        self.embedding = (
            nn.Linear(num_classes, embedding_dim, bias=False) if label_encoding == "embedding" else None
        )
        self.prior_net = nn.Linear(condition_dim, 2 * latent_dim) if prior == "conditional" else None
        if self.prior_net is not None:  # start at N(0, I)
            nn.init.zeros_(self.prior_net.weight)
            nn.init.zeros_(self.prior_net.bias)
        self.standard_normal_prior = self.prior_net is None

    @classmethod
    def check_compatible(cls, data_info: DataInfo, likelihood: Likelihood, name: str) -> None:
        if not data_info.has_labels:
            raise ConfigError(
                f"model={name} conditions on labels but dataset={data_info.name} has none; use a labelled "
                "dataset (digits, mnist, fashion_mnist, cifar10, celeba, an image_folder with class "
                "sub-folders or arrays with labels)"
            )
        if data_info.num_classes is not None and data_info.num_classes < 2:  # labels, but all the same
            raise ConfigError(
                f"model={name} conditions on the class label, but {data_info.name} has one class: give "
                "data with at least two classes (one sub-folder per class) or use model=vanilla"
            )

    def condition(self, y: Tensor | None) -> Tensor:
        if y is None:
            raise ValueError(f"{type(self).__name__} needs labels y (class indices or attribute vectors)")
        c = F.one_hot(y.long(), self.num_classes).float() if y.dim() == 1 else y.float()
        return c if self.embedding is None else self.embedding(c)

    def prior_params(self, y: Tensor | None) -> tuple[Tensor, Tensor] | None:
        if self.prior_net is None:
            return None
        mu, logvar = self.prior_net(self.condition(y)).chunk(2, dim=-1)
        return mu, logvar

    @torch.no_grad()
    def sample(self, n: int, y: Tensor | int | None = None) -> Tensor:
        """n images of label(s) y: one class index for all, or labels [n] / attribute vectors [n, A]."""
        if y is None:
            raise ValueError(
                "cvae.sample(n, y) needs the labels to generate, e.g. y=3 or a tensor of n labels"
            )
        if isinstance(y, int):
            y = torch.full((n,), y, dtype=torch.long, device=self.device)
        if len(y) != n:
            raise ValueError(f"cvae.sample got {len(y)} labels for n={n} images")
        return super().sample(n, y.to(self.device))
