"""The one interface every model implements, and the per-example ELBO terms it returns.

Models compute *terms*; the objective (β, annealing, free bits, importance weighting) is composed
outside them in :mod:`vaezoo.objective`, identically for training, validation and test.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor, nn

from vaezoo.data.info import DataInfo
from vaezoo.likelihoods import Likelihood


@dataclass
class ELBOTerms:
    """Per-example pieces of the evidence lower bound, all in nats.

    log_px_z: reconstruction log-likelihood log p(x|z), shape [B].
    kl: KL(q || p) per latent group, each [B, D] (per dimension; D=1 where only a total exists).
    extra: additional per-example loss terms that are not part of the ELBO (e.g. VQ losses), [B].
    stats: scalar diagnostics to log (e.g. codebook perplexity); never part of the loss.
    auxiliary_loss: the scalar loss of the model's auxiliary part (:meth:`VAEModel.auxiliary_part`,
    e.g. FactorVAE's discriminator), minimised by its own optimiser; None for models without one.
    """

    log_px_z: Tensor
    kl: dict[str, Tensor]
    extra: dict[str, Tensor] = field(default_factory=dict)
    stats: dict[str, Tensor] = field(default_factory=dict)
    auxiliary_loss: Tensor | None = None

    @property
    def kl_per_group(self) -> dict[str, Tensor]:
        """KL summed over dimensions, per group: {group: [B]}."""
        return {name: kl.flatten(1).sum(1) for name, kl in self.kl.items()}

    @property
    def kl_total(self) -> Tensor:
        """KL summed over all groups and dimensions, [B]."""
        return torch.stack(list(self.kl_per_group.values())).sum(0)

    @property
    def elbo(self) -> Tensor:
        """log p(x|z) - KL per example, [B]."""
        return self.log_px_z - self.kl_total


@dataclass(frozen=True)
class AuxiliaryPart:
    """A sub-network trained against the model rather than with it (FactorVAE's discriminator).

    The training module gives it its own Adam (``lr``, ``betas``) on :attr:`ELBOTerms.auxiliary_loss`;
    the model's loss never updates it and its loss never updates the rest of the model.
    """

    module: nn.Module
    lr: float
    betas: tuple[float, float]


class VAEModel(nn.Module, ABC):
    """Base class for every model in the zoo.

    Subclasses are registered by name with :func:`vaezoo.models.register` and built from the
    ``model`` config group; they receive the dataset description and the likelihood.
    """

    #: True for models that must see labels (the dataset must provide them).
    requires_labels: ClassVar[bool] = False
    #: True when :meth:`log_importance_weights` draws z from a stochastic q(z|x) with a density, so
    #: the importance-weighted (IWAE) objective with k > 1 samples is meaningful for training.
    importance_weighted: ClassVar[bool] = False
    #: True when the model's loss adds a term outside the ELBO (FactorVAE's γ·TC, DIP-VAE's penalty):
    #: the importance-weighted objective, which is the bound alone, cannot train it.
    loss_outside_elbo: ClassVar[bool] = False

    def __init__(self, data_info: DataInfo, likelihood: Likelihood) -> None:
        super().__init__()
        self.data_info = data_info
        self.likelihood = likelihood

    @classmethod
    def check_compatible(cls, data_info: DataInfo, likelihood: Likelihood, name: str) -> None:
        """Raise a ConfigError for a dataset or likelihood this model cannot use."""

    @abstractmethod
    def encode(self, x: Tensor, y: Tensor | None = None) -> torch.distributions.Distribution | Tensor:
        """The approximate posterior q(z|x) (or the encoder output, for deterministic encoders)."""

    @abstractmethod
    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Likelihood parameters for latents z: [B, P*C, H, W]."""

    @abstractmethod
    def elbo_terms(self, x: Tensor, y: Tensor | None = None) -> ELBOTerms:
        """One-sample ELBO terms per example for a batch x [B, C, H, W] in [0, 1]."""

    @abstractmethod
    def sample(self, n: int, y: Tensor | None = None) -> Tensor:
        """n images from the model, as the likelihood's mean: [n, C, H, W] in [0, 1]."""

    @abstractmethod
    def reconstruct(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Mean reconstruction of x through the posterior mean: [B, C, H, W]."""

    # -- the latent-space interface: metrics and pictures use only these, never a family's internals ------
    #: True when every flat latent dimension has a N(0, 1) prior, so traversals can sweep its quantiles
    #: and slerp keeps samples typical; False when the prior is learned or conditional (hvae's lower layers,
    #: VQ-VAE's codes), where pictures sweep the empirical range of posterior means instead.
    standard_normal_prior: ClassVar[bool] = False
    #: True when :meth:`kl_per_dim` is a closed-form KL per dimension (never negative); False where a
    #: layer's KL has no closed form and is a one-sample estimate (bottom-up hierarchies' lower layers).
    analytic_kl: ClassVar[bool] = True

    @abstractmethod
    def representation(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Flat posterior means [B, D]: the representation function of the disentanglement metrics."""

    def sample_representation(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """One draw of z ~ q(z|x) per example, flat [B, D] laid out as :meth:`representation`: the
        "sampled" representation of the disentanglement metrics (Locatello et al. 2019 report both).

        The default serves a Gaussian posterior whose :meth:`encode` is the whole flat latent (its mean is
        :meth:`representation`); hierarchies override it, and a deterministic encoder has none.
        """
        posterior = self.encode(x, y)
        if not isinstance(posterior, torch.distributions.Normal):
            raise NotImplementedError(
                f"{type(self).__name__}'s encoder is deterministic (no q(z|x) to sample)"
            )
        return posterior.sample().flatten(1)

    @abstractmethod
    def decode_latent(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Mean images [B, C, H, W] in [0, 1] for flat latents z [B, D] laid out as :meth:`representation`."""

    @abstractmethod
    def prior_latents(self, n: int, y: Tensor | None = None) -> Tensor:
        """n flat latents [n, D] from the prior; RuntimeError when :attr:`can_sample` is False."""

    @abstractmethod
    def kl_per_dim(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """KL(q || p) per example and flat latent dimension [B, D], in nats (sums to the ELBO's KL)."""

    def latent_layers(self) -> list[tuple[str, int]] | None:
        """Named layers of the flat latent, in :meth:`representation`'s order, as (name, size);
        None for a single layer. Pictures vary one layer at a time where there are several."""
        return None

    def auxiliary_part(self) -> AuxiliaryPart | None:
        """The part trained by its own optimiser on :attr:`ELBOTerms.auxiliary_loss`; None for most models."""
        return None

    def code_indices(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, int] | None:
        """Discrete code indices [B, ...] of x and the codebook size; None for continuous latents."""
        return None

    def log_importance_weights(self, x: Tensor, y: Tensor | None = None, k: int = 1) -> Tensor:
        """log p(x, z_s) - log q(z_s|x) for k posterior samples per example: [k, B].

        Needed for the importance-weighted bound; models without a tractable q(z|x) density
        leave it unimplemented and the bound is reported as not available.
        """
        raise NotImplementedError(f"{type(self).__name__} has no importance weights")

    @property
    def can_sample(self) -> bool:
        """Whether :meth:`sample` can produce images now (e.g. False for a VQ-VAE without a prior)."""
        return True

    @property
    def sample_unavailable_reason(self) -> str:
        """Why :meth:`sample` cannot produce images, when :attr:`can_sample` is False."""
        return ""

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device
