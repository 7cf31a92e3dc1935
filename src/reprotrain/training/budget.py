"""The training budget: how long to train, how often to validate, what to watch, when to stop.

The defaults must train to convergence on a few hundred rows and on a few hundred thousand
without the user touching them, so the budget is planned from the data:

- a floor of ``trainer.min_steps`` optimiser steps: the epoch cap is raised until the floor
  fits, so a tiny data set gets enough updates (and early stopping waits for the floor);
- a cap of ``trainer.max_epochs`` epochs (and ``trainer.max_steps`` steps, if set);
- validation every epoch on small data, and within the epoch on large data, as often as
  keeps it at about a tenth of the training time (``val_check_interval: auto``);
- early stopping on the validation metric, and the best checkpoint on the same metric;
- optionally ``fit.budget`` minutes of wall-clock time (Lightning's ``max_time``), a hard stop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason

from reprotrain.params import FitParams, ParameterError

# A validation row costs about a third of a training row (forward pass only); validating
# every interval of at least n_val / (VAL_SHARE * 3 * batch) batches keeps validation at
# about VAL_SHARE of the training time. Each new best also writes a checkpoint, so never
# more often than every MIN_VAL_INTERVAL batches (or once an epoch, if that is shorter).
VAL_SHARE = 0.1
MIN_VAL_INTERVAL = 50
# Validation rows the smallest class needs for macro-F1 to pick the checkpoint (monitor_of).
F1_MIN_CLASS_ROWS = 30


@dataclass(frozen=True)
class TrainingPlan:
    """What the Trainer is told: the numbers planned from the data and the parameters."""

    batches_per_epoch: int
    steps_per_epoch: int
    max_epochs: int
    min_steps: int
    val_check_interval: int | float | None
    monitor: str
    mode: str

    def describe(self) -> str:
        """One log line: the plan in the user's terms."""
        val = (
            "no validation"
            if self.val_check_interval is None
            else f"validation every {self.val_check_interval} batches"
            if isinstance(self.val_check_interval, int)
            else f"validation every {self.val_check_interval:g} epoch"
        )
        return (
            f"{self.steps_per_epoch} optimiser steps per epoch; at least {self.min_steps} "
            f"steps, at most {self.max_epochs} epochs; {val}; best model by {self.monitor} "
            f"({self.mode})"
        )


def monitor_of(
    p: FitParams, has_validation: bool, smallest_class: int | None = None
) -> tuple[str, str]:
    """The metric (and ``min``/``max``) that picks the best checkpoint and stops early.

    ``auto``: macro-F1 (``val/f1``), the metric the model is judged on, when the smallest class
    has at least :data:`F1_MIN_CLASS_ROWS` validation rows (``smallest_class``; ``None`` for
    regression); otherwise the validation loss. On a small validation split, F1 moves in coarse,
    noisy steps (one row of 40 is 2.5 points) and picks an early checkpoint by chance; the loss
    moves smoothly with every row's confidence. On a larger one the loss rewards confidence
    more than correct decisions: a few confidently wrong rows raise it while F1 improves. The
    training loss when there is no validation split.
    """
    es = p.trainer.early_stopping
    if not has_validation:
        return "train/loss", "min"
    if es is not None and es.monitor != "auto":
        mode = es.mode if es.mode != "auto" else ("min" if es.monitor.endswith("loss") else "max")
        return es.monitor, mode
    if smallest_class is not None and smallest_class >= F1_MIN_CLASS_ROWS:
        return "val/f1", "max"
    return "val/loss", "min"


def plan_training(
    p: FitParams,
    *,
    batches_per_epoch: int,
    n_validation: int,
    batch_size: int,
    smallest_class: int | None = None,
) -> TrainingPlan:
    """Plan the run from the size of the data (per device) and the ``fit`` parameters.

    ``smallest_class``: the validation rows of the rarest class (classification only).
    """
    t = p.trainer
    batches = max(1, batches_per_epoch)
    steps = max(1, math.ceil(batches / t.accumulate_grad_batches))
    max_epochs = max(t.max_epochs, math.ceil(t.min_steps / steps))
    has_val = n_validation > 0
    if not has_val:
        interval: int | float | None = None
    elif t.val_check_interval == "auto":
        cheap_enough = math.ceil(n_validation / (VAL_SHARE * 3 * batch_size))
        interval = min(batches, max(cheap_enough, MIN_VAL_INTERVAL))
    elif isinstance(t.val_check_interval, float) and t.val_check_interval <= 1.0:
        interval = t.val_check_interval
    else:
        interval = int(t.val_check_interval)
        if interval > batches:
            raise ParameterError(
                f"fit.trainer.val_check_interval is {interval} batches, but an epoch has only "
                f"{batches} batches (per device) here: give at most {batches}, a fraction of an "
                "epoch (0 < x <= 1), or 'auto'"
            )
    if isinstance(interval, int) and interval >= batches:
        interval = 1.0  # once an epoch, at its end: Lightning's own schedule
    monitor, mode = monitor_of(p, has_val, smallest_class)
    return TrainingPlan(batches, steps, max_epochs, t.min_steps, interval, monitor, mode)


class FloorEarlyStopping(EarlyStopping):
    """Lightning's EarlyStopping that cannot stop the run before ``min_steps`` optimiser steps.

    It tracks the best score from the first validation; if patience runs out before the floor,
    the run stops at the first validation after it (unless that one improves). A non-finite
    metric (a diverged model) stops the run at once, floor or not. Lightning's own
    ``Trainer(min_steps=...)`` would also keep a wall-clock budget (``max_time``) from stopping
    the run; this keeps the budget a hard stop.
    """

    def __init__(self, *, min_steps: int = 0, **kwargs) -> None:
        super().__init__(check_on_train_epoch_end=False, **kwargs)
        self.min_steps = min_steps

    def _run_early_stopping_check(self, trainer) -> None:
        before = trainer.should_stop  # another callback's stop (the budget's) stands
        super()._run_early_stopping_check(trainer)
        diverged = self.stopping_reason == EarlyStoppingReason.NON_FINITE_METRIC
        if trainer.global_step < self.min_steps and not diverged:
            trainer.should_stop = before
