"""Training as a plain function: data + typed parameters in, trained model + history out.

Kedro's ``train_model`` node calls ``fit`` directly on one device; the multi-device launcher
starts the same function on every rank.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, Timer
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.plugins import TorchCheckpointIO
from lightning.pytorch.plugins.environments import TorchElasticEnvironment
from torch import nn

from reprotrain.models import pad_token_id
from reprotrain.params import FitParams, TrainerParams
from reprotrain.training.budget import FloorEarlyStopping, TrainingPlan, plan_training
from reprotrain.training.data import make_loader
from reprotrain.training.progress import ProgressLog, on_a_terminal
from reprotrain.training.system import TrainingSystem

log = logging.getLogger(__name__)
# lightning 2.6 on torch 2.13 warns about torch's own pytree API on every fit; nothing to act on
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)", category=Warning)

BEST = "best"
LAST = "last"


def resolve_precision(p: TrainerParams) -> str:
    """``auto``: bf16-mixed on a GPU that supports it, else 32-bit."""
    if p.precision != "auto":
        return p.precision
    wants_gpu = p.accelerator in ("auto", "gpu", "cuda")
    if wants_gpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "32-true"


class FileCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO, streaming local checkpoints straight to disk.

    Lightning serialises a whole checkpoint into memory before writing it (``_atomic_save``):
    weights plus optimiser state, ~270 MB for MiniLM with AdamW, on top of the training
    state (benchmarks/RESULTS.md, peak RSS). Local paths are written to a temporary file and
    renamed instead, which is just as atomic; remote URLs keep Lightning's path.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
        """Write ``checkpoint`` to ``path`` atomically (temporary file, then rename)."""
        if "://" in str(path) or storage_options is not None:
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save(checkpoint, tmp)
        os.replace(tmp, path)


def last_checkpoint(checkpoint_dir: str | Path) -> Path | None:
    """The ``last.ckpt`` in ``checkpoint_dir``, if a previous run left one."""
    path = Path(checkpoint_dir) / f"{LAST}.ckpt"
    return path if path.is_file() else None


def check_checkpoint(path: str | Path) -> None:
    """Fail clearly when the checkpoint to resume from cannot be read (truncated, corrupt).

    The file is opened memory-mapped with ``weights_only=True``: nothing is unpickled, and
    the tensors are not read into memory.

    Raises:
        ValueError: Naming the file, with what to do about it.
    """
    try:
        torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for a damaged file
        raise ValueError(
            f"cannot resume from {path}: the checkpoint is truncated or corrupt ({err}); "
            "delete it, or set fit.resume: false to start afresh"
        ) from err


def build_trainer(
    p: FitParams,
    plan: TrainingPlan,
    *,
    callbacks: list[Callback] | None = None,
    world_size: int = 1,
) -> L.Trainer:
    """A Lightning Trainer from the ``fit.trainer`` parameters and the planned budget.

    With ``world_size > 1`` the processes already exist (started by torchrun, srun or
    ``reprotrain.training.launcher``): Lightning joins them through the torchrun environment
    and never starts processes itself, which under ``kedro run`` would re-run the pipeline.

    Raises:
        ValueError: ``devices * num_nodes > 1`` in a single process.
    """
    t = p.trainer
    if t.devices * t.num_nodes != world_size and world_size == 1:
        raise ValueError(
            f"fit.trainer asks for {t.devices * t.num_nodes} processes but this is one process: "
            "multi-device training goes through reprotrain.training.launcher.launch"
        )
    strategy = "ddp" if world_size > 1 and t.strategy == "auto" else t.strategy
    best = ModelCheckpoint(
        dirpath=p.checkpoint_dir,
        filename=BEST,
        monitor=plan.monitor,
        mode=plan.mode,
        save_top_k=1,
        enable_version_counter=False,
    )
    # Lightning's save_last writes last.ckpt only when a new best is saved; resume needs the
    # latest state, so a second, unmonitored callback overwrites last.ckpt at every save.
    last = ModelCheckpoint(
        dirpath=p.checkpoint_dir, filename=LAST, save_top_k=1, enable_version_counter=False
    )
    cbs: list[Callback] = [best, last, *(callbacks or [])]
    terminal = on_a_terminal()
    if not terminal:  # a log file: progress as periodic lines instead of a bar
        cbs.append(ProgressLog())
    es = t.early_stopping
    if es is not None and plan.val_check_interval is not None:
        cbs.append(
            FloorEarlyStopping(
                min_steps=plan.min_steps,
                monitor=plan.monitor,
                mode=plan.mode,
                patience=es.patience,
                min_delta=es.min_delta,
            )
        )
    return L.Trainer(
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=strategy,
        plugins=[FileCheckpointIO(), *([TorchElasticEnvironment()] if world_size > 1 else [])],
        precision=resolve_precision(t),
        max_epochs=plan.max_epochs,
        max_steps=t.max_steps,
        max_time={"minutes": p.budget} if p.budget else None,
        val_check_interval=plan.val_check_interval,
        # an interval in batches counts across epoch boundaries
        check_val_every_n_epoch=None if isinstance(plan.val_check_interval, int) else 1,
        accumulate_grad_batches=t.accumulate_grad_batches,
        gradient_clip_val=t.gradient_clip_val,
        deterministic=t.deterministic,
        log_every_n_steps=t.log_every_n_steps,
        enable_progress_bar=t.enable_progress_bar and terminal,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
        logger=CSVLogger(save_dir=p.log_dir, name="", version=""),
        callbacks=cbs,
        default_root_dir=p.checkpoint_dir,
    )


def stop_reason(trainer: L.Trainer, best: ModelCheckpoint, p: FitParams, plan: TrainingPlan) -> str:
    """Why training ended, after how many steps, and the best validation score."""
    step = trainer.global_step
    stopper = next((c for c in trainer.callbacks if isinstance(c, FloorEarlyStopping)), None)
    timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
    if stopper is not None and stopper.wait_count >= stopper.patience:
        why = f"stopped early ({best.monitor} did not improve for {stopper.patience} validations)"
    elif p.budget and timer is not None and timer.time_remaining() <= 0:
        why = (
            f"the {p.budget:g}-minute budget ran out (a budget stops at a time, not a step: "
            f"to rebuild this exact model, set fit.trainer.max_steps={step} and fit.budget: null)"
        )
    else:
        why = "reached the step or epoch cap"
    score = best.best_model_score
    found = f"; best {best.monitor} {float(score):.4f}" if score is not None else ""
    epochs = step / plan.steps_per_epoch
    return f"{why} after {step} optimiser steps ({epochs:.1f} epochs){found}"


def class_weights(train_set: pd.DataFrame, num_labels: int) -> list[float]:
    """``n / (classes * count)`` per class of the training split (1.0 for an absent class)."""
    counts = train_set["label"].value_counts().reindex(range(num_labels), fill_value=0)
    n, k = int(counts.sum()), num_labels
    return [n / (k * c) if c else 1.0 for c in counts.tolist()]


def read_history(log_dir: str | Path) -> pd.DataFrame:
    """The metrics the CSV logger wrote, one row per logging step."""
    path = Path(log_dir) / "metrics.csv"
    if not path.is_file():
        return pd.DataFrame(columns=["epoch", "step"])
    return pd.read_csv(path)


def load_best_weights(system: TrainingSystem, checkpoint: ModelCheckpoint) -> None:
    """Load the best checkpoint's weights into ``system`` (safe, weights-only load)."""
    best = checkpoint.best_model_path
    if best and Path(best).is_file():
        # mmap: only the weights are read into memory, not the optimiser state beside them
        state = torch.load(best, map_location="cpu", weights_only=True, mmap=True)["state_dict"]
        system.load_state_dict(state)
        log.info(
            "loaded best weights from %s (%s=%.4f)",
            best,
            checkpoint.monitor,
            float(checkpoint.best_model_score or float("nan")),
        )


