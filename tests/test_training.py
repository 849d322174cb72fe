"""Training through the real entry point: it must improve on the untrained model."""

from __future__ import annotations

from tests.conftest import TINY
from vaezoo.stages.train import train


def test_short_training_beats_the_untrained_model_on_test_elbo(compose_cfg):
    # trainer.max_epochs=0 is refused as a likely mistake; zero steps, asked for explicitly, is not.
    untrained = train(compose_cfg(*TINY, "logger=csv", "+trainer.max_steps=0"))
    trained = train(compose_cfg(*TINY, "logger=csv", "trainer.max_epochs=6"))
    assert trained["steps"] > 0 and untrained["steps"] == 0
    assert trained["test"]["elbo_nats"] > untrained["test"]["elbo_nats"] + 5.0
    assert trained["test"]["iw_bound_nats"] >= trained["test"]["elbo_nats"] - 0.5
    assert trained["test"]["n_examples"] == 300
