"""Every likelihood's log_prob_samples (what the importance-weighted bound evaluates, x broadcast over
the k samples) equals its log_prob on x repeated k times."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from vaezoo.builder import build
from vaezoo.data.info import DataInfo
from vaezoo.errors import ConfigError
from vaezoo.paths import config_dir

LIKELIHOODS = sorted(p.stem for p in (Path(config_dir()) / "likelihood").glob("*.yaml"))


@pytest.mark.parametrize("name", LIKELIHOODS)
@pytest.mark.parametrize("binary", [True, False])
def test_log_prob_samples_equals_log_prob_of_repeated_x(name: str, binary: bool) -> None:
    likelihood = build(OmegaConf.load(Path(config_dir()) / "likelihood" / f"{name}.yaml"))
    try:
        likelihood.check_data(DataInfo("toy", (2, 5, 5), 2 if binary else 256), "toy")
    except ConfigError:
        pytest.skip(f"{name} does not model {'binary' if binary else '8-bit'} pixels")
    g = torch.Generator().manual_seed(0)
    k, b, c = 3, 4, 2
    x = torch.rand(b, c, 5, 5, generator=g)
    x = (x > 0.5).float() if binary else (x * 255).round() / 255
    params = torch.randn(k, b, likelihood.out_channels(c), 5, 5, generator=g) * 3
    repeated = likelihood.log_prob(params.flatten(0, 1), x.repeat(k, 1, 1, 1)).view(k, b)
    assert torch.allclose(likelihood.log_prob_samples(params, x), repeated, rtol=1e-5, atol=1e-3)


def test_bernoulli_log_prob_samples_has_the_same_gradient_as_bce() -> None:
    """IWAE training (objective.k > 1) differentiates through log_prob_samples."""
    from vaezoo.likelihoods import Bernoulli

    g = torch.Generator().manual_seed(1)
    x = (torch.rand(4, 1, 3, 3, generator=g) > 0.5).float()
    params = (torch.randn(2, 4, 1, 3, 3, generator=g) * 4).requires_grad_()
    Bernoulli().log_prob_samples(params, x).sum().backward()
    fast = params.grad.clone()
    params.grad = None
    Bernoulli().log_prob(params.flatten(0, 1), x.repeat(2, 1, 1, 1)).sum().backward()
    assert torch.allclose(fast, params.grad, atol=1e-6)
