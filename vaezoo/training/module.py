"""The LightningModule: a model plus the one objective, identical in train, validation and test.

The NaN policy: a non-finite training loss, or a non-finite parameter, stops the run with
:class:`~vaezoo.errors.Diverged` naming the first bad step. The loss is checked on the device every
step and read on the host only when Lightning logs anyway, at epoch ends and before every checkpoint
save (so no checkpoint holds a diverged state). Where the config asks for update skipping
(``optimizer.grad_skip_threshold``, set by hvae), a non-finite loss instead skips that update and
counts it; ``optimizer.max_consecutive_skips`` skipped updates in a row stop the run the same way.

A model with an auxiliary part (:meth:`~vaezoo.models.base.VAEModel.auxiliary_part`, FactorVAE's
discriminator) gets a second Adam for it, stepped in the same training step on the part's own loss;
each loss reaches only its own optimiser's parameters, and both optimisers' states are checkpointed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import lightning as L
import torch
from torch import Tensor

from vaezoo.errors import ConfigError, Diverged
from vaezoo.models.base import VAEModel
from vaezoo.objective import Objective
from vaezoo.objective.objective import ObjectiveOutput


def skip_or_clip(
    parameters: Iterable[torch.nn.Parameter], skip_threshold: float | None, clip_norm: float | None
) -> tuple[Tensor | None, bool]:
    """One update's gradient rule, from one norm computation; returns (gradient norm, skipped).

    A norm that is not finite or above ``skip_threshold`` skips the update as VDVAE does: every
    gradient is dropped, so the optimiser leaves all parameters (and its moment estimates) untouched.
    Otherwise the gradients are scaled down to a norm of at most ``clip_norm``. Deciding to skip reads
    the norm on the host once per step; clipping alone does not. The norm is None when there is
    nothing to do (no gradients, or neither setting).
    """
    params = [p for p in parameters if p.grad is not None]
    if not params or (skip_threshold is None and clip_norm is None):
        return None, False
    if skip_threshold is None:
        return torch.nn.utils.clip_grad_norm_(params, clip_norm, foreach=True), False
    norm = torch.nn.utils.get_total_norm([p.grad for p in params], foreach=True)
    if not torch.isfinite(norm) or norm > skip_threshold:
        for p in params:
            p.grad = None
        return norm, True
    if clip_norm is not None:
        torch.nn.utils.clip_grads_with_norm_(params, clip_norm, norm, foreach=True)
    return norm, False


class VAEModule(L.LightningModule):
    """Trains ``model`` on ``objective`` with Adam; logs every term under train/, val/ and test/.

    One update: zero the gradients, backward, skip the update when the gradient norm is above
    ``grad_skip_threshold`` or not finite, clip the gradient norm to ``clip_norm``, Adam step.
    """

    def __init__(
        self,
        model: VAEModel,
        objective: Objective,
        lr: float = 1e-3,
        betas: Sequence[float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        grad_skip_threshold: float | None = None,
        clip_norm: float | None = None,
        fused: bool = True,
        lr_schedule: dict | None = None,
        max_consecutive_skips: int = 100,
    ) -> None:
        super().__init__()
        # The update is written out in training_step (Lightning's manual optimisation): the same
        # Adam step as Lightning's automatic loop, without its per-step closure machinery, which
        # cost about 0.35 ms of a 9 ms step for the 784-400-20 MLP on a CPU.
        self.automatic_optimization = False
        self.model = model
        self.objective = objective
        self.auxiliary = model.auxiliary_part()
        self.lr, self.betas, self.eps, self.weight_decay = lr, tuple(betas), eps, weight_decay
        if clip_norm is not None and clip_norm <= 0:
            raise ConfigError(f"optimizer.clip_norm must be > 0 or null, got {clip_norm}")
        if grad_skip_threshold is not None and grad_skip_threshold <= 0:
            raise ConfigError(f"optimizer.grad_skip_threshold must be > 0 or null, got {grad_skip_threshold}")
        self.grad_skip_threshold = grad_skip_threshold
        self.clip_norm = clip_norm
        self.skipped_updates = 0
        self.consecutive_skips = 0
        self.max_consecutive_skips = max_consecutive_skips
        self.fused = fused
        self.lr_schedule = lr_schedule
        self.schedule = None  # the EpochSchedule, once the trainer's max_epochs is known
        self._first_bad_step: Tensor | None = None  # on the device: -1, or the first non-finite step

    def on_fit_start(self) -> None:
        self.objective.set_total_steps(int(self.trainer.estimated_stepping_batches))

    def _logs_this_step(self) -> bool:
        """Whether Lightning writes step metrics to the loggers after this training step.

        Logging only then keeps every other step free of host copies and device syncs (Lightning
        turns progress-bar values into Python numbers after every step); the loggers see exactly
        the values they saw before, at the same ``log_every_n_steps`` cadence.
        """
        trainer = self._trainer
        if trainer is None or trainer.fast_dev_run:
            return True
        return trainer._logger_connector.should_update_logs  # what Lightning's own callbacks consult

    def _step(self, batch: dict[str, Tensor], stage: str) -> ObjectiveOutput:
        on_step = stage == "train"
        log_now = not on_step or self._logs_this_step()
        out = self.objective(self.model, batch["x"], batch.get("y"), self.global_step, with_metrics=log_now)
        if not log_now:
            return out
        self.log_dict(
            {f"{stage}/{k}": v for k, v in out.metrics.items()},
            on_step=on_step,
            on_epoch=not on_step,
            batch_size=batch["x"].shape[0],
            sync_dist=not on_step,
        )
        if on_step:
            # On the host, so the progress bar reads it without a device sync on the steps in between.
            loss = out.metrics["loss"].to("cpu", non_blocking=False)
            self.log("loss", loss, prog_bar=True, logger=False, batch_size=batch["x"].shape[0])
        else:
            self.log(
                f"{stage}/elbo_epoch",
                out.metrics["elbo"],
                prog_bar=True,
                logger=False,
                on_step=False,
                on_epoch=True,
                batch_size=batch["x"].shape[0],
                sync_dist=True,
            )
        return out

    def _note_nonfinite(self, loss: Tensor) -> None:
        """Remember the first step whose loss is not finite, without a host sync."""
        if self._first_bad_step is None or self._first_bad_step.device != loss.device:
            self._first_bad_step = torch.full((), -1, dtype=torch.long, device=loss.device)
        bad = ~torch.isfinite(loss.detach()) & (self._first_bad_step < 0)
        self._first_bad_step.masked_fill_(bad, self.global_step)

    def check_finite(self, parameters: bool = False) -> None:
        """Raise Diverged if a loss so far was not finite (or, with ``parameters``, a weight is not)."""
        step = -1 if self._first_bad_step is None else int(self._first_bad_step)
        if step >= 0:
            raise self._diverged(f"the training loss became NaN or infinite at step {step}")
        if parameters:
            finite = [torch.isfinite(p).all() for p in self.parameters()]
            if finite and not bool(torch.stack(finite).all()):
                raise self._diverged(f"a model parameter became NaN or infinite by step {self.global_step}")

    def _diverged(self, what: str) -> Diverged:
        return Diverged(
            f"training diverged: {what} (optimizer.lr={self.lr}); lower optimizer.lr or set "
            "optimizer.clip_norm; checkpoints saved before it are intact"
        )

    def on_train_batch_end(self, outputs: object, batch: object, batch_idx: int) -> None:
        if self._logs_this_step():  # the loss is read on the host now anyway
            self.check_finite()

    def on_train_epoch_end(self) -> None:
        self.check_finite(parameters=True)
        # Manual optimisation: Lightning steps no scheduler itself. Its state is in every checkpoint.
        scheduler = self.lr_schedulers()
        if scheduler is not None:
            scheduler.step()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        self.check_finite(parameters=True)  # a diverged state never overwrites a good checkpoint

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        optimizer, auxiliary_optimizer = self._optimizers()
        out = self._step(batch, "train")
        loss = out.loss
        if self.grad_skip_threshold is None:  # with skipping, a non-finite loss skips its update
            self._note_nonfinite(loss)
        optimizer.zero_grad(set_to_none=True)
        if auxiliary_optimizer is None:
            self.manual_backward(loss)
        else:
            self._auxiliary_backward(loss, out, auxiliary_optimizer)
        # Lightning's step runs on_before_optimizer_step (skip and clip) after any loss-scale unscaling.
        optimizer.step()
        if auxiliary_optimizer is not None:
            # The plain torch optimiser: Lightning counts every step of its wrapper as a global step.
            auxiliary_optimizer.optimizer.step()
        return loss.detach()

    def _optimizers(self):
        """(the model's optimiser, the auxiliary part's optimiser or None)."""
        optimizers = self.optimizers()
        if isinstance(optimizers, list):
            return optimizers[0], optimizers[1]
        return optimizers, None

    def _auxiliary_backward(self, loss: Tensor, out: ObjectiveOutput, auxiliary_optimizer) -> None:
        """Gradients of the loss for the model's parameters only, of the auxiliary loss for its part only.

        Both losses may share a forward pass (FactorVAE's discriminator sees the same codes in both), so
        the first backward keeps the graph, and ``inputs`` confines each to its own parameters.
        """
        assert self.auxiliary is not None and out.terms is not None
        auxiliary_loss = out.terms.auxiliary_loss
        if auxiliary_loss is None:
            raise RuntimeError(
                f"{type(self.model).__name__} has an auxiliary part but returned no loss for it"
            )
        auxiliary_optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss, inputs=self._model_parameters(), retain_graph=True)
        auxiliary_loss.backward(inputs=list(self.auxiliary.module.parameters()))

    def _model_parameters(self) -> list[torch.nn.Parameter]:
        """Every parameter except the auxiliary part's: what the model's own optimiser updates."""
        if self.auxiliary is None:
            return list(self.parameters())
        own = {id(p) for p in self.auxiliary.module.parameters()}
        return [p for p in self.parameters() if id(p) not in own]

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Skip or clip the update (see :func:`skip_or_clip`), after any loss-scale unscaling."""
        # The model's own parameters: the auxiliary part's optimiser steps outside Lightning, unclipped.
        norm, skipped = skip_or_clip(self._model_parameters(), self.grad_skip_threshold, self.clip_norm)
        self.skipped_updates += skipped
        self.consecutive_skips = self.consecutive_skips + 1 if skipped else 0
        if self.consecutive_skips >= self.max_consecutive_skips:
            raise self._diverged(
                f"{self.consecutive_skips} updates in a row were skipped up to step {self.global_step} "
                f"(gradient norm {float(norm):.3g} above optimizer.grad_skip_threshold="
                f"{self.grad_skip_threshold} or not finite)"
            )
        if norm is not None and self.grad_skip_threshold is not None and self._logs_this_step():
            self.log_dict(
                {"train/grad_norm": norm.detach(), "train/skipped_updates": float(self.skipped_updates)},
                on_step=True,
                on_epoch=False,
            )

    def configure_optimizers(self):
        # The fused kernel updates all parameters in one pass (same algorithm; on a CPU it makes
        # the 784-400-20 MLP's step about a third faster). Used on the devices that have it.
        from vaezoo.training.lr_schedules import build_schedule

        fused = self.fused and all(p.device.type in ("cpu", "cuda") for p in self.parameters())
        optimizer = torch.optim.Adam(
            self._model_parameters(),
            lr=self.lr,
            betas=self.betas,
            eps=self.eps,
            weight_decay=self.weight_decay,
            fused=fused or None,
        )
        optimizers = [optimizer]
        if self.auxiliary is not None:  # its own Adam (FactorVAE's discriminator: lr 1e-4, betas 0.5, 0.9)
            optimizers.append(
                torch.optim.Adam(
                    self.auxiliary.module.parameters(),
                    lr=self.auxiliary.lr,
                    betas=self.auxiliary.betas,
                    fused=fused or None,
                )
            )
        max_epochs = self.trainer.max_epochs if self._trainer is not None else None
        self.schedule = build_schedule(self.lr_schedule, max_epochs)
        if self.schedule is None:
            return optimizers[0] if len(optimizers) == 1 else optimizers
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self.schedule.factor)
        if len(optimizers) == 1:
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
        return optimizers, [{"scheduler": scheduler, "interval": "epoch"}]
