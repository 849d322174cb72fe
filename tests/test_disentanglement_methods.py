"""The disentanglement methods' extra terms against known answers, their training step, the CLI on dSprites.

β-TCVAE's three KL parts sum to the KL's one-sample estimate, its stratified estimator is the exact
aggregate posterior when the batch is the dataset; FactorVAE's discriminator finds no total correlation in
factorised codes and about the true one in correlated codes; DIP-VAE's penalty is zero at the identity.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from torch.distributions import Normal

from tests.conftest import run_cli
from vaezoo.data.info import DataInfo
from vaezoo.errors import ConfigError
from vaezoo.likelihoods import Bernoulli
from vaezoo.models import build_model
from vaezoo.models.beta_tcvae import decompose_kl
from vaezoo.models.dip_vae import covariance, dip_parts
from vaezoo.models.factor_vae import Discriminator, permute_dims
from vaezoo.models.gaussian import gaussian_kl, standard_normal_log_prob
from vaezoo.objective import Objective
from vaezoo.training import VAEModule

DIGITS = DataInfo("digits", (1, 8, 8), 2, 10, train_size=1000)
TINY_NET = {"kind": "mlp", "hidden": [32]}
METHODS = ["factor_vae", "beta_tcvae", "dip_vae_i", "dip_vae_ii"]


def posterior_batch(m: int, d: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mu, logvar = torch.randn(m, d, generator=g), 0.5 * torch.randn(m, d, generator=g)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(m, d, generator=g)
    return z, mu, logvar


@pytest.mark.parametrize("name", METHODS)
def test_the_importance_weighted_objective_refuses_a_loss_outside_the_elbo(name):
    model = build_model(name, {"net": TINY_NET}, DIGITS, Bernoulli())
    with pytest.raises(ConfigError, match=rf"model={name} adds a loss term outside the ELBO"):
        Objective(k=2).check_model(model, name)
    Objective(k=1).check_model(model, name)


# -- β-TCVAE -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_beta_tcvae_parts_sum_to_the_kl_they_split(estimator):
    z, mu, logvar = posterior_batch(16, 4)
    parts = decompose_kl(z, mu, logvar, dataset_size=500, estimator=estimator)
    log_q = Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(1)
    one_sample_kl = log_q - standard_normal_log_prob(z)
    torch.testing.assert_close(parts.mi + parts.tc + parts.dwkl, one_sample_kl, rtol=1e-5, atol=1e-4)
    # On average over the posteriors' samples that is the closed-form KL the ELBO keeps.
    g = torch.Generator().manual_seed(1)
    draws = mu + torch.exp(0.5 * logvar) * torch.randn(4000, *mu.shape, generator=g)
    sampled = (
        Normal(mu, torch.exp(0.5 * logvar)).log_prob(draws).sum(2) - standard_normal_log_prob(draws)
    ).mean(0)
    torch.testing.assert_close(sampled, gaussian_kl(mu, logvar).sum(1), atol=0.15, rtol=0)


def test_stratified_estimator_is_the_exact_aggregate_posterior_when_the_batch_is_the_dataset():
    z, mu, logvar = posterior_batch(12, 3)
    parts = decompose_kl(z, mu, logvar, dataset_size=12, estimator="mss")
    each = Normal(mu[None], torch.exp(0.5 * logvar[None]))  # [1 (sample), 12 (posterior), 3]
    densities = each.log_prob(z[:, None]).exp()  # [12, 12, 3]
    log_qz = densities.prod(2).mean(1).log()
    log_marginals = densities.mean(1).log().sum(1)
    torch.testing.assert_close(parts.tc, log_qz - log_marginals, rtol=1e-5, atol=1e-5)
    log_q_own = Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(1)
    torch.testing.assert_close(parts.mi, log_q_own - log_qz, rtol=1e-5, atol=1e-5)
    # Minibatch-weighted sampling weighs every member 1/(N M): its TC is (D − 1) log N above that.
    mws = decompose_kl(z, mu, logvar, dataset_size=1000, estimator="mws")
    torch.testing.assert_close(mws.tc, parts.tc + 2 * math.log(1000), rtol=1e-5, atol=1e-4)


def test_beta_tcvae_tc_is_about_zero_for_independent_codes_and_the_true_value_for_copied_ones():
    g = torch.Generator().manual_seed(0)
    m, sigma = 1000, 0.3
    logvar = torch.full((m, 2), 2 * math.log(sigma))
    mu = torch.randn(m, 2, generator=g)
    independent = decompose_kl(mu + sigma * torch.randn(m, 2, generator=g), mu, logvar, m, "mss").tc.mean()
    mu[:, 1] = mu[:, 0]
    copied = decompose_kl(mu + sigma * torch.randn(m, 2, generator=g), mu, logvar, m, "mss").tc.mean()
    # Two noisy copies of one N(0, 1) code: mutual information 0.5 log(1 / (1 − ρ²)), ρ = 1 / (1 + σ²).
    truth = -0.5 * math.log(1 - (1 / (1 + sigma**2)) ** 2)
    assert abs(float(independent)) < 0.05
    assert abs(float(copied) - truth) < 0.1, (float(copied), truth)


def test_beta_tcvae_adds_beta_minus_one_times_tc_and_logs_the_three_parts():
    torch.manual_seed(0)
    model = build_model("beta_tcvae", {"net": TINY_NET, "tc_beta": 4.0}, DIGITS, Bernoulli())
    x = torch.bernoulli(torch.rand(16, 1, 8, 8))
    torch.manual_seed(1)
    terms = model.elbo_terms(x)
    assert set(terms.stats) == {"mi_estimate", "tc_estimate", "dwkl_estimate"}
    torch.testing.assert_close(terms.extra["excess_tc"].mean(), 3.0 * terms.stats["tc_estimate"])
    torch.manual_seed(1)
    plain = build_model("beta_tcvae", {"net": TINY_NET, "tc_beta": 1.0}, DIGITS, Bernoulli())
    plain.load_state_dict(model.state_dict())
    assert float(plain.elbo_terms(x).extra["excess_tc"].detach().abs().max()) == 0.0
    assert model.dataset_size == 1000  # from the data description


# -- FactorVAE -----------------------------------------------------------------------------------------


def trained_tc(correlated: bool, steps: int = 300) -> float:
    """A small discriminator trained alone on codes; its TC estimate on fresh codes."""
    torch.manual_seed(0)

    def codes(n: int) -> torch.Tensor:
        z = torch.randn(n, 3)
        if correlated:
            z[:, 1] = z[:, 0] + 0.1 * torch.randn(n)
        return z

    disc = Discriminator(3, layers=2, width=64)
    opt = torch.optim.Adam(disc.parameters(), lr=1e-3, betas=(0.5, 0.9))
    for _ in range(steps):
        z = codes(256)
        loss = disc.loss(disc(z), disc(permute_dims(z)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float(disc.tc_estimate(codes(4000)).mean())


def test_factor_vae_discriminator_finds_tc_only_in_correlated_codes():
    factorised, correlated = trained_tc(False), trained_tc(True)
    assert abs(factorised) < 0.15, factorised
    assert correlated > 1.0, correlated  # the true TC is 0.5 log(1 + 1/0.01) = 2.31 nats


def test_permuting_dimensions_keeps_each_marginal():
    z = torch.arange(20.0).view(10, 2)
    shuffled = permute_dims(z)
    assert all(torch.equal(shuffled[:, j].sort().values, z[:, j]) for j in range(2))


class Batches(torch.utils.data.Dataset):
    def __init__(self, n: int = 64) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.bernoulli(torch.rand(n, 1, 8, 8, generator=g), generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i]}


class SeedEachBatch(L.Callback):
    """Seeds the global RNG before every training batch, so a test can redraw the step's noise."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        torch.manual_seed(100 + batch_idx)


