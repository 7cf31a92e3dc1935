"""Training as a plain function: data + typed parameters in, trained model + history out.

Kedro's ``train_model`` node calls ``fit`` directly on one device; the multi-device launcher
starts the same function on every rank.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, Timer, WeightAveraging
from lightning.pytorch.loggers import CSVLogger, Logger, MLFlowLogger, TensorBoardLogger
from lightning.pytorch.plugins import TorchCheckpointIO
from lightning.pytorch.plugins.environments import TorchElasticEnvironment
from torch import nn
from torch.optim.swa_utils import get_ema_avg_fn
from torch.utils.data import DataLoader

from reprotrain.atomic import writing
from reprotrain.models import pad_token_id
from reprotrain.params import FitParams, ParameterError, TaskParams, TrainerParams
from reprotrain.training.budget import FloorEarlyStopping, TrainingPlan, plan_training
from reprotrain.training.data import ResumableLoader, make_loader
from reprotrain.training.progress import ProgressLog
from reprotrain.training.system import TrainingSystem

log = logging.getLogger(__name__)
# lightning 2.6 on torch 2.13 warns about torch's own pytree API on every fit; nothing to act on
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)", category=Warning)
# The previous run's checkpoints and history stay until this run has started (FreshStart,
# carry_history): a non-empty folder is expected, not a mistake to warn about.
warnings.filterwarnings(
    "ignore", message=r"(?s)Experiment logs directory .* exists and is not empty"
)
warnings.filterwarnings("ignore", message=r"(?s)Checkpoint directory .* exists and is not empty")
# A small table has fewer batches an epoch than log_every_n_steps: the interval counts steps
# across epochs, so the history is still written at that interval.
warnings.filterwarnings(
    "ignore", message=r"(?s)The number of training batches .* is smaller than the logging interval"
)

BEST = "best"
LAST = "last"
# The CSV logger's file, and the rows of earlier runs that a resumed run continues
METRICS = "metrics.csv"
EARLIER = "metrics_before_resume.csv"


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
        with writing(path) as tmp:
            torch.save(checkpoint, tmp)


def check_checkpoint(path: str | Path) -> dict[str, Any]:
    """Fail clearly when the checkpoint to resume from cannot be read (truncated, corrupt).

    The file is opened memory-mapped with ``weights_only=True``: nothing is unpickled but
    tensors and plain containers (a booby-trapped pickle is refused), and the tensors are not
    read into memory. Anything that is not a Lightning checkpoint (no ``state_dict``) is
    refused too.

    Returns:
        The checkpoint (tensors memory-mapped).

    Raises:
        ValueError: Naming the file, with what to do about it.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for a damaged file
        raise ValueError(
            f"cannot resume from {path}: the checkpoint is truncated or corrupt ({err}); "
            "delete it, or set fit.resume: false to start afresh"
        ) from err
    if not isinstance(state, dict) or not isinstance(state.get("state_dict"), dict):
        raise ValueError(
            f"cannot resume from {path}: it is not a Lightning checkpoint (no 'state_dict'); "
            "delete it, or set fit.resume: false to start afresh"
        )
    return state


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
    checkpoint = partial(
        ModelCheckpoint, dirpath=p.checkpoint_dir, save_top_k=1, enable_version_counter=False
    )
    # Lightning's save_last writes last.ckpt only when a new best is saved; resume needs the
    # latest state, so a second, unmonitored callback overwrites last.ckpt at every save.
    cbs: list[Callback] = [
        checkpoint(filename=BEST, monitor=plan.monitor, mode=plan.mode),
        checkpoint(filename=LAST),
    ]
    if t.checkpoint_every_minutes or t.checkpoint_every_n_steps:
        # resume state within long epochs too (a crash loses at most one interval)
        every = t.checkpoint_every_minutes
        cbs.append(
            checkpoint(
                filename=LAST,
                every_n_train_steps=t.checkpoint_every_n_steps,
                train_time_interval=timedelta(minutes=every) if every else None,
            )
        )
    cbs += [FreshStart(p), EpochOrder()]
    if p.ema is not None:
        cbs.append(WeightAveraging(avg_fn=get_ema_avg_fn(p.ema)))
    cbs.extend(callbacks or [])
    terminal = sys.stdout.isatty()  # where the progress bar draws
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
        logger=make_loggers(p),
        callbacks=cbs,
        default_root_dir=p.checkpoint_dir,
    )


