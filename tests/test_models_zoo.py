"""The zoo's families, term by term: VQ-VAE, hierarchical VAE, conditional VAE, and short training runs."""

from __future__ import annotations

import math

import pytest
import torch

from vaezoo.data import InMemoryDataModule
from vaezoo.data.info import DataInfo
from vaezoo.errors import ConfigError
from vaezoo.likelihoods import Bernoulli
from vaezoo.models import build_model
from vaezoo.models.pixelcnn import PixelCNNPrior
from vaezoo.objective import Objective

DIGITS = DataInfo("digits", (1, 8, 8), 2, 10)
TINY_VQ = {"num_codes": 16, "code_dim": 8, "channels": [16, 32], "res_blocks": 1}
TINY_HVAE = {"num_layers": 3, "latent_dim": 4, "width": 32, "net": {"kind": "mlp", "hidden": [64]}}
TINY_STACKED = {
    "latent_dim": [8, 4],
    "between": [[16]],
    "net": {"kind": "mlp", "hidden": [32], "act": "tanh"},
}


def binary_batch(n: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.rand(n, 1, 8, 8, generator=g), generator=g)


def grad_norm(params) -> float:
    return sum(float(p.grad.norm()) for p in params if p.grad is not None)


# -- VQ-VAE -------------------------------------------------------------------------------------


def test_vqvae_kl_is_log_k_per_position_and_stats_are_logged():
    torch.manual_seed(0)
    model = build_model("vqvae", TINY_VQ, DIGITS, Bernoulli())
    terms = model.elbo_terms(binary_batch())
    assert terms.kl["codes"].shape == (16, 4 * 4)  # 8x8 digits -> 4x4 grid
    assert torch.allclose(terms.kl["codes"], torch.full((16, 16), math.log(16)))
    assert set(terms.extra) == {"vq/commitment", "vq/codebook"}
    assert 1.0 <= float(terms.stats["vq/perplexity"]) <= 16.0
    assert 0.0 < float(terms.stats["vq/codes_used"]) <= 1.0


def test_vqvae_straight_through_gradient_reaches_encoder_but_not_codebook():
    torch.manual_seed(0)
    model = build_model("vqvae", TINY_VQ, DIGITS, Bernoulli())
    (-model.elbo_terms(binary_batch()).log_px_z.mean()).backward()
    assert grad_norm(model.encoder.parameters()) > 0
    assert model.quantizer.codebook.grad is None or float(model.quantizer.codebook.grad.abs().sum()) == 0


@pytest.mark.parametrize(
    "term, moves_codebook, moves_encoder", [("vq/codebook", True, False), ("vq/commitment", False, True)]
)
def test_vq_losses_move_what_the_paper_says(term, moves_codebook, moves_encoder):
    torch.manual_seed(0)
    model = build_model("vqvae", TINY_VQ, DIGITS, Bernoulli())
    model.elbo_terms(binary_batch()).extra[term].mean().backward()
    codebook_grad = model.quantizer.codebook.grad
    assert (codebook_grad is not None and float(codebook_grad.abs().sum()) > 0) == moves_codebook
    assert (grad_norm(model.encoder.parameters()) > 0) == moves_encoder
    assert grad_norm(model.decoder.parameters()) == 0


def test_vqvae_ema_codebook_moves_towards_assigned_encoder_outputs_in_training_only():
    torch.manual_seed(0)
    model = build_model("vqvae", {**TINY_VQ, "codebook_update": "ema", "ema_decay": 0.5}, DIGITS, Bernoulli())
    x = binary_batch()
    terms = model.elbo_terms(x)
    assert set(terms.extra) == {"vq/commitment"}  # no codebook loss with EMA updates
    model.eval()
    before = model.quantizer.codebook.detach().clone()
    model.elbo_terms(x)
    assert torch.equal(before, model.quantizer.codebook)  # evaluation never updates the codebook
    model.train()
    with torch.no_grad():
        z_e = model.encode(x).permute(0, 2, 3, 1).reshape(-1, 8)
        codes = model.quantizer.nearest(z_e)
    dist_before = (before[codes] - z_e).norm(dim=1).mean()
    model.elbo_terms(x)
    dist_after = (model.quantizer.codebook.detach()[codes] - z_e).norm(dim=1).mean()
    assert dist_after < dist_before


