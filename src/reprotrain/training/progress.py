"""Training progress as log lines, for runs whose output goes to a file (CI, cluster jobs).

Lightning's progress bar draws only on a terminal; a job writing to a log file would see
nothing between "Loading train_dataloader" and the end of training. This callback logs one
line every ``every_s`` seconds (and at each validation) instead.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from lightning.pytorch.callbacks import Callback

log = logging.getLogger(__name__)

EVERY_S = 30.0  # seconds between two progress lines


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressLog(Callback):
    """Logs ``step, epoch, loss, samples/s`` and the time left at the step cap, periodically."""

    def __init__(self, every_s: float | None = None) -> None:
        self.every_s = EVERY_S if every_s is None else every_s
        self._start = self._last = 0.0
        self._samples = 0

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        """Start the clock."""
        self._start = self._last = time.monotonic()
        self._samples = 0

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Count samples; log a line when ``every_s`` seconds have passed since the last."""
        self._samples += len(batch["labels"]) if isinstance(batch, dict) else 0
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            self._log(trainer, pl_module, now)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        """Log the validation metrics as they are computed."""
        if trainer.sanity_checking:
            return
        scores = {
            k: float(v)
            for k, v in trainer.callback_metrics.items()
            if k.startswith("val/") and v.numel() == 1
        }
        shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(scores.items()))
        log.info("validation at step %d: %s", trainer.global_step, shown)

    def _log(self, trainer: Any, pl_module: Any, now: float) -> None:
        elapsed = now - self._start
        step, cap = trainer.global_step, trainer.estimated_stepping_batches
        rate = self._samples / elapsed if elapsed else 0.0
        loss = getattr(pl_module, "last_loss", None)  # TrainingSystem logs it only where read
        left = (
            f", at most {_clock(elapsed / step * (cap - step))} left at the step cap"
            if step and cap != float("inf")
            else ""
        )
        log.info(
            "step %d of at most %d (epoch %d): train/loss %s, %.1f samples/s%s",
            step,
            cap,
            trainer.current_epoch + 1,
            "n/a" if loss is None else f"{float(loss):.4f}",
            rate,
            left,
        )
