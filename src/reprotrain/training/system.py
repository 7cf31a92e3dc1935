"""The LightningModule "system": any model in, loss / optimiser / schedule / metrics around it."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
import torchmetrics
from torch import nn

from reprotrain.params import OptimizerParams, ScheduleParams


class TrainingDivergedError(FloatingPointError):
    """The training loss became infinite or NaN: the weights are no longer usable."""


def split_decay_groups(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(weights that are regularised, parameters that are not).

    Biases, norms and other 1-d parameters get neither weight decay nor L1.
    """
    decay, plain = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            no_decay = param.ndim < 2 or "norm" in name.lower() or name.endswith(".bias")
            (plain if no_decay else decay).append(param)
    return decay, plain


def warmup_then_decay(warmup: int, total: int, decay: str):
    """LR multiplier: linear warmup over ``warmup`` steps, then linear/cosine to 0 or constant."""

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if decay == "constant" or total <= warmup:
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        if decay == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return max(0.0, 1.0 - progress)

    return factor


def _metrics(task: str, num_labels: int, prefix: str) -> torchmetrics.MetricCollection:
    if task == "regression":
        metrics = {"mse": torchmetrics.MeanSquaredError(), "mae": torchmetrics.MeanAbsoluteError()}
    else:
        kw = {"task": "multiclass", "num_classes": num_labels}
        metrics = {
            "acc": torchmetrics.Accuracy(**kw),
            "f1": torchmetrics.F1Score(average="macro", **kw),
        }
    return torchmetrics.MetricCollection(metrics, prefix=prefix)


