"""Every registered model composes with every likelihood and dataset it supports, and rejects the rest."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from vaezoo.builder import model_params
from vaezoo.data.info import DataInfo
from vaezoo.errors import ConfigError
from vaezoo.models import MODELS, build_model

LIKELIHOODS = ["bernoulli", "gaussian", "continuous_bernoulli", "discretized_logistic"]
# The datasets as the models see them (shape, levels after binarization, labels, training-set size): no
# data loaded.
DATASETS = {
    "digits_binary": DataInfo("digits", (1, 8, 8), 2, 10, train_size=1000),
    "digits_grey": DataInfo("digits", (1, 8, 8), 17, 10, train_size=1000),
    "mnist_binary": DataInfo("mnist", (1, 28, 28), 2, 10, train_size=1000),
    "mnist_grey": DataInfo("mnist", (1, 28, 28), 256, 10, train_size=1000),
    "binarized_mnist": DataInfo("binarized_mnist", (1, 28, 28), 2, None, train_size=1000),
    "fashion_mnist": DataInfo("fashion_mnist", (1, 28, 28), 256, 10, train_size=1000),
    "cifar10": DataInfo("cifar10", (3, 32, 32), 256, 10, train_size=1000),
    "celeba": DataInfo("celeba", (3, 64, 64), 256, 40, train_size=1000),
}


def expected_problem(model: str, likelihood: str, info: DataInfo) -> str | None:
    """What the documentation promises, written out independently of the code."""
    if likelihood == "bernoulli" and not info.binary:
        return "likelihood=bernoulli needs binary pixels"
    if likelihood == "discretized_logistic" and info.binary:
        return "likelihood=discretized_logistic needs 8-bit"
    if model == "cvae" and not info.has_labels:
        return "model=cvae conditions on labels"
    return None


def test_every_family_is_registered():
    assert {"vanilla", "beta_vae", "cvae", "vqvae", "hvae"} <= set(MODELS)


@pytest.mark.parametrize("likelihood_name", LIKELIHOODS)
@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_model_composes_with_what_it_supports_and_rejects_the_rest(compose_cfg, model_name, likelihood_name):
    cfg = compose_cfg(f"model={model_name}", f"likelihood={likelihood_name}")
    params = model_params(cfg.model)
    for key, info in DATASETS.items():
        problem = expected_problem(model_name, likelihood_name, info)
        likelihood = instantiate(cfg.likelihood)
        if problem is not None:
            with pytest.raises(ConfigError, match=problem) as err:
                likelihood.check_data(info, info.name)
                build_model(model_name, params, info, likelihood)
            message = str(err.value)
            assert "\n" not in message and ("use " in message or "binarize" in message), message
            continue
        likelihood.check_data(info, info.name)
        torch.manual_seed(0)
        model = build_model(model_name, params, info, likelihood)
        x = torch.randint(0, info.levels, (2, *info.shape)).float() / (info.levels - 1)
        y = None
        if info.has_labels:
            y = torch.randint(0, 2, (2, info.num_classes)) if info.name == "celeba" else torch.tensor([1, 3])
        with torch.no_grad():
            terms = model.elbo_terms(x, y)
            assert terms.elbo.shape == (2,) and bool(torch.isfinite(terms.elbo).all()), (key, terms.elbo)
            assert model.reconstruct(x, y).shape == x.shape, key
            assert model.representation(x, y).shape[0] == 2, key
