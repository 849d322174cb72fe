"""The latent-space interface that metrics and pictures use, checked for every registered family."""

from __future__ import annotations

import pytest
import torch

from vaezoo.builder import model_params
from vaezoo.data.info import DataInfo
from vaezoo.likelihoods import Bernoulli
from vaezoo.models import MODELS, build_model
from vaezoo.models.pixelcnn import PixelCNNPrior

DIGITS = DataInfo("digits", (1, 8, 8), 2, 10, train_size=1000)


def family(compose_cfg, name: str):
    cfg = compose_cfg(f"model={name}", "dataset=digits")
    torch.manual_seed(0)
    model = build_model(name, model_params(cfg.model), DIGITS, Bernoulli()).eval()
    if hasattr(model, "attach_prior"):  # a VQ-VAE samples through a (here untrained) learned prior
        model.attach_prior(PixelCNNPrior(model.num_codes, model.grid, channels=8, layers=2))
    return model


def batch(n: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.bernoulli(torch.rand(n, 1, 8, 8, generator=g), generator=g), torch.arange(n) % 10


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_family_exposes_flat_latents_that_decode_and_sum_to_its_kl(compose_cfg, name):
    model = family(compose_cfg, name)
    x, y = batch()
    z = model.representation(x, y)
    assert z.dim() == 2 and z.shape[0] == 12
    images = model.decode_latent(z, y)
    assert images.shape == x.shape and images.min() >= 0 and images.max() <= 1
    # Decoding the posterior means is the mean reconstruction, whatever the family's internals.
    assert torch.allclose(images, model.reconstruct(x, y), atol=1e-5)
    prior = model.prior_latents(5, y[:5])
    assert prior.shape == (5, z.shape[1])
    assert model.decode_latent(prior, y[:5]).shape == (5, *x.shape[1:])
    torch.manual_seed(1)  # a hierarchy's KLs depend on the sampled path through its layers
    kl = model.kl_per_dim(x, y)
    assert kl.shape == z.shape
    if model.analytic_kl:  # otherwise some layers' KLs are one-sample estimates, negative at times
        assert (kl >= -1e-6).all()
    torch.manual_seed(1)
    assert torch.allclose(kl.sum(1), model.elbo_terms(x, y).kl_total, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", sorted(n for n, cls in MODELS.items() if cls.standard_normal_prior))
def test_standard_normal_prior_latents_have_unit_variance(compose_cfg, name):
    model = family(compose_cfg, name)
    torch.manual_seed(0)
    z = model.prior_latents(4000, torch.zeros(4000, dtype=torch.long))
    assert abs(float(z.mean())) < 0.05 and abs(float(z.std()) - 1) < 0.05
