"""The adaptive training budget: step floor, epoch cap, validation cadence, early stopping,
wall-clock budget and class weights, on real Lightning fits of a tiny MLP."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from reprotrain.params import ParameterError, parse
from reprotrain.pipelines.fit.nodes import build_model
from reprotrain.training.budget import F1_MIN_CLASS_ROWS, plan_training
from reprotrain.training.trainer import class_weights, fit, smallest_class
from tests.conftest import deep_update
from tests.pipelines.fit.test_nodes import MLP_TASK, REGRESSION, mlp_params, tabular


def budget_params(tmp_path, **override) -> dict:
    """The MLP test parameters with the budget's defaults back on (floor, early stopping)."""
    base = mlp_params(tmp_path)
    base["trainer"] = {"accelerator": "cpu", "enable_progress_bar": False}
    return deep_update(base, override)


class StepCounter(Callback):
    """Counts optimiser steps and the epochs that ran."""

    def __init__(self) -> None:
        self.epochs = 0

    def on_train_epoch_end(self, trainer, module) -> None:
        self.epochs += 1


def train(params: dict, train_set: pd.DataFrame, val: pd.DataFrame | None, **kw):
    counter = StepCounter()
    model = build_model(train_set, params, MLP_TASK)
    p, task = parse("fit", params, MLP_TASK), parse("task", MLP_TASK)
    trained, history = fit(model, train_set, val, p, task, callbacks=[counter], **kw)
    return trained, history, counter


# ---------------------------------------------------------------------------------- the plan
@pytest.mark.parametrize(
    ("batches", "n_val", "epochs", "interval"),
    [
        (9, 20, 34, 1.0),  # tiny data: the floor of 300 steps needs 34 epochs; validate each
        (265, 1060, 10, 111),  # the demo: validation ~10% of the time, ~2.4 times an epoch
        (10_000, 30_000, 10, 3125),  # large data: validation within the epoch
    ],
)
def test_plan_scales_with_the_data(tmp_path, batches, n_val, epochs, interval):
    p = parse("fit", budget_params(tmp_path, data={"batch_size": 32}))
    plan = plan_training(p, batches_per_epoch=batches, n_validation=n_val, batch_size=32)
    assert plan.max_epochs == epochs
    assert plan.val_check_interval == interval
    assert (plan.monitor, plan.mode) == ("val/loss", "min")


def test_plan_monitors_loss_for_regression_and_without_validation(tmp_path):
    reg = parse("fit", budget_params(tmp_path, loss="mse"))
    plan = plan_training(reg, batches_per_epoch=5, n_validation=10, batch_size=16)
    assert (plan.monitor, plan.mode) == ("val/loss", "min")
    cls = parse("fit", budget_params(tmp_path))
    plan = plan_training(cls, batches_per_epoch=5, n_validation=0, batch_size=16)
    assert (plan.monitor, plan.val_check_interval) == ("train/loss", None)


def test_plan_monitors_macro_f1_when_every_class_has_enough_validation_rows(tmp_path):
    p = parse("fit", budget_params(tmp_path))
    kw = {"batches_per_epoch": 5, "n_validation": 200, "batch_size": 16}
    plan = plan_training(p, smallest_class=F1_MIN_CLASS_ROWS, **kw)
    assert (plan.monitor, plan.mode) == ("val/f1", "max")
    plan = plan_training(p, smallest_class=F1_MIN_CLASS_ROWS - 1, **kw)
    assert (plan.monitor, plan.mode) == ("val/loss", "min")
    chosen = parse(
        "fit", budget_params(tmp_path, trainer={"early_stopping": {"monitor": "val/loss"}})
    )
    plan = plan_training(chosen, smallest_class=10 * F1_MIN_CLASS_ROWS, **kw)
    assert (plan.monitor, plan.mode) == ("val/loss", "min")  # the user's choice wins


def test_smallest_class_counts_the_rarest_label_of_the_task():
    val = pd.DataFrame({"label": [0, 0, 2, 2, 2]})
    assert smallest_class(val, parse("task", MLP_TASK)) == 0  # "mid" has no validation row
    assert smallest_class(val.assign(label=[0, 1, 2, 1, 0]), parse("task", MLP_TASK)) == 1
    assert smallest_class(val.assign(label=0.5), parse("task", REGRESSION)) is None


def test_bad_budget_parameters_are_refused(tmp_path):
    with pytest.raises(ParameterError, match="fit.budget"):
        parse("fit", budget_params(tmp_path, budget=-1))
    with pytest.raises(ParameterError, match="val_check_interval"):
        parse("fit", budget_params(tmp_path, trainer={"val_check_interval": "often"}))
    with pytest.raises(ParameterError, match="class_weights"):
        parse("fit", budget_params(tmp_path, class_weights="inverse"))


# ------------------------------------------------------------------------- real Lightning fits
def test_step_floor_gives_tiny_data_more_than_one_epoch(tmp_path):
    data = tabular(n=48)  # batch 16: 3 steps an epoch
    params = budget_params(
        tmp_path, trainer={"max_epochs": 1, "min_steps": 30, "early_stopping": None}
    )
    _, history, counter = train(params, data, data)
    assert counter.epochs == 10  # the cap of 1 epoch raised to reach 30 steps
    assert int(history["step"].max()) + 1 >= 30


