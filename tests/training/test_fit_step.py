"""What ``fit`` does around each optimiser step: gradients, train metrics, the best reload."""

from __future__ import annotations

import logging

import pandas as pd
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from tests.pipelines.fit.test_nodes import mlp_params, run, tabular, weights


class GradientsAtBatchStart(Callback):
    """Whether any parameter holds a gradient as each training batch starts."""

    def __init__(self) -> None:
        self.held: list[bool] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self.held.append(any(p.grad is not None for p in module.parameters()))


def test_gradients_are_freed_at_each_step_and_kept_while_accumulating(tmp_path):
    seen = GradientsAtBatchStart()
    run(mlp_params(tmp_path / "a", trainer={"max_epochs": 1}), tabular(64), callbacks=[seen])
    assert seen.held == [False] * 4  # 64 rows, batch 16: no forward pass beside old gradients

    seen = GradientsAtBatchStart()
    params = mlp_params(tmp_path / "b", trainer={"max_epochs": 1, "accumulate_grad_batches": 2})
    run(params, tabular(64), callbacks=[seen])
    assert seen.held == [
        False,
        True,
        False,
        True,
    ]  # the first batch's gradients wait for the second


class EpochAccuracy(Callback):
    """Each epoch's training accuracy, from the model's outputs on each batch before its step."""

    def __init__(self) -> None:
        self.correct: dict[int, int] = {}
        self.rows: dict[int, int] = {}

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        with torch.no_grad():
            predicted = module(batch).argmax(-1)
        epoch = trainer.current_epoch
        self.correct[epoch] = self.correct.get(epoch, 0) + int((predicted == batch["labels"]).sum())
        self.rows[epoch] = self.rows.get(epoch, 0) + len(predicted)


def test_train_accuracy_is_each_epochs_own(tmp_path):
    counter = EpochAccuracy()
    params = mlp_params(tmp_path, optimizer={"lr": 0.05}, trainer={"max_epochs": 3})
    _, history = run(params, tabular(96), tabular(32, 1), callbacks=[counter])
    logged = history.dropna(subset=["train/acc"]).set_index("epoch")["train/acc"]
    expected = {e: counter.correct[e] / counter.rows[e] for e in counter.rows}
    assert len(set(expected.values())) > 1  # the model learns: epochs differ
    assert {int(e): round(float(v), 5) for e, v in logged.items()} == {
        e: round(v, 5) for e, v in expected.items()
    }


def test_a_best_checkpoint_of_the_last_step_is_not_read_again(tmp_path, caplog):
    params = mlp_params(tmp_path, trainer={"max_epochs": 1})  # no validation: best by train/loss
    with caplog.at_level(logging.INFO, logger="reprotrain"):
        model, _ = run(params, tabular(64))
    assert "best weights are the last step's (train/loss=" in caplog.text
    assert "loaded best weights" not in caplog.text
    best = torch.load(tmp_path / "ckpt" / "best.ckpt", weights_only=True)
    state = {k.removeprefix("model."): v for k, v in best["state_dict"].items()}
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, state[name])


def test_deterministic_fits_skip_the_nan_fill_and_train_the_same_weights(
    tmp_path, monkeypatch, tiny_checkpoint_dir, tiny_tokenizer_dir
):
    from reprotrain.training import trainer as trainer_module
    from tests.pipelines.fit.test_nodes import text_params, text_task, token_table, weights

    data, task = token_table(tiny_tokenizer_dir, n=32), text_task(tiny_checkpoint_dir)
    model, _ = run(text_params(tmp_path / "a"), data, task=task)
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.utils.deterministic.fill_uninitialized_memory is False

    seed = trainer_module.seed_and_subsample

    def seed_with_fill(*args, **kwargs):  # torch's default: NaN in every new empty tensor
        out = seed(*args, **kwargs)
        torch.utils.deterministic.fill_uninitialized_memory = True
        return out

    monkeypatch.setattr(trainer_module, "seed_and_subsample", seed_with_fill)
    filled, _ = run(text_params(tmp_path / "b"), data, task=task)
    assert torch.utils.deterministic.fill_uninitialized_memory is True
    torch.utils.deterministic.fill_uninitialized_memory = False
    assert torch.equal(weights(model), weights(filled))


class Stop(Callback):
    """Stops training after optimiser step ``at``, as a time budget does (``None``: never)."""

    def __init__(self, at: int | None = None) -> None:
        self.at = at

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.at:
            trainer.should_stop = True


class LossAtEveryStep(Stop):
    """Makes the system log ``train/loss`` at every step, as it did before it logged it only
    where read."""

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        module._loss_every_step = True


def best_score(tmp_path) -> float:
    state = torch.load(tmp_path / "ckpt" / "best.ckpt", weights_only=False)["callbacks"]
    return next(float(s["best_model_score"]) for s in state.values() if s.get("monitor"))


@pytest.mark.parametrize(
    ("trainer", "validation", "stop_at"),
    [
        ({"log_every_n_steps": 3}, True, None),
        ({"log_every_n_steps": 2, "accumulate_grad_batches": 2}, True, None),
        ({"log_every_n_steps": 4}, True, 5),  # a stop off the logging interval is written too
        # no validation: the best checkpoint by train/loss at each epoch's end (every 6 steps)
        ({"log_every_n_steps": 4}, False, None),
        ({"log_every_n_steps": 4, "max_steps": 9}, False, None),  # the run ends mid-epoch
    ],
)
def test_train_loss_logged_only_where_read_gives_the_history_of_every_step(
    tmp_path, trainer, validation, stop_at
):
    trainer = {"max_epochs": 3, **trainer}
    data = (tabular(96), tabular(32, 1) if validation else None)
    runs = {
        name: run(mlp_params(tmp_path / name, trainer=trainer), *data, callbacks=[callback])
        for name, callback in (("gated", Stop(stop_at)), ("every", LossAtEveryStep(stop_at)))
    }
    (gated, history), (every, reference) = runs["gated"], runs["every"]
    pd.testing.assert_frame_equal(history, reference)
    assert history["train/loss"].notna().sum() >= 2
    assert torch.equal(weights(gated), weights(every))
    assert best_score(tmp_path / "gated") == best_score(tmp_path / "every")