def keep_best_checkpoint(checkpoint: ModelCheckpoint, target: str | Path) -> None:
    """Save the best checkpoint to ``target`` (atomically), apart from the resume state.

    Lightning stores absolute paths in its callbacks' state; they are made relative to the
    working directory, and the file is written through a handle (torch names the archive
    after the file otherwise), so the same training gives the same bytes in any clone.
    """
    best = checkpoint.best_model_path
    if not best or not Path(best).is_file():
        log.warning("no best checkpoint to copy to %s", target)
        return
    state = torch.load(best, map_location="cpu", weights_only=True, mmap=True)
    root = str(Path.cwd().resolve()) + os.sep

    def relative(value: Any) -> Any:
        if isinstance(value, str) and value.startswith(root):
            return value[len(root) :]
        if isinstance(value, dict):  # e.g. best_k_models, keyed by path
            return {relative(k): relative(v) for k, v in value.items()}
        return value

    state["callbacks"] = {k: relative(v) for k, v in state.get("callbacks", {}).items()}
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    with open(tmp, "wb") as f:
        torch.save(state, f)
    os.replace(tmp, target)


def fit(
    model: nn.Module,
    train_set: pd.DataFrame,
    validation_set: pd.DataFrame | None,
    parameters: FitParams,
    *,
    rank: int = 0,
    world_size: int = 1,
    callbacks: list[Callback] | None = None,
) -> tuple[nn.Module, pd.DataFrame]:
    """Train ``model`` and return it with its best weights, and the training history.

    Args:
        model: Any model from ``reprotrain.models``.
        train_set: Converted training rows.
        validation_set: Converted validation rows (or ``None``/empty: no validation).
        parameters: The validated ``fit`` parameters.
        rank: This process's rank (data parallel training).
        world_size: The number of processes; the per-device batch is the global one over it.
        callbacks: Extra Lightning callbacks (tests use them to stop or inspect a run).
    """
    p = parameters
    if p.trainer.num_threads:
        torch.set_num_threads(p.trainer.num_threads)
    if p.trainer.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    L.seed_everything(p.seed, workers=True, verbose=False)
    if p.data.train_subsample and p.data.train_subsample < len(train_set):
        train_set = train_set.sample(n=p.data.train_subsample, random_state=p.seed)
    if p.data.batch_size % world_size:
        raise ValueError(
            f"fit.data.batch_size={p.data.batch_size} is not divisible by the "
            f"{world_size} devices; choose a global batch size that is"
        )
    loader_kw: dict[str, Any] = {
        "pad_token_id": pad_token_id(model),
        "regression": p.task == "regression",
        "num_workers": p.data.num_workers,
        "rank": rank,
        "world_size": world_size,
    }
    train_loader = make_loader(
        train_set,
        p.data.batch_size // world_size,
        train=True,
        group_by_length=p.data.group_by_length,
        seed=p.seed,
        **loader_kw,
    )
    has_val = validation_set is not None and len(validation_set) > 0
    val_loader = (
        make_loader(validation_set, p.data.eval_batch_size, train=False, **loader_kw)
        if has_val
        else None
    )
    model.train()  # from_pretrained returns eval mode; Lightning keeps modes as it finds them
    num_labels = len(p.labels or [None])
    system = TrainingSystem(
        model,
        task=p.task,
        num_labels=num_labels,
        optimizer=p.optimizer.model_dump(),
        schedule=p.schedule.model_dump(),
        class_weights=class_weights(train_set, num_labels) if p.class_weights else None,
    )
    plan = plan_training(
        p,
        batches_per_epoch=len(train_loader),
        n_validation=len(validation_set) if has_val else 0,
        batch_size=p.data.batch_size,
    )
    if rank == 0:
        log.info("fit: %s", plan.describe())
    trainer = build_trainer(p, plan, callbacks=callbacks, world_size=world_size)
    resume_from = last_checkpoint(p.checkpoint_dir) if p.resume else None
    if resume_from is not None:
        check_checkpoint(resume_from)
    if p.resume and resume_from is None:
        log.warning(
            "fit.resume is set but %s holds no last.ckpt: starting afresh", p.checkpoint_dir
        )
    elif not p.resume and rank == 0:
        # A fresh run must not inherit a stale best.ckpt from an earlier run.
        for name in (BEST, LAST):
            Path(p.checkpoint_dir, f"{name}.ckpt").unlink(missing_ok=True)
        for name in ("metrics.csv", "hparams.yaml"):  # the CSV logger's files
            Path(p.log_dir, name).unlink(missing_ok=True)
    trainer.fit(system, train_loader, val_loader, ckpt_path=resume_from, weights_only=True)
    best = next(c for c in trainer.callbacks if isinstance(c, ModelCheckpoint) and c.monitor)
    if rank == 0:
        log.info("fit: %s", stop_reason(trainer, best, p, plan))
    if p.trainer.strategy != "fsdp":  # FSDP shards the model: rank 0 reloads the checkpoint
        load_best_weights(system, best)
    if p.best_checkpoint and rank == 0:
        keep_best_checkpoint(best, p.best_checkpoint)
    return system.model, read_history(p.log_dir)