def test_vqvae_dead_codes_restart_on_encoder_outputs():
    torch.manual_seed(0)
    model = build_model(
        "vqvae", {**TINY_VQ, "restart_every": 1, "restart_threshold": 1.0}, DIGITS, Bernoulli()
    )
    with torch.no_grad():  # one live code near the outputs, all others far away (never chosen)
        model.quantizer.codebook.fill_(1e3)
        model.quantizer.codebook[0].zero_()
    x = binary_batch()
    model.elbo_terms(x)
    codebook = model.quantizer.codebook.detach()
    restarted = (codebook[1:] < 1e2).all(dim=1)
    assert bool(restarted.all())
    z_e = model.encode(x).detach().permute(0, 2, 3, 1).reshape(-1, 8)
    nearest = torch.cdist(codebook[1:], z_e).min(dim=1).values
    assert float(nearest.max()) < 1e-4  # each restarted code is one of the batch's encoder outputs


def test_vqvae_without_prior_says_so_and_samples_through_an_attached_prior():
    torch.manual_seed(0)
    model = build_model("vqvae", TINY_VQ, DIGITS, Bernoulli()).eval()
    assert not model.can_sample
    with pytest.raises(RuntimeError, match=r"no prior trained: .*python -m vaezoo\.prior run="):
        model.sample(4)
    model.attach_prior(PixelCNNPrior(16, (4, 4), channels=8, layers=1))
    images = model.sample(5)
    assert model.can_sample and images.shape == (5, 1, 8, 8)
    assert float(images.min()) >= 0 and float(images.max()) <= 1
    with pytest.raises(ConfigError, match="does not fit"):
        model.attach_prior(PixelCNNPrior(32, (4, 4), channels=8, layers=1))


def test_vqvae_importance_weights_equal_the_elbo():
    torch.manual_seed(0)
    model = build_model("vqvae", TINY_VQ, DIGITS, Bernoulli()).eval()
    x = binary_batch()
    lw = model.log_importance_weights(x, None, 3)
    assert lw.shape == (3, 16)
    assert torch.allclose(lw, model.elbo_terms(x).elbo.expand(3, -1))


def test_pixelcnn_logits_depend_only_on_earlier_codes():
    torch.manual_seed(0)
    prior = PixelCNNPrior(8, (5, 5), channels=16, layers=3).eval()
    codes = torch.randint(0, 8, (1, 5, 5))
    with torch.no_grad():
        base = prior(codes)
        for pos in range(25):
            changed = codes.clone()
            changed.view(-1)[pos] = (changed.view(-1)[pos] + 1) % 8
            diff = (prior(changed) - base).abs().amax(dim=1).view(-1)
            assert float(diff[: pos + 1].max()) == 0.0, f"position {pos} leaks into earlier logits"
            if pos % 5 < 4:
                assert float(diff[pos + 1]) > 0  # and the next position in its row does see it
        expected = torch.log_softmax(base, 1).gather(1, codes[:, None]).sum()
        assert torch.allclose(prior.log_prob(codes), expected)


# -- hierarchical VAE ---------------------------------------------------------------------------


def randomised_hvae(**overrides):
    torch.manual_seed(0)
    model = build_model("hvae", {**TINY_HVAE, **overrides}, DIGITS, Bernoulli())
    with torch.no_grad():  # leave the zero-initialised start behind, so every term is non-trivial
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def test_hvae_kl_is_the_sum_of_per_layer_kls_each_non_negative():
    model = randomised_hvae()
    with torch.no_grad():
        terms = model.elbo_terms(binary_batch())
    assert list(terms.kl) == ["z1", "z2", "z3"]
    per_layer = terms.kl_per_group
    assert all(float(v.min()) >= 0 for v in terms.kl.values())
    assert all(float(v.mean()) > 0 for v in per_layer.values())
    assert torch.allclose(terms.kl_total, sum(per_layer.values()))
    assert torch.allclose(terms.elbo, terms.log_px_z - sum(per_layer.values()))


def test_hvae_analytic_kl_matches_its_importance_weights_on_average():
    """E_q[log p(x,z) − log q(z|x)] is the ELBO: the per-layer analytic KLs agree with the weights."""
    model = randomised_hvae().eval()
    x = binary_batch(4)
    torch.manual_seed(1)
    with torch.no_grad():
        lw = model.log_importance_weights(x, None, 2000)
        elbo = torch.stack([model.elbo_terms(x).elbo for _ in range(300)]).mean(0)
    assert torch.allclose(lw.mean(0), elbo, atol=0.4), (lw.mean(0), elbo)


