"""The search itself: Optuna's seeded TPE sampler, pruning through Lightning, one fit per trial.

Each trial is the fit step with the trial's values: the fit pipeline's ``build_model`` node
and :func:`reprotrain.training.trainer.fit`, exactly as ``kedro run --pipelines=fit`` calls
them, with the trial's own checkpoint and log folders. Its weights are therefore the weights
the fit pipeline produces from the same parameters; the trial table records their digest.

With ``tune.jobs > 1`` the trials run in that many processes (each with its share of the CPU
threads, or its own GPU), sharing one study through Optuna's journal file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import lightning as L
import optuna
import pandas as pd
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from reprotrain.params import SpaceChoice, SpaceRange, TuneParams, parse, with_point
from reprotrain.pipelines.fit.nodes import build_model
from reprotrain.training.trainer import fit

log = logging.getLogger(__name__)
# a trial's own checkpoints and logs live here while it runs, then are removed
TRIALS_DIR = "data/06_models/{task}/tune"


class PruneOnValidation(L.Callback):
    """Report the objective after each validation to Optuna; stop the trial when it says so.

    Also remembers each validation's objective and monitored value, so that the trial's score
    is the objective of the checkpoint the fit step keeps (the best by its own monitor).
    """

    def __init__(self, trial: optuna.Trial, metric: str) -> None:
        self.trial, self.metric = trial, metric
        self.seen: list[tuple[float, dict[str, float]]] = []

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Report this validation's value; raise ``TrialPruned`` when the pruner stops it."""
        if trainer.sanity_checking or self.metric not in trainer.callback_metrics:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        self.seen.append((metrics[self.metric], metrics))
        self.trial.report(metrics[self.metric], step=len(self.seen) - 1)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after {len(self.seen)} validations")

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Note which validation the kept (best) checkpoint comes from."""
        best = next(c for c in trainer.callbacks if isinstance(c, ModelCheckpoint) and c.monitor)
        self.monitor, self.kept = str(best.monitor), best.best_model_score

    def score(self) -> float:
        """The objective at the validation whose checkpoint the fit step kept."""
        if getattr(self, "kept", None) is None or not self.seen:
            raise ValueError("the trial never validated: no score")
        kept = float(self.kept)
        return next(v for v, m in self.seen if m.get(self.monitor) == kept)


def weights_digest(state_dict: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of the tensors (first 16 hex digits)."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def sample(trial: optuna.Trial, tune: TuneParams) -> dict[str, Any]:
    """The trial's point: one value per search key."""
    point: dict[str, Any] = {}
    for key, entry in tune.space.items():
        if isinstance(entry, SpaceChoice):
            plain = all(isinstance(c, (str, int, float, bool)) for c in entry.choices)
            if plain:
                point[key] = trial.suggest_categorical(key, entry.choices)
            else:  # lists (MLP sizes): Optuna stores them as their JSON text
                text = trial.suggest_categorical(key, [json.dumps(c) for c in entry.choices])
                point[key] = json.loads(text)
        elif isinstance(entry, SpaceRange) and entry.integer:
            point[key] = trial.suggest_int(
                key, int(entry.low), int(entry.high), step=int(entry.step or 1), log=entry.log
            )
        else:
            point[key] = trial.suggest_float(
                key, float(entry.low), float(entry.high), step=entry.step, log=entry.log
            )
    return point


class Objective:
    """One trial: sample a point, train through the fit step, return the kept model's score."""

    def __init__(
        self,
        train_set: pd.DataFrame,
        validation_set: pd.DataFrame,
        tune: TuneParams,
        fit_raw: dict[str, Any],
        task: dict[str, Any],
        threads: int | None,
    ) -> None:
        self.train_set, self.validation_set = train_set, validation_set
        self.tune, self.fit_raw, self.task, self.threads = tune, fit_raw, task, threads
        self.folder = Path(TRIALS_DIR.format(task=task["name"]))

    def __call__(self, trial: optuna.Trial) -> float:
        """Train the trial's model and return its validation score."""
        point = sample(trial, self.tune)
        if self.threads:
            point["fit.trainer.num_threads"] = self.threads
        folder = self.folder / f"trial_{trial.number}"
        # the trial's own folders, no copy of best.ckpt
        raw = {
            **with_point(self.fit_raw, point),
            "checkpoint_dir": str(folder / "checkpoints"),
            "log_dir": str(folder / "logs"),
            "best_checkpoint": None,
        }
        p = parse("fit", raw, self.task)
        trial.set_user_attr("point", point)
        start = time.perf_counter()
        pruning = PruneOnValidation(trial, self.tune.metric)
        try:
            model = build_model(self.train_set, raw, self.task)
            task = parse("task", self.task)
            trained, history = fit(
                model, self.train_set, self.validation_set, p, task, callbacks=[pruning]
            )
            trial.set_user_attr("steps", int(history["step"].max()) if len(history) else 0)
            score = pruning.score()
            trial.set_user_attr("weights_sha256", weights_digest(trained.state_dict()))
            return score
        finally:
            trial.set_user_attr("duration_s", round(time.perf_counter() - start, 3))
            trial.set_user_attr("validations", len(pruning.seen))
            shutil.rmtree(folder, ignore_errors=True)