def make_loggers(p: FitParams) -> list[Logger]:
    """The CSV log, then the loggers ``fit.trainer.loggers`` adds, all writing under log_dir.

    Every CSV row is written as it is logged: a killed run's history is on disk up to the
    moment it died, and a resumed run continues it (``carry_history``).

    Raises:
        ParameterError: A listed logger's package is not installed.
    """
    loggers: list[Logger] = [
        CSVLogger(save_dir=p.log_dir, name="", version="", flush_logs_every_n_steps=1)
    ]
    for name in p.trainer.loggers:
        try:
            if name == "tensorboard":
                loggers.append(
                    TensorBoardLogger(Path(p.log_dir) / "tensorboard", name="", version="")
                )
            else:
                uri = (Path(p.log_dir) / "mlruns").resolve().as_uri()
                loggers.append(MLFlowLogger(experiment_name="reprotrain", tracking_uri=uri))
        except ModuleNotFoundError:
            package = "tensorboard (or tensorboardX)" if name == "tensorboard" else "mlflow"
            raise ParameterError(
                f"fit.trainer.loggers lists {name!r}, which needs {package}: install it "
                f"(`pip install {name}`) or remove {name!r} from the list"
            ) from None
    return loggers


class EpochOrder(Callback):
    """A new (seeded) order of the training batches for each epoch.

    Lightning calls ``set_epoch`` on a loader's ``sampler`` and ``batch_sampler.sampler``
    only, not on a batch sampler itself (``lightning.fabric.utilities.data._set_sampler_epoch``),
    so :class:`~reprotrain.training.data.GroupedBatchSampler` would repeat epoch 0's order.
    """

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Tell the training batch sampler which epoch starts (before its first batch)."""
        sampler = getattr(trainer.train_dataloader, "batch_sampler", None)
        if callable(getattr(sampler, "set_epoch", None)):
            sampler.set_epoch(trainer.current_epoch)


class FreshStart(Callback):
    """On a fresh run, remove the previous run's checkpoints once training has started.

    Not earlier: a setting that Lightning rejects while it sets up must leave the previous
    run's checkpoints (and its resume state) as they were.
    """

    def __init__(self, p: FitParams) -> None:
        self.files = (
            []
            if p.resume
            else [Path(p.checkpoint_dir, f"{n}.ckpt") for n in (BEST, LAST)]
            + [Path(p.log_dir, EARLIER)]
        )

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Delete the previous run's ``best.ckpt``, ``last.ckpt`` and carried history."""
        if trainer.is_global_zero:
            for path in self.files:
                path.unlink(missing_ok=True)


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


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file() or path.stat().st_size == 0:
        return pd.DataFrame(columns=["epoch", "step"])
    return pd.read_csv(path)


def _merge_rows(earlier: pd.DataFrame, later: pd.DataFrame) -> pd.DataFrame:
    """``earlier`` then ``later``, less the rows of ``earlier`` that ``later`` logs again.

    A row is identified by its step and which metrics it holds (a step can have a training
    row, a validation row and an end-of-epoch row).
    """

    def keys(frame: pd.DataFrame) -> pd.Series:
        present = frame.drop(columns=["epoch", "step"], errors="ignore").notna()
        return (
            frame["step"].astype(str)
            + ":"
            + present.apply(lambda row: ",".join(row.index[row]), axis=1)
        )

    if earlier.empty:
        return later.reset_index(drop=True)
    if later.empty:
        return earlier.reset_index(drop=True)
    again = keys(earlier).isin(set(keys(later)))
    return pd.concat([earlier[~again], later], ignore_index=True)


def read_history(log_dir: str | Path) -> pd.DataFrame:
    """The metrics the CSV logger wrote, one row per logging step (earlier runs' first)."""
    rows = _merge_rows(_read_csv(Path(log_dir) / EARLIER), _read_csv(Path(log_dir) / METRICS))
    if not rows.empty:  # the columns in the CSV logger's order (sorted), whatever was merged
        rows = rows[sorted(rows.columns)].astype({"step": "int64"})
    return rows