def fit(module: VAEModule, steps: int, ckpt_path: Path | None = None) -> L.Trainer:
    trainer = L.Trainer(
        max_steps=steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        callbacks=[SeedEachBatch()],
    )
    loader = torch.utils.data.DataLoader(Batches(), batch_size=16, shuffle=False)
    trainer.fit(module, loader, ckpt_path=ckpt_path)
    return trainer


def factor_module(lr: float = 1e-3, discriminator_lr: float = 1e-3) -> VAEModule:
    torch.manual_seed(0)
    params = {"net": TINY_NET, "gamma": 10.0, "discriminator_layers": 2, "discriminator_width": 16}
    model = build_model("factor_vae", {**params, "discriminator_lr": discriminator_lr}, DIGITS, Bernoulli())
    return VAEModule(model, Objective(), lr=lr)


def test_factor_vae_step_moves_each_part_by_its_own_loss_only():
    """Adam's first step moves a weight by lr·sign(gradient): the signs name the loss each part followed."""
    module = factor_module(lr=1e-3, discriminator_lr=1e-2)
    model = module.model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = Batches().x[:16]
    torch.manual_seed(100)  # the noise the step will draw
    terms = model.elbo_terms(x)
    recon_kl_extra = -terms.log_px_z.mean() + terms.kl_total.mean() + terms.extra["gamma_tc"].mean()
    encoder = model.posterior.weight
    disc = model.discriminator[0].weight
    g_encoder = torch.autograd.grad(recon_kl_extra, encoder, retain_graph=True)[0]
    g_disc_own = torch.autograd.grad(terms.auxiliary_loss, disc, retain_graph=True)[0]
    g_disc_vae = torch.autograd.grad(recon_kl_extra, disc)[0]
    model.load_state_dict(before)
    trainer = fit(module, 1)
    assert trainer.global_step == 1
    step_encoder = model.posterior.weight.detach() - before["posterior.weight"]
    step_disc = model.discriminator[0].weight.detach() - before["discriminator.0.weight"]
    big = g_encoder.abs() > 1e-5
    torch.testing.assert_close(step_encoder[big], -1e-3 * g_encoder[big].sign(), rtol=1e-3, atol=1e-6)
    big = g_disc_own.abs() > 1e-5
    torch.testing.assert_close(step_disc[big], -1e-2 * g_disc_own[big].sign(), rtol=1e-3, atol=1e-5)
    # The VAE's loss pulls the discriminator elsewhere (it would follow −γ·TC): that pull was not applied.
    assert bool(((g_disc_vae.sign() != g_disc_own.sign()) & big).any())