def make_study(tune: TuneParams, storage: Any = None) -> optuna.Study:
    """A study with the seeded TPE sampler and the configured pruner."""
    pr = tune.pruner
    pruner: optuna.pruners.BasePruner = (
        optuna.pruners.MedianPruner(
            n_startup_trials=pr.startup_trials, n_warmup_steps=pr.warmup_validations
        )
        if pr.name == "median"
        else optuna.pruners.NopPruner()
    )
    return optuna.create_study(
        study_name="tune",
        storage=storage,
        load_if_exists=True,
        direction=tune.direction,
        sampler=optuna.samplers.TPESampler(seed=tune.seed),
        pruner=pruner,
    )


def _optimize(study: optuna.Study, objective: Objective, tune: TuneParams) -> None:
    def log_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """One line per finished trial: its state, score, duration and the best so far."""
        value = f" {tune.metric} {trial.value:.4f}" if trial.value is not None else ""
        try:
            best = f"; best {study.best_value:.4f} (trial {study.best_trial.number})"
        except ValueError:  # no complete trial yet
            best = ""
        log.info(
            "tune: trial %d %s%s in %.0f s%s",
            trial.number,
            trial.state.name.lower(),
            value,
            trial.user_attrs.get("duration_s", 0.0),
            best,
        )

    callbacks: list[Any] = [log_trial]
    if tune.trials:
        callbacks.append(optuna.study.MaxTrialsCallback(tune.trials, states=None))
    study.optimize(
        objective,
        timeout=tune.budget * 60 if tune.budget else None,
        catch=(Exception,),
        callbacks=callbacks,
        gc_after_trial=True,
    )


def _worker(journal: str, objective: Objective, tune: TuneParams) -> None:
    """One of ``tune.jobs`` processes: trials from the shared journal until the study ends."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))
    _optimize(make_study(tune, storage), objective, tune)


def run_search(
    train_set: pd.DataFrame,
    validation_set: pd.DataFrame,
    tune: TuneParams,
    fit_raw: dict[str, Any],
    task: dict[str, Any],
) -> optuna.Study:
    """Run the search: ``tune.jobs`` trials at a time, within ``tune.trials`` and ``budget``."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cores = os.cpu_count() or 1
    threads = max(1, cores // tune.jobs) if tune.jobs > 1 else None
    objective = Objective(train_set, validation_set, tune, fit_raw, task, threads)
    if tune.jobs == 1:
        study = make_study(tune)
        _optimize(study, objective, tune)
        return study
    import multiprocessing as mp

    objective.folder.mkdir(parents=True, exist_ok=True)
    journal = str(objective.folder / "journal.log")
    Path(journal).unlink(missing_ok=True)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))
    make_study(tune, storage)
    ctx = mp.get_context("spawn")  # a fresh interpreter per worker: no forked torch threads
    workers = [
        ctx.Process(target=_worker, args=(journal, objective, tune)) for _ in range(tune.jobs)
    ]
    gpus = torch.cuda.device_count()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    try:
        for rank, w in enumerate(workers):
            if gpus:  # one GPU per worker, round robin (a spawned process inherits the env)
                os.environ["CUDA_VISIBLE_DEVICES"] = str(rank % gpus)
            w.start()
    finally:
        if visible is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = visible
    for w in workers:
        w.join()
    return make_study(tune, storage)


def trial_table(study: optuna.Study, tune: TuneParams) -> pd.DataFrame:
    """One row per trial: number, state, score, duration, validations, each value, digest."""
    rows = []
    for t in sorted(study.trials, key=lambda t: t.number):
        point = {k: t.params.get(k) for k in tune.space}
        for key, entry in tune.space.items():  # lists were stored as JSON text
            if (
                isinstance(entry, SpaceChoice)
                and isinstance(point[key], str)
                and not all(isinstance(c, str) for c in entry.choices)
            ):
                point[key] = json.loads(point[key])
        last = t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else None
        rows.append(
            {
                "trial": t.number,
                "state": "failed" if t.state.name == "FAIL" else t.state.name.lower(),
                tune.metric: t.value if t.value is not None else last,
                "duration_s": t.user_attrs.get("duration_s"),
                "validations": t.user_attrs.get("validations", 0),
                "steps": t.user_attrs.get("steps"),
                **{k: json.dumps(v) if isinstance(v, list) else v for k, v in point.items()},
                "weights_sha256": t.user_attrs.get("weights_sha256"),
                "point": json.dumps(t.user_attrs.get("point")),
                "error": t.system_attrs.get("fail_reason", "") if t.state.name == "FAIL" else "",
            }
        )
    return pd.DataFrame(rows)