def carry_history(log_dir: str | Path, step: int) -> None:
    """Before resuming at ``step``: keep the history logged up to it, for the resumed run.

    The CSV logger starts its file afresh; the rows of the interrupted run(s) up to the
    checkpoint's step are kept beside it (the steps after it are trained, and logged, again).
    """
    rows = read_history(log_dir)
    kept = rows[rows["step"] <= step] if not rows.empty else rows
    with writing(Path(log_dir) / EARLIER) as tmp:
        kept.to_csv(tmp, index=False)
    Path(log_dir, METRICS).unlink(missing_ok=True)


def load_best_weights(system: TrainingSystem, checkpoint: ModelCheckpoint) -> None:
    """Load the best checkpoint's weights into ``system`` (safe, weights-only load).

    A best checkpoint saved after the last optimiser step holds the weights already in
    memory: it is not read again (reading it would add a copy of the weights to peak memory).
    """
    best = checkpoint.best_model_path
    if best and Path(best).is_file():
        # mmap: only the weights are read into memory, not the optimiser state beside them
        try:
            state = torch.load(best, map_location="cpu", weights_only=True, mmap=True)
            final = state.get("global_step") == system.trainer.global_step
            if not final:
                system.load_state_dict(state["state_dict"])
        except Exception as err:  # noqa: BLE001 - a damaged or foreign file, named below
            raise ValueError(
                f"cannot load the best checkpoint {best}: it is not a readable checkpoint of "
                f"this model ({type(err).__name__}: {err}); something else wrote it during "
                "training. Delete it and train afresh (fit.resume: false)"
            ) from err
        score = float(checkpoint.best_model_score or float("nan"))
        if final:
            log.info("best weights are the last step's (%s=%.4f)", checkpoint.monitor, score)
        else:
            log.info("loaded best weights from %s (%s=%.4f)", best, checkpoint.monitor, score)


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
    with writing(target) as tmp, open(tmp, "wb") as f:
        torch.save(state, f)


def seed_and_subsample(
    p: FitParams, seed: int, train_set: pd.DataFrame, world_size: int
) -> pd.DataFrame:
    """Threads, determinism and seeds as configured; the training rows (subsampled if asked).

    Raises:
        ValueError: The global batch size does not split evenly over ``world_size`` devices.
    """
    if p.trainer.num_threads:
        torch.set_num_threads(p.trainer.num_threads)
    if p.trainer.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        # Lightning turns on torch.use_deterministic_algorithms, whose default also fills
        # every new uninitialised tensor with NaN: a debugging aid that costs ~2.5 % of a CPU
        # training step (benchmarks/RESULTS.md, row 1). No kernel reads memory it has not
        # written, so the results are as deterministic without it (torch.utils.deterministic).
        torch.utils.deterministic.fill_uninitialized_memory = False
    L.seed_everything(seed, workers=True, verbose=False)
    if p.data.train_subsample and p.data.train_subsample < len(train_set):
        train_set = train_set.sample(n=p.data.train_subsample, random_state=seed)
    if p.data.batch_size % world_size:
        raise ValueError(
            f"fit.data.batch_size={p.data.batch_size} is not divisible by the "
            f"{world_size} devices; choose a global batch size that is"
        )
    return train_set


def smallest_class(validation_set: pd.DataFrame, task: TaskParams) -> int | None:
    """The validation rows of the rarest class (0 if one has none); ``None`` for regression."""
    if task.type != "classification":
        return None
    counts = np.bincount(validation_set["label"].to_numpy(), minlength=len(task.labels))
    return int(counts.min())


def make_loaders(
    model: nn.Module,
    train_set: pd.DataFrame,
    validation_set: pd.DataFrame | None,
    p: FitParams,
    task: TaskParams,
    *,
    rank: int,
    world_size: int,
) -> tuple[DataLoader, DataLoader | None]:
    """The training loader (seeded, resumable) and the validation loader (``None``: no rows)."""
    loader_kw: dict[str, Any] = {
        "pad_token_id": pad_token_id(model),
        "regression": task.type == "regression",
        "num_workers": p.data.num_workers,
        "rank": rank,
        "world_size": world_size,
    }
    train_loader = make_loader(
        train_set,
        p.data.batch_size // world_size,
        train=True,
        group_by_length=p.data.group_by_length,
        seed=task.seed,
        **loader_kw,
    )
    if validation_set is None or len(validation_set) == 0:
        return train_loader, None
    return train_loader, make_loader(
        validation_set, p.data.eval_batch_size, train=False, **loader_kw
    )


