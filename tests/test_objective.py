"""KL schedules and regularisers, and the objective built from them."""

from __future__ import annotations

import pytest
import torch

from vaezoo.errors import ConfigError
from vaezoo.objective import CapacityAnnealing, ConstantBeta, Cyclical, FreeBits, LinearWarmup, Objective


def kl_of(values: list[float]) -> dict[str, torch.Tensor]:
    return {"z": torch.tensor([values], requires_grad=True)}


def test_constant_beta_scales_the_total_kl():
    kl = kl_of([1.0, 2.0])
    assert ConstantBeta(beta=4).loss(kl, step=0).item() == pytest.approx(12.0)


def test_linear_warmup_rises_to_beta_and_stays():
    reg = LinearWarmup(beta=2.0, warmup_steps=100)
    assert [reg.weight(s) for s in (0, 50, 100, 500)] == [0.0, 1.0, 2.0, 2.0]


def test_cyclical_schedule_follows_fu_et_al():
    reg = Cyclical(beta=1.0, cycles=4, ramp_fraction=0.5)
    reg.set_total_steps(400)  # cycles of 100 steps, ramp over the first 50
    assert reg.weight(0) == 0.0
    assert reg.weight(25) == pytest.approx(0.5)
    assert reg.weight(60) == 1.0
    assert reg.weight(100) == 0.0  # next cycle starts again from zero
    assert reg.weight(399) == 1.0


def test_free_bits_floors_each_dimension_and_stops_its_gradient():
    kl = {"z": torch.tensor([[0.05, 2.0], [0.15, 4.0]], requires_grad=True)}
    loss = FreeBits(beta=1.0, lambda_=0.5).loss(kl, step=0)
    assert loss.item() == pytest.approx(0.5 + 3.0)  # dim 0 mean 0.1 < 0.5 is floored
    loss.backward()
    assert torch.equal(kl["z"].grad[:, 0], torch.zeros(2))  # below the floor: no push to the prior
    assert torch.allclose(kl["z"].grad[:, 1], torch.full((2,), 0.5))


def test_capacity_annealing_penalises_distance_to_capacity():
    reg = CapacityAnnealing(gamma=10.0, max_capacity=20.0, anneal_steps=100)
    kl = kl_of([3.0, 2.0])
    assert reg.capacity(50) == 10.0
    assert reg.loss(kl, step=50).item() == pytest.approx(10.0 * 5.0)
    assert reg.loss(kl, step=0).item() == pytest.approx(10.0 * 5.0)


def test_capacity_rejects_a_beta_it_would_ignore():
    with pytest.raises(ConfigError, match=r"beta=4\.0 would be ignored"):
        CapacityAnnealing(beta=4.0)


def test_objective_loss_is_recon_plus_weighted_kl_and_logs_plain_elbo():
    from tests.test_elbo_pieces import _toy_model

    model = _toy_model()
    x = torch.randint(0, 2, (8, 1, 4, 4)).float()
    torch.manual_seed(3)
    out = Objective(kl=ConstantBeta(beta=4.0))(model, x, None, step=0)
    torch.manual_seed(3)
    terms = model.elbo_terms(x)
    assert out.loss.item() == pytest.approx((-terms.log_px_z + 4.0 * terms.kl_total).mean().item(), rel=1e-5)
    assert out.metrics["elbo"].item() == pytest.approx(terms.elbo.mean().item(), rel=1e-5)
    assert out.metrics["kl/beta"] == 4.0