def test_factor_vae_counts_one_global_step_per_batch_and_resumes_both_optimisers(tmp_path):
    module = factor_module()
    trainer = fit(module, 3)
    assert trainer.global_step == 3
    path = tmp_path / "three.ckpt"
    trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=True)
    assert len(checkpoint["optimizer_states"]) == 2
    steps = [float(next(iter(s["state"].values()))["step"]) for s in checkpoint["optimizer_states"]]
    assert steps == [3.0, 3.0]
    resumed = factor_module()
    trainer = fit(resumed, 5, ckpt_path=path)
    assert trainer.global_step == 5
    main, aux = resumed.optimizers()
    assert float(next(iter(aux.optimizer.state.values()))["step"]) == 5.0
    assert float(next(iter(main.optimizer.state.values()))["step"]) == 5.0
    assert aux.optimizer.param_groups[0]["betas"] == (0.5, 0.9)


# -- DIP-VAE -------------------------------------------------------------------------------------------


def test_dip_penalty_is_zero_for_an_identity_covariance_and_positive_otherwise():
    square = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    assert torch.equal(covariance(square), torch.eye(2))
    parts = dip_parts(covariance(square))
    assert float(parts.off_diagonal) == 0.0 and float(parts.diagonal) == 0.0
    parts = dip_parts(covariance(2 * square))  # variances 4: (4 − 1)² per dimension
    assert float(parts.off_diagonal) == 0.0 and float(parts.diagonal) == 18.0
    parts = dip_parts(covariance(torch.tensor([[1.0, 1.0], [1.0, 1.0], [-1.0, -1.0], [-1.0, -1.0]])))
    assert float(parts.off_diagonal) == 2.0 and float(parts.diagonal) == 0.0  # two entries of 1