def test_hvae_log_variances_are_soft_clamped_and_no_nans_with_huge_weights():
    model = randomised_hvae(logvar_bound=5.0)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(5.0)
        _, layers = model.infer(binary_batch())
        terms = model.elbo_terms(binary_batch())
    for _, mu_q, lv_q, mu_p, lv_p in layers:
        assert float(lv_q.abs().max()) <= 5.0 and float(lv_p.abs().max()) <= 5.0
        assert float(mu_q.abs().max()) <= 10.0 and float(mu_p.abs().max()) <= 10.0
    assert all(bool(torch.isfinite(v).all()) for v in terms.kl.values())


def test_hvae_conv_variant_for_colour_images():
    from vaezoo.likelihoods import DiscretizedLogistic

    info = DataInfo("cifar10", (3, 32, 32), 256, 10)
    likelihood = DiscretizedLogistic()
    likelihood.check_data(info, "cifar10")
    net = {"kind": "conv", "channels": [8, 16, 16]}
    model = build_model("hvae", {"num_layers": 2, "latent_dim": 4, "width": 16, "net": net}, info, likelihood)
    x = torch.randint(0, 256, (2, 3, 32, 32)).float() / 255
    terms = model.elbo_terms(x)
    assert list(terms.kl) == ["z1", "z2"] and terms.kl["z1"].shape == (2, 4 * 4 * 4)
    assert model.sample(3).shape == (3, 3, 32, 32)
    assert model.log_importance_weights(x, None, 2).shape == (2, 2)


# -- stacked (bottom-up) VAE --------------------------------------------------------------------


def test_stacked_vae_kl_estimates_agree_with_its_importance_weights_on_average():
    """The lower layer's one-sample KL and the top's closed-form KL sum to the ELBO the weights average to."""
    torch.manual_seed(0)
    model = build_model("stacked", TINY_STACKED, DIGITS, Bernoulli()).eval()
    x = binary_batch(4)
    with torch.no_grad():
        lw = model.log_importance_weights(x, None, 4000)
        terms = [model.elbo_terms(x) for _ in range(4000)]
    assert [list(t.kl) for t in terms[:1]] == [["z1", "z2"]]
    elbo = torch.stack([t.elbo for t in terms]).mean(0)
    assert torch.allclose(lw.mean(0), elbo, atol=0.3), (lw.mean(0), elbo)
    assert float(torch.stack([t.kl["z1"] for t in terms]).min()) < 0  # estimates, not closed forms
    iw_bound = torch.logsumexp(lw, 0) - torch.log(torch.tensor(4000.0))
    assert (iw_bound > elbo + 0.1).all()  # the IW bound is tighter than the ELBO


def test_stacked_vae_ancestral_samples_follow_the_learned_conditional_prior():
    torch.manual_seed(0)
    model = build_model("stacked", TINY_STACKED, DIGITS, Bernoulli()).eval()
    with torch.no_grad():
        for p in model.down.parameters():  # a prior p(z1|z2) far from N(0, I)
            p.add_(0.5)
        z = model.prior_latents(20000)
        z1, z2 = z[:, :8], z[:, 8:]
        mu, logvar = model.down[0](z2)
    assert abs(float(z2.mean())) < 0.03 and abs(float(z2.std()) - 1) < 0.03
    standardized = (z1 - mu) * torch.exp(-0.5 * logvar)  # N(0, I) exactly when z1 ~ p(z1|z2)
    assert abs(float(standardized.mean())) < 0.03 and abs(float(standardized.std()) - 1) < 0.03
    assert float(z1.mean().abs()) > 0.2  # the conditional prior is not the standard normal


# -- conditional VAE ----------------------------------------------------------------------------


def test_cvae_needs_labels():
    unlabelled = DataInfo("binarized_mnist", (1, 28, 28), 2, None)
    with pytest.raises(ConfigError, match="model=cvae conditions on labels but dataset=binarized_mnist"):
        build_model("cvae", {}, unlabelled, Bernoulli())
    model = build_model("cvae", {}, DIGITS, Bernoulli())
    with pytest.raises(ValueError, match="needs the labels"):
        model.sample(4)
    with pytest.raises(ConfigError, match="label_encoding"):
        build_model("cvae", {"label_encoding": "bogus"}, DIGITS, Bernoulli())


