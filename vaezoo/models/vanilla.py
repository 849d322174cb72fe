"""The vanilla VAE (Kingma & Welling 2014) and the β-VAE (Higgins et al. 2017).

Both are the same network; the β-VAE differs only in the objective's KL weight β (top-level
config key ``beta``), which the objective applies, not the model.
"""

from __future__ import annotations

from vaezoo.models import register
from vaezoo.models.gaussian import GaussianLatentVAE


@register("vanilla")
class VanillaVAE(GaussianLatentVAE):
    """Gaussian encoder, N(0, I) prior, one latent group ``z``."""


@register("beta_vae")
class BetaVAE(GaussianLatentVAE):
    """β-VAE: a vanilla VAE trained with β > 1 (conf/model/beta_vae.yaml sets β=4 by default)."""