@pytest.mark.parametrize("name, variance_counts", [("dip_vae_i", False), ("dip_vae_ii", True)])
def test_dip_vae_penalises_the_covariance_its_paper_names(name, variance_counts):
    model = build_model(name, {"net": TINY_NET, "lambda_od": 2.0, "lambda_d": 3.0}, DIGITS, Bernoulli())
    square = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]]) * math.sqrt(0.5)
    logvar = torch.full((4, 2), math.log(0.5))
    cov = model.penalised_covariance(square, logvar)  # means of variance 0.5, posteriors of variance 0.5
    expected = torch.eye(2) if variance_counts else 0.5 * torch.eye(2)
    torch.testing.assert_close(cov, expected)
    terms = model.elbo_terms(torch.bernoulli(torch.rand(8, 1, 8, 8)))
    penalty = 2.0 * terms.stats["dip_off_diagonal"] + 3.0 * terms.stats["dip_diagonal"]
    torch.testing.assert_close(terms.extra["dip_penalty"], penalty.expand(8))


# -- the CLI on dSprites -------------------------------------------------------------------------------


def write_small_dsprites(root: Path, n: int = 256) -> Path:
    """``<root>/dsprites/`` with the official file's two arrays for n random squares (not the real set)."""
    rng = np.random.default_rng(0)
    imgs = np.zeros((n, 64, 64), dtype=np.uint8)
    for i, (r, c, s) in enumerate(
        zip(rng.integers(0, 48, n), rng.integers(0, 48, n), rng.integers(4, 16, n), strict=True)
    ):
        imgs[i, r : r + s, c : c + s] = 1
    classes = np.zeros((n, 6), dtype=np.int64)
    folder = root / "dsprites"
    folder.mkdir(parents=True)
    np.savez(folder / "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz", imgs=imgs, latents_classes=classes)
    return root


def test_every_method_trains_a_few_steps_through_the_cli_on_dsprites_with_the_conv_net(tmp_path):
    data = write_small_dsprites(tmp_path / "data")
    args = [
        "-m",
        f"model={','.join(METHODS)}",
        "model/net=conv",
        "dataset=dsprites",
        "dataset.val_size=32",
        "dataset.test_size=32",
        f"paths.data={data}",
        "hardware=cpu",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=3",
        "trainer.log_every_n_steps=1",
        "trainer.enable_progress_bar=false",
        "eval.metrics=[kl_per_dim]",
        "eval.iw_k=2",
        "eval.iw_chunk=2",
        "images.n_images=4",
        "pictures.enabled=false",
        "logger=csv",
    ]
    proc = run_cli(args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    logged = {
        "factor_vae": {"train/gamma_tc", "train/tc_estimate", "train/discriminator_loss"},
        "beta_tcvae": {"train/excess_tc", "train/mi_estimate", "train/tc_estimate", "train/dwkl_estimate"},
        "dip_vae_i": {"train/dip_penalty", "train/dip_off_diagonal", "train/dip_diagonal"},
        "dip_vae_ii": {"train/dip_penalty", "train/dip_off_diagonal", "train/dip_diagonal"},
    }
    seen = set()
    for job in (tmp_path / "runs" / "multirun").glob("*/*"):
        if not (job / "results.json").is_file():
            continue
        results = json.loads((job / "results.json").read_text())
        model = results["model"]
        seen.add(model)
        assert results["steps"] == 3, model
        header = (job / "metrics.csv").read_text().splitlines()[0].split(",")
        assert logged[model] <= set(header), (model, header)
    assert seen == set(METHODS)