@pytest.mark.parametrize("encoding", ["onehot", "embedding"])
def test_cvae_attribute_vectors_as_labels(encoding):
    info = DataInfo("celeba", (3, 8, 8), 256, 40)
    from vaezoo.likelihoods import Gaussian

    model = build_model("cvae", {"label_encoding": encoding, "latent_dim": 4}, info, Gaussian())
    attributes = torch.randint(0, 2, (3, 40))
    assert model.elbo_terms(torch.rand(3, 3, 8, 8), attributes).elbo.shape == (3,)
    assert model.sample(3, attributes).shape == (3, 3, 8, 8)


def test_cvae_conditional_prior_is_the_gaussian_the_elbo_and_samples_use():
    """The KL, the importance weights and the prior draws all use p(z|y), not N(0, I)."""
    torch.manual_seed(0)
    model = build_model("cvae", {"latent_dim": 3}, DIGITS, Bernoulli())
    assert not model.standard_normal_prior
    assert build_model("cvae", {"prior": "standard_normal"}, DIGITS, Bernoulli()).standard_normal_prior
    with pytest.raises(ConfigError, match=r"model\.prior='bogus' must be one of conditional"):
        build_model("cvae", {"prior": "bogus"}, DIGITS, Bernoulli())
    with torch.no_grad():  # move the prior away from its N(0, I) start
        model.prior_net.weight.normal_(0, 1)
        model.prior_net.bias.normal_(0, 0.5)
    x, y = binary_batch(4), torch.tensor([0, 3, 3, 9])
    mu, logvar = model.posterior_params(x, y)
    prior_mu, prior_logvar = model.prior_params(y)
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(mu, (0.5 * logvar).exp()),
        torch.distributions.Normal(prior_mu, (0.5 * prior_logvar).exp()),
    )
    assert torch.allclose(model.elbo_terms(x, y).kl["z"], expected, atol=1e-5)
    assert torch.allclose(model.kl_per_dim(x, y), expected, atol=1e-5)
    # log w = log p(x|z) + log p(z|y) - log q(z|x,y): its mean over samples is the ELBO
    torch.manual_seed(1)
    log_w = model.log_importance_weights(x, y, k=4000).mean(0)
    elbo = torch.stack([model.elbo_terms(x, y).elbo for _ in range(4000)]).mean(0)
    assert torch.allclose(log_w, elbo, rtol=0.01)
    draws = model.prior_latents(20000, torch.full((20000,), 3))
    assert torch.allclose(draws.mean(0), prior_mu[1], atol=0.1)
    assert torch.allclose(draws.std(0), (0.5 * prior_logvar[1]).exp(), rtol=0.05)


# -- short training runs on digits: each family improves on its untrained self --------------------


@pytest.fixture(scope="module")
def digits() -> InMemoryDataModule:
    dm = InMemoryDataModule("digits", binarize="dynamic", batch_size=64, eval_batch_size=300, val_size=150)
    dm.load()
    return dm


def test_elbo(model, dm) -> float:
    model.eval()
    with torch.no_grad():
        batch = dm.splits["test"][torch.arange(300)]
        torch.manual_seed(123)
        value = float(model.elbo_terms(batch["x"], batch.get("y")).elbo.mean())
    model.train()
    return value


test_elbo.__test__ = False  # a helper, not a test


def train_briefly(model, dm, objective: Objective, steps: int = 150) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    batches = iter(())
    for step in range(steps):
        batch = next(batches, None)
        if batch is None:
            batches = iter(dm.train_dataloader())
            batch = next(batches)
        loss = objective(model, batch["x"], batch.get("y"), step).loss
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.mark.parametrize(
    "name, params, k",
    [
        ("cvae", {"latent_dim": 8, "net": {"kind": "mlp", "hidden": [64]}}, 1),
        ("vqvae", TINY_VQ, 1),
        ("hvae", TINY_HVAE, 1),
        ("stacked", TINY_STACKED, 5),  # IWAE objective through two stochastic layers
        ("vanilla", {"latent_dim": 8, "net": {"kind": "mlp", "hidden": [64]}}, 5),  # IWAE objective
    ],
)
def test_short_training_improves_on_the_untrained_model(digits, name, params, k):
    torch.manual_seed(0)
    model = build_model(name, params, digits.info, Bernoulli())
    before = test_elbo(model, digits)
    train_briefly(model, digits, Objective(k=k))
    after = test_elbo(model, digits)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert after > before + 5.0, (before, after)