def prepare_resume(
    trainer: L.Trainer, train_loader: ResumableLoader, p: FitParams, rank: int
) -> Path | None:
    """Wire the loader to Lightning's batch count; the checkpoint to resume from, if any.

    A resumed run checks its checkpoints now (not when training ends), skips the batches of
    the interrupted epoch already trained on, and carries the earlier history over.
    """
    # the batches of this epoch trained on, as Lightning counts them (saved with each
    # checkpoint, so that a resumed run skips exactly those)
    loop = trainer.fit_loop.epoch_loop
    train_loader.progress = lambda: loop.batch_progress.current.processed
    resume_from = Path(p.checkpoint_dir, f"{LAST}.ckpt")
    if not p.resume:
        return None
    if not resume_from.is_file():
        log.warning(
            "fit.resume is set but %s holds no last.ckpt: starting afresh", p.checkpoint_dir
        )
        return None
    state = check_checkpoint(resume_from)
    # The loader's saved position (mid-epoch checkpoints). Lightning would hand it over itself,
    # but configure_optimizers reads estimated_stepping_batches, which sets the loader up
    # before Lightning restores the loops' state, and Lightning then never hands the saved
    # state back (lightning 2.6; Lightning-AI/pytorch-lightning#20550, open).
    loops = state.get("loops", {}).get("fit_loop", {}).get("state_dict", {})
    if loops.get("combined_loader"):
        train_loader.load_state_dict(loops["combined_loader"][0])
    best_so_far = Path(p.checkpoint_dir, f"{BEST}.ckpt")
    if best_so_far.is_file():  # loaded when training ends: refuse it now, not then
        check_checkpoint(best_so_far)
    if rank == 0:
        carry_history(p.log_dir, int(state.get("global_step", 0)))
    return resume_from


def fit(
    model: nn.Module,
    train_set: pd.DataFrame,
    validation_set: pd.DataFrame | None,
    parameters: FitParams,
    task: TaskParams,
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
        task: The validated ``task`` group: type, labels and seed.
        rank: This process's rank (data parallel training).
        world_size: The number of processes; the per-device batch is the global one over it.
        callbacks: Extra Lightning callbacks (tests use them to stop or inspect a run).
    """
    p = parameters
    train_set = seed_and_subsample(p, task.seed, train_set, world_size)
    train_loader, val_loader = make_loaders(
        model, train_set, validation_set, p, task, rank=rank, world_size=world_size
    )
    model.train()  # from_pretrained returns eval mode; Lightning keeps modes as it finds them
    num_labels = len(task.labels or [None])
    system = TrainingSystem(
        model,
        task=task.type,
        num_labels=num_labels,
        optimizer=p.optimizer.model_dump(),
        schedule=p.schedule.model_dump(),
        class_weights=class_weights(train_set, num_labels) if p.class_weights else None,
    )
    plan = plan_training(
        p,
        batches_per_epoch=len(train_loader),
        n_validation=len(validation_set) if val_loader is not None else 0,
        batch_size=p.data.batch_size,
        smallest_class=smallest_class(validation_set, task) if val_loader is not None else None,
    )
    if rank == 0:
        log.info("fit: %s", plan.describe())
    trainer = build_trainer(p, plan, callbacks=callbacks, world_size=world_size)
    resume_from = prepare_resume(trainer, train_loader, p, rank)
    # A fresh run removes the previous run's checkpoints once it has started (FreshStart).
    trainer.fit(system, train_loader, val_loader, ckpt_path=resume_from, weights_only=True)
    best = next(c for c in trainer.callbacks if isinstance(c, ModelCheckpoint) and c.monitor)
    if rank == 0:
        log.info("fit: %s", stop_reason(trainer, best, p, plan))
    if p.trainer.strategy != "fsdp":  # FSDP shards the model: rank 0 reloads the checkpoint
        load_best_weights(system, best)
    if p.best_checkpoint and rank == 0:
        keep_best_checkpoint(best, p.best_checkpoint)
    return system.model, read_history(p.log_dir)