def test_early_stopping_stops_before_the_cap_and_keeps_the_best(tmp_path, caplog):
    train_set = tabular(n=96, seed=0)
    noise = tabular(n=48, seed=1)
    noise["label"] = np.random.default_rng(2).permutation(noise["label"].to_numpy())
    params = budget_params(
        tmp_path,
        optimizer={"lr": 0.05},
        trainer={"max_epochs": 200, "min_steps": 12, "early_stopping": {"patience": 2}},
    )
    with caplog.at_level(logging.INFO, logger="reprotrain"):
        trained, history, counter = train(params, train_set, noise)
    assert counter.epochs < 200
    assert "stopped early" in caplog.text
    val = history["val/loss"].dropna()
    best = torch.load(tmp_path / "ckpt" / "best.ckpt", weights_only=True)
    callback = next(
        v for k, v in best["callbacks"].items() if k.startswith("ModelCheckpoint") and "val" in k
    )
    assert float(callback["best_model_score"]) == pytest.approx(val.min())
    # the returned model holds the best checkpoint's weights, not the last step's
    state = {k.removeprefix("model."): v for k, v in best["state_dict"].items()}
    for name, tensor in trained.state_dict().items():
        torch.testing.assert_close(tensor, state[name])


def test_a_large_validation_split_selects_on_macro_f1(tmp_path, caplog):
    val = tabular(n=150, seed=1)
    assert smallest_class(val, parse("task", MLP_TASK)) >= F1_MIN_CLASS_ROWS
    params = budget_params(tmp_path, trainer={"max_epochs": 4, "min_steps": 0})
    with caplog.at_level(logging.INFO, logger="reprotrain"):
        _, history, _ = train(params, tabular(n=96, seed=0), val)
    assert "best model by val/f1 (max)" in caplog.text
    best = torch.load(tmp_path / "ckpt" / "best.ckpt", weights_only=True)
    callback = next(
        v for k, v in best["callbacks"].items() if k.startswith("ModelCheckpoint") and "val" in k
    )
    assert float(callback["best_model_score"]) == pytest.approx(history["val/f1"].dropna().max())


def test_ema_weights_are_validated_checkpointed_and_kept(tmp_path):
    params = budget_params(tmp_path, ema=0.5, trainer={"max_epochs": 2, "min_steps": 0})
    trained, _, _ = train(params, tabular(n=96, seed=0), tabular(n=48, seed=1))
    best = torch.load(tmp_path / "ckpt" / "best.ckpt", weights_only=True)
    averaged = {k.removeprefix("model."): v for k, v in best["state_dict"].items()}
    current = {k.removeprefix("model."): v for k, v in best["current_model_state"].items()}
    assert any(not torch.equal(averaged[k], current[k]) for k in averaged)
    for name, tensor in trained.state_dict().items():
        torch.testing.assert_close(tensor, averaged[name])


@pytest.mark.slow
def test_wall_clock_budget_is_a_hard_stop(tmp_path, caplog):
    data = tabular(n=96)
    params = budget_params(
        tmp_path,
        budget=0.02,  # 1.2 seconds
        trainer={"max_epochs": 100_000, "min_steps": 10**9, "early_stopping": None},
    )
    with caplog.at_level(logging.INFO, logger="reprotrain"):
        _, _, counter = train(params, data, data)
    assert 0 < counter.epochs < 100_000
    assert "budget ran out" in caplog.text and "max_steps=" in caplog.text


def test_balanced_class_weights(tmp_path):
    table = pd.DataFrame({"label": [0] * 6 + [1] * 2})
    assert class_weights(table, 3) == pytest.approx([8 / 18, 8 / 6, 1.0])
    data = tabular(n=64)
    params = budget_params(
        tmp_path,
        class_weights="balanced",
        trainer={"max_epochs": 1, "min_steps": 0, "early_stopping": None, "log_every_n_steps": 1},
    )
    _, history, _ = train(params, data, data)
    assert history["train/loss"].notna().any()
    best = torch.load(tmp_path / "ckpt" / "best.ckpt", weights_only=True)
    torch.testing.assert_close(
        best["state_dict"]["loss_fn.weight"], torch.tensor(class_weights(data, 3))
    )


@pytest.mark.slow
def test_same_run_twice_gives_the_same_weights_with_early_stopping(tmp_path):
    data, val = tabular(n=96, seed=0), tabular(n=48, seed=3)
    params = budget_params(
        tmp_path, trainer={"max_epochs": 50, "min_steps": 20, "early_stopping": {"patience": 2}}
    )
    first, _, a = train(params, data, val)
    second, _, b = train(params, data, val)
    assert a.epochs == b.epochs
    for (name, x), (_, y) in zip(
        first.state_dict().items(), second.state_dict().items(), strict=True
    ):
        assert torch.equal(x, y), name


def test_progress_lines_in_a_log_file(tmp_path, caplog, monkeypatch):
    """Under pytest stdout is not a terminal: the bar is off and progress comes as log lines."""
    from reprotrain.training import progress

    monkeypatch.setattr(progress, "EVERY_S", 0.0)
    data = tabular(n=64)
    params = budget_params(
        tmp_path, trainer={"max_epochs": 2, "min_steps": 0, "early_stopping": None}
    )
    with caplog.at_level(logging.INFO, logger="reprotrain"):
        train(params, data, data)
    lines = [r.getMessage() for r in caplog.records if r.name == "reprotrain.training.progress"]
    assert any(line.startswith("step 1 of at most 8 (epoch 1): train/loss") for line in lines)
    assert any("samples/s" in line for line in lines)
    assert any(line.startswith("validation at step 4: val/acc") for line in lines)