def test_cvae_samples_differ_by_label(digits):
    torch.manual_seed(0)
    model = build_model(
        "cvae", {"latent_dim": 8, "net": {"kind": "mlp", "hidden": [64]}}, digits.info, Bernoulli()
    )
    train_briefly(model, digits, Objective())
    model.eval()
    means = []
    for label in range(10):
        torch.manual_seed(7)  # the same z for every label
        means.append(model.sample(32, y=label))
    gaps = [float((means[a] - means[b]).abs().mean()) for a in range(10) for b in range(a + 1, 10)]
    assert min(gaps) > 0.01, min(gaps)
    # and each class's training images look most like the samples generated for that class
    train = digits.splits["train"]
    x = train.x.float() / (train.levels - 1)
    class_means = torch.stack([x[train.y == c].mean(0) for c in range(10)])
    dist = torch.stack(
        [(class_means - m.mean(0)).square().flatten(1).sum(1) for m in means]
    )  # [label, class]
    closest_label = dist.argmin(0).tolist()
    assert sum(c == label for c, label in enumerate(closest_label)) >= 8, closest_label


VQ_UPDATES = ("loss", "ema")


def _ddp_codebook_worker(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist

    from vaezoo.models.vqvae import VectorQuantizer

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    for update in VQ_UPDATES:  # both codebook updates in one pair of processes (a spawn costs ~10 s)
        torch.manual_seed(0)  # the same initial codebook on every process ...
        vq = VectorQuantizer(8, 4, update=update, restart_every=2, restart_threshold=1.0)
        torch.manual_seed(100 + rank)  # ... but different data and random restarts per process
        for _ in range(4):
            vq(torch.randn(3, 4, 2, 2) + rank)
        torch.save(vq.codebook.detach(), f"{out}/codebook-{update}-{rank}.pt")
    dist.destroy_process_group()


def test_vq_codebook_stays_identical_across_ddp_processes(tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_codebook_worker, args=(2, port, str(tmp_path)), nprocs=2)
    for update in VQ_UPDATES:
        first, second = (torch.load(tmp_path / f"codebook-{update}-{r}.pt") for r in range(2))
        assert torch.equal(first, second), update


def test_updates_with_huge_or_non_finite_gradient_norm_are_skipped():
    from vaezoo.training import VAEModule

    model = build_model("hvae", TINY_HVAE, DIGITS, Bernoulli())
    module = VAEModule(model, Objective(), grad_skip_threshold=100.0)
    module.log_dict = lambda *args, **kwargs: None  # no trainer attached in this unit test
    for scale, skipped in [(1e-3, False), (1e6, True), (float("nan"), True)]:
        for p in module.parameters():
            p.grad = torch.full_like(p, scale)
        module.on_before_optimizer_step(None)
        assert all((p.grad is None) == skipped for p in module.parameters()), scale
    assert module.skipped_updates == 2


def test_clip_norm_clips_updates_that_are_not_skipped():
    """One gradient norm decides both: above the skip threshold no update, above clip_norm a clipped one."""
    from vaezoo.training import VAEModule

    model = build_model(
        "vanilla", {"latent_dim": 2, "net": {"kind": "mlp", "hidden": [8]}}, DIGITS, Bernoulli()
    )
    for threshold in (None, 1e4):
        module = VAEModule(model, Objective(), grad_skip_threshold=threshold, clip_norm=1.0)
        module.log_dict = lambda *args, **kwargs: None  # no trainer attached in this unit test
        for scale, expected_norm in [(1e-4, None), (1.0, 1.0)]:
            grads = {p: torch.full_like(p, scale) for p in module.parameters()}
            for p, g in grads.items():
                p.grad = g.clone()
            before = torch.nn.utils.get_total_norm(list(grads.values())).item()
            module.on_before_optimizer_step(None)
            after = torch.nn.utils.get_total_norm([p.grad for p in module.parameters()]).item()
            assert after == pytest.approx(before if expected_norm is None else expected_norm, rel=1e-5)
        assert module.skipped_updates == 0