class TrainingSystem(L.LightningModule):
    """Trains any classifier or regressor that maps a batch dict to logits.

    The model receives the batch without ``labels`` (``input_ids``/``attention_mask`` or
    ``features``) and returns logits, or an object with a ``logits`` attribute.
    """

    def __init__(
        self,
        model: nn.Module,
        task: str = "classification",
        num_labels: int = 2,
        optimizer: dict[str, Any] | None = None,
        schedule: dict[str, Any] | None = None,
        class_weights: list[float] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        self.task = task
        self.opt = OptimizerParams(**(optimizer or {}))
        self.sched = ScheduleParams(**(schedule or {}))
        weight = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.loss_fn = nn.MSELoss() if task == "regression" else nn.CrossEntropyLoss(weight)
        self.train_metrics = _metrics(task, num_labels, "train/")
        self.val_metrics = _metrics(task, num_labels, "val/")
        self.last_loss: torch.Tensor | None = None  # the latest training step's, detached
        self._train_outputs: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._loss_every_step = True

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits (or regression outputs, squeezed to one value per row)."""
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        out = self.model(**inputs)
        logits = getattr(out, "logits", out)
        return logits.squeeze(-1) if self.task == "regression" else logits

    def l1_penalty(self) -> torch.Tensor:
        """Sum of absolute values of the regularised weights."""
        decay, _ = split_decay_groups(self.model)
        return torch.stack([p.abs().sum() for p in decay]).sum()

    def _step(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self(batch)
        predicted, target = logits.float(), batch["labels"]
        scale = getattr(self.model, "target_std", None)
        if self.task == "regression" and scale is not None:
            # MSE on the standardised target: the loss (and the L1 term beside it) keeps one
            # scale whatever the target's units; metrics stay in those units.
            predicted, target = predicted / scale, target / scale
        return self.loss_fn(predicted, target), logits

    def _targets(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.float() if self.task == "regression" else logits.argmax(-1)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Loss (+ L1) of one batch; keeps it for ``train/loss`` and the outputs for the metrics.

        Per-step framework work is kept off the step where nothing reads it (each costs about
        0.3 ms, as much as a small model's step): the train metrics are updated once an epoch
        and before a checkpoint, from the kept outputs (the same counts and sums as per batch),
        and ``train/loss`` is logged only where it is read (``on_train_batch_end``).
        """
        loss, logits = self._step(batch)
        if self.opt.l1 > 0:
            loss = loss + self.opt.l1 * self.l1_penalty()
        if not torch.isfinite(loss):  # before backward: nothing of this step is applied
            self._diverged(float(loss.detach()))
        self._train_outputs.append((self._targets(logits.detach()), batch["labels"]))
        self.last_loss = loss.detach()
        return loss

    def on_train_start(self) -> None:
        """Restore a mid-epoch checkpoint's RNG state; see whether ``train/loss`` is read always.

        The RNG state waits until now, when the loader iterator exists (``on_save_checkpoint``).
        A progress bar reads ``train/loss`` at every step, and so does a callback that monitors
        it while validations run (they may come after any step).
        """
        state = getattr(self, "_rng_at_train_start", None)
        if state is not None:
            torch.set_rng_state(state)
            self._rng_at_train_start = None
        trainer = self.trainer
        monitored = any(getattr(c, "monitor", None) == "train/loss" for c in trainer.callbacks)
        self._loss_every_step = trainer.progress_bar_callback is not None or (
            monitored and trainer.enable_validation
        )

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Log ``train/loss`` where it is read, so the history, checkpoints and stops are those
        of logging it at every step.

        The loggers write it every ``log_every_n_steps`` optimiser steps and when training is
        stopped (Lightning's ``should_update_logs``); epoch-end checkpoints and early stopping
        read it when an epoch or the run ends; else see ``on_train_start``.
        """
        trainer = self.trainer
        every = trainer.log_every_n_steps
        if (
            self._loss_every_step
            or trainer.should_stop
            or trainer.fast_dev_run
            or (every and trainer.global_step % every == 0)
            or trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
            or 0 <= trainer.max_steps <= trainer.global_step
        ):
            self.log("train/loss", self.last_loss, prog_bar=True, batch_size=len(batch["labels"]))

    def _update_train_metrics(self) -> None:
        if self._train_outputs:
            predicted, target = (torch.cat(t) for t in zip(*self._train_outputs, strict=True))
            self._train_outputs.clear()
            self.train_metrics.update(predicted, target)

    def on_train_epoch_end(self) -> None:
        """Log the epoch's train metrics (computed, then reset, by Lightning)."""
        self._update_train_metrics()
        self.log_dict(self.train_metrics, on_step=False, on_epoch=True)

    def _diverged(self, loss: float) -> None:
        clip = self.trainer.gradient_clip_val
        raise TrainingDivergedError(
            f"training diverged: the training loss is {loss} at optimiser step "
            f"{self.trainer.global_step} (epoch {self.trainer.current_epoch + 1}); training "
            f"stopped and no trained model was saved. Lower fit.optimizer.lr (it is "
            f"{self.opt.lr:g}), "
            + (
                f"clip gradients harder (fit.trainer.gradient_clip_val is {clip:g}), "
                if clip
                else "enable gradient clipping (fit.trainer.gradient_clip_val: 1.0), "
            )
            + "or check the training data for extreme or missing values."
        )

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Logs ``val/loss`` and the validation metrics."""
        loss, logits = self._step(batch)
        self.val_metrics.update(self._targets(logits), batch["labels"])
        n = len(batch["labels"])
        self.log("val/loss", loss, prog_bar=True, sync_dist=True, batch_size=n)
        self.log_dict(self.val_metrics, prog_bar=True, batch_size=n)

    def configure_optimizers(self) -> dict[str, Any]:
        """The optimiser (L2 as weight decay on weights only) and the warmup-decay schedule."""
        decay, plain = split_decay_groups(self.model)
        groups = [
            {"params": decay, "weight_decay": self.opt.weight_decay},
            {"params": plain, "weight_decay": 0.0},
        ]
        if self.opt.name == "sgd":
            optimizer = torch.optim.SGD(groups, lr=self.opt.lr, momentum=self.opt.momentum)
        elif self.opt.name == "adam":
            # Adam's weight_decay adds L2 to the gradient (coupled); AdamW decouples it.
            optimizer = torch.optim.Adam(groups, lr=self.opt.lr)
        else:
            # The fused kernel updates each parameter in one pass, without foreach's temporary
            # copies of all parameters (benchmarks/RESULTS.md: lower peak RSS). Not under
            # 16-mixed: it unscales inside step(), which Lightning's gradient clipping forbids.
            fused = str(self.trainer.precision) != "16-mixed" and all(
                p.device.type in ("cpu", "cuda") for g in groups for p in g["params"]
            )
            optimizer = torch.optim.AdamW(groups, lr=self.opt.lr, fused=fused or None)
        total = int(self.trainer.estimated_stepping_batches)
        factor = warmup_then_decay(self.sched.warmup_steps, total, self.sched.decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def optimizer_step(
        self,
        epoch: int,
        batch_idx: int,
        optimizer: Any,
        optimizer_closure: Callable[[], Any] | None = None,
    ) -> None:
        """Step, then free the gradients at once (``set_to_none``).

        Lightning zeroes gradients inside the next step's closure, after the forward pass, so
        the last step's gradients (one more copy of the weights) would sit beside the next
        forward pass's activations and count towards peak memory. Numerics are unchanged: the
        next backward finds no gradients either way. Lightning calls this hook only when an
        accumulation window closes, unless the strategy accumulates itself (DeepSpeed), which
        is left alone.
        """
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        if not self.trainer.strategy.handles_gradient_accumulation:
            optimizer.zero_grad(set_to_none=True)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the torch RNG state, so a resumed run draws what an uninterrupted one would.

        Making a loader iterator draws from it. After an end-of-epoch checkpoint, the
        uninterrupted run makes the next epoch's iterator after the save, as the resumed run
        does after the restore; within an epoch (a mid-epoch checkpoint), the uninterrupted
        run's iterator already exists, so the state is restored after the resumed run has
        made its own (at ``on_train_start``).
        """
        checkpoint["torch_rng_state"] = torch.get_rng_state()
        self._update_train_metrics()
        trainer = self._trainer
        if trainer is not None and trainer.training:
            done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
            checkpoint["mid_epoch"] = 0 < done < trainer.num_training_batches
        # the epoch's training metrics so far (torchmetrics keeps them out of state_dict)
        checkpoint["train_metric_states"] = {
            name: {**metric.metric_state, "_update_count": metric._update_count}
            for name, metric in self.train_metrics.items(keep_base=True)
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the torch RNG state saved with the checkpoint (see ``on_save_checkpoint``)."""
        for name, state in checkpoint.get("train_metric_states", {}).items():
            metric = self.train_metrics[name]
            for key, value in state.items():
                setattr(metric, key, value)
        if "torch_rng_state" not in checkpoint:
            return
        if checkpoint.get("mid_epoch"):
            self._rng_at_train_start = checkpoint["torch_rng_state"]
        else:
            torch.set_rng_state(checkpoint["torch_rng_state"])
