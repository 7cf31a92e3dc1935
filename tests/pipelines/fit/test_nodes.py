"""Tests of building and training models (both families) through the fit nodes and ``fit``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from reprotrain.models import from_artifact
from reprotrain.params import ParameterError, parse
from reprotrain.pipelines.fit.nodes import build_model, train_model
from reprotrain.training.trainer import fit
from tests.conftest import TINY_BERT, deep_update, load_params, load_task, make_task

MLP_TASK = make_task(["low", "mid", "high"], seed=0)
REGRESSION = make_task(type="regression", seed=0)


def tabular(n: int = 96, seed: int = 0, regression: bool = False) -> pd.DataFrame:
    """Two informative features and a noise feature; three classes or a linear target."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    frame = pd.DataFrame(x, columns=["a", "b", "noise"])
    if regression:
        frame["label"] = (2 * x[:, 0] - x[:, 1]).astype(np.float32)
    else:
        frame["label"] = np.digitize(x[:, 0] + x[:, 1], [-0.6, 0.6]).astype(np.int64)
    return frame


def mlp_params(tmp_path, **override) -> dict:
    base = {
        "model": {"family": "mlp", "hidden_sizes": [16], "activation": "relu", "dropout": 0.0},
        "loss": "cross_entropy",
        "optimizer": {"name": "adam", "lr": 0.01, "weight_decay": 0.0},
        "schedule": {"warmup_steps": 0, "decay": "constant"},
        "data": {"batch_size": 16, "group_by_length": False},
        "trainer": {
            "accelerator": "cpu",
            "max_epochs": 2,
            "min_steps": 0,
            "early_stopping": None,
            "enable_progress_bar": False,
        },
        "checkpoint_dir": str(tmp_path / "ckpt"),
        "log_dir": str(tmp_path / "logs"),
    }
    return deep_update(base, override)


def text_task(checkpoint) -> dict:
    """The default task, pretrained from ``checkpoint``."""
    return load_task(model_checkpoint=str(checkpoint))


def text_params(tmp_path, **override) -> dict:
    base = deep_update(
        load_params("fit"),
        {
            "model": {"family": "transformer"},
            "optimizer": {"lr": 1e-3},
            "schedule": {"warmup_steps": 2},
            "data": {"batch_size": 8, "train_subsample": None},
            "trainer": {
                "accelerator": "cpu",
                "min_steps": 0,
                "early_stopping": None,
                "enable_progress_bar": False,
            },
            "checkpoint_dir": str(tmp_path / "ckpt"),
            # the real conf's default is under data/ of the project: never write there
            "best_checkpoint": str(tmp_path / "best.ckpt"),
            "log_dir": str(tmp_path / "logs"),
        },
    )
    return deep_update(base, override)


def token_table(tokenizer_dir, n: int = 64) -> pd.DataFrame:
    from reprotrain.pipelines.clean.nodes import clean_table
    from reprotrain.pipelines.convert.nodes import convert_table
    from tests.conftest import make_reviews

    cleaned, _ = clean_table(make_reviews(n), load_params("clean"), load_task())
    return convert_table(cleaned, load_params("convert"), text_task(tokenizer_dir))


def run(params: dict, train: pd.DataFrame, val=None, task: dict = MLP_TASK, **kw):
    model = build_model(train, params, task)
    return fit(model, train, val, parse("fit", params, task), parse("task", task), **kw)


def weights(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


class LossRecorder(Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))


class BatchRecorder(Callback):
    """The sum of each training batch's features, by epoch: a fingerprint of the order."""

    def __init__(self) -> None:
        self.by_epoch: dict[int, list[float]] = {}

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        tensors = batch.values() if isinstance(batch, dict) else batch
        first = next(iter(tensors))
        self.by_epoch.setdefault(trainer.current_epoch, []).append(round(float(first.sum()), 4))


def test_each_epoch_draws_a_new_batch_order(tmp_path):
    """Lightning calls set_epoch on samplers, not on batch samplers: EpochOrder does it."""
    recorder = BatchRecorder()
    run(mlp_params(tmp_path, trainer={"max_epochs": 3}), tabular(), callbacks=[recorder])
    orders = list(recorder.by_epoch.values())
    assert len(orders) == 3 and len({len(o) for o in orders}) == 1
    assert orders[0] != orders[1] != orders[2] != orders[0]


# ------------------------------------------------------------------------------ one batch
def test_one_batch_transformer(tmp_path, tiny_checkpoint_dir, tiny_tokenizer_dir):
    data = token_table(tiny_tokenizer_dir, n=16)
    params = text_params(tmp_path, data={"batch_size": 16})
    task = text_task(tiny_checkpoint_dir)
    artifact, history = train_model(build_model(data, params, task), data, data, params, task)
    model = from_artifact(artifact)
    assert model.config.id2label == {0: "negative", 1: "positive"}
    # the name the user gave, not a resolved install path (keeps DVC hashes machine-free)
    assert artifact.spec["config"]["_name_or_path"] == str(tiny_checkpoint_dir)
    assert {"train/acc", "val/loss", "val/acc"} <= set(history.columns)
    assert (tmp_path / "ckpt" / "best.ckpt").is_file() and (
        tmp_path / "ckpt" / "last.ckpt"
    ).is_file()


def test_one_batch_mlp(tmp_path):
    data = tabular()
    params = mlp_params(tmp_path, data={"batch_size": 96}, trainer={"max_epochs": 1})
    model = build_model(data, params, MLP_TASK)
    artifact, history = train_model(model, data, data, params, MLP_TASK)
    assert artifact.spec["family"] == "mlp"
    assert artifact.spec["feature_names"] == ["a", "b", "noise"]
    assert "val/acc" in history.columns


# ------------------------------------------------------------------------------ learning
@pytest.mark.slow
def test_overfits_a_small_batch_transformer(tmp_path, tiny_checkpoint_dir, tiny_tokenizer_dir):
    batch = token_table(tiny_tokenizer_dir, n=16).iloc[:8]
    rec = LossRecorder()
    params = text_params(
        tmp_path,
        data={"batch_size": 8},
        optimizer={"lr": 2e-3},
        schedule={"warmup_steps": 0, "decay": "constant"},
        trainer={"max_epochs": 100, "gradient_clip_val": None},
    )
    run(params, batch, task=text_task(tiny_checkpoint_dir), callbacks=[rec])
    # The 2-layer random BERT's pooler saturates on some rows, so the floor is above zero.
    assert rec.losses[-1] < rec.losses[0] / 3, rec.losses[::10]


@pytest.mark.slow
def test_overfits_a_small_batch_mlp(tmp_path):
    rec = LossRecorder()
    params = mlp_params(
        tmp_path, model={"hidden_sizes": [64]}, data={"batch_size": 16}, trainer={"max_epochs": 150}
    )
    run(params, tabular(16), callbacks=[rec])
    assert rec.losses[-1] < rec.losses[0] / 20, rec.losses[::25]


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "gelu"])
def test_each_activation_is_used_and_learns(tmp_path, activation):
    rec = LossRecorder()
    params = mlp_params(tmp_path, model={"activation": activation}, trainer={"max_epochs": 15})
    model, _ = run(params, tabular(), callbacks=[rec])
    kinds = {type(m).__name__.lower() for m in model.modules()}
    assert activation in kinds
    assert np.mean(rec.losses[-6:]) < 0.6 * np.mean(rec.losses[:6])


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_each_optimizer_learns(tmp_path, optimizer):
    rec = LossRecorder()
    lr = 0.1 if optimizer == "sgd" else 0.01
    params = mlp_params(
        tmp_path, optimizer={"name": optimizer, "lr": lr}, trainer={"max_epochs": 10}
    )
    run(params, tabular(), callbacks=[rec])
    assert np.mean(rec.losses[-6:]) < 0.6 * np.mean(rec.losses[:6])


def test_mse_regression_learns_a_linear_target(tmp_path):
    rec = LossRecorder()
    params = mlp_params(tmp_path, loss="mse", trainer={"max_epochs": 20})
    model, history = run(
        params,
        tabular(regression=True),
        tabular(32, 1, regression=True),
        task=REGRESSION,
        callbacks=[rec],
    )
    assert np.mean(rec.losses[-6:]) < 0.2 * np.mean(rec.losses[:6])
    assert "val/mse" in history.columns


def test_regression_in_large_units_learns_through_target_scaling(tmp_path):
    """A target in grams (mean 4000, std ~1100) trains as well as one near zero."""

    def grams(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(label=(4000 + 500 * frame["label"]).astype(np.float32))

    train, val = grams(tabular(regression=True)), grams(tabular(32, 1, regression=True))
    params = mlp_params(tmp_path, loss="mse", trainer={"max_epochs": 20})
    model, _ = run(params, train, val, task=REGRESSION)
    assert model.target_mean.item() == pytest.approx(train["label"].mean(), rel=1e-5)
    features = torch.as_tensor(val[["a", "b", "noise"]].to_numpy())
    with torch.no_grad():
        predicted = model.eval()(features).squeeze(-1).numpy()
    mae = np.abs(predicted - val["label"].to_numpy()).mean()
    assert mae < 0.25 * val["label"].std()  # the mean alone would be ~0.8 std off


def _abs_weights(model) -> float:
    return sum(
        m.weight.abs().sum().item() for m in model.modules() if isinstance(m, torch.nn.Linear)
    )


@pytest.mark.slow
def test_l1_drives_weights_toward_zero(tmp_path):
    opt = {"name": "sgd", "lr": 0.05, "momentum": 0.0}
    epochs = {"max_epochs": 20}
    plain, _ = run(mlp_params(tmp_path, optimizer=opt, trainer=epochs), tabular())
    l1, _ = run(mlp_params(tmp_path, optimizer={**opt, "l1": 5e-2}, trainer=epochs), tabular())
    assert _abs_weights(l1) < 0.8 * _abs_weights(plain)


def test_l2_weight_decay_shrinks_weights_not_biases(tmp_path):
    opt = {"name": "adamw", "lr": 0.01}
    plain, _ = run(mlp_params(tmp_path, optimizer=opt), tabular())
    decayed, _ = run(mlp_params(tmp_path, optimizer={**opt, "weight_decay": 5.0}), tabular())
    assert _abs_weights(decayed) < 0.8 * _abs_weights(plain)
    from reprotrain.training.system import split_decay_groups

    decay, plain_params = split_decay_groups(decayed)
    assert all(p.ndim == 2 for p in decay) and all(p.ndim == 1 for p in plain_params)


def test_warmup_then_linear_decay():
    from reprotrain.training.system import warmup_then_decay

    f = warmup_then_decay(4, 12, "linear")
    assert [f(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert f(8) == pytest.approx(0.5)
    assert f(12) == 0.0
    assert warmup_then_decay(0, 10, "cosine")(5) == pytest.approx(0.5)


# ------------------------------------------------------------------------------ reproducible
def test_same_seed_same_weights_other_seed_differs(tmp_path):
    a, _ = run(mlp_params(tmp_path / "a", model={"dropout": 0.2}), tabular())
    b, _ = run(mlp_params(tmp_path / "b", model={"dropout": 0.2}), tabular())
    c, _ = run(
        mlp_params(tmp_path / "c", model={"dropout": 0.2}), tabular(), task={**MLP_TASK, "seed": 1}
    )
    assert torch.equal(weights(a), weights(b))
    assert not torch.equal(weights(a), weights(c))


class StopAfterFirstEpoch(Callback):
    def on_train_epoch_end(self, trainer, module) -> None:
        trainer.should_stop = True


def test_resume_continues_and_matches_uninterrupted(tmp_path):
    params = mlp_params(tmp_path / "r", model={"dropout": 0.3})
    full, _ = run(mlp_params(tmp_path / "u", model={"dropout": 0.3}), tabular(), tabular(32, 1))
    run(params, tabular(), tabular(32, 1), callbacks=[StopAfterFirstEpoch()])
    first = torch.load(tmp_path / "r" / "ckpt" / "last.ckpt", weights_only=True)
    assert first["epoch"] == 0
    resumed, history = run({**params, "resume": True}, tabular(), tabular(32, 1))
    last = torch.load(tmp_path / "r" / "ckpt" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 1 and last["global_step"] == 2 * first["global_step"]
    assert torch.allclose(weights(resumed), weights(full), atol=1e-6)


# ------------------------------------------------------------------------------ bad params
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"optimizer": {"name": "rmsprop"}}, r"fit.optimizer.name.*'sgd', 'adam' or 'adamw'"),
        ({"optimizer": {"lr": -0.1}}, r"fit.optimizer.lr.*greater than 0"),
        ({"model": {"activation": "swish"}}, r"'fit.model.activation': Input should be"),
        ({"optimiser": {"name": "adam"}}, r"unknown key 'fit.optimiser'.*optimizer"),
        ({"loss": "mse"}, r"classification task trains with loss 'cross_entropy'"),
    ],
)
def test_bad_parameters_fail_before_training(tmp_path, override, message):
    with pytest.raises(ParameterError, match=message):
        build_model(tabular(), mlp_params(tmp_path, **override), MLP_TASK)


def test_missing_model_path_is_named(tmp_path, tiny_tokenizer_dir):
    task = text_task(tmp_path / "no-such-model")
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        build_model(token_table(tiny_tokenizer_dir), text_params(tmp_path), task)


def test_labels_not_matching_a_trained_head(tmp_path, tiny_tokenizer_dir):
    from transformers import BertConfig, BertForSequenceClassification

    folder = tmp_path / "three-way"
    cfg = {k: v for k, v in TINY_BERT.items() if k != "model_type"}
    BertForSequenceClassification(BertConfig(**cfg, num_labels=3)).save_pretrained(folder)
    with pytest.raises(ValueError, match="head with 3 labels.*task has 2"):
        build_model(token_table(tiny_tokenizer_dir), text_params(tmp_path), text_task(folder))


def test_label_ids_beyond_the_label_list(tmp_path):
    data = tabular().assign(label=lambda t: t["label"] + 1)  # ids 1..3 for 3 labels
    with pytest.raises(ValueError, match=r"label ids \[3\] beyond the 3 configured labels"):
        build_model(data, mlp_params(tmp_path), MLP_TASK)


def test_a_truncated_resume_checkpoint_is_named(tmp_path):
    params = mlp_params(tmp_path / "r")
    run(params, tabular(), tabular(32, 1), callbacks=[StopAfterFirstEpoch()])
    last = tmp_path / "r" / "ckpt" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:500])
    with pytest.raises(
        ValueError, match=r"cannot resume from .*last\.ckpt: the checkpoint is truncated"
    ):
        run({**params, "resume": True}, tabular(), tabular(32, 1))


def test_kept_best_checkpoint_is_the_same_bytes_in_any_folder(tmp_path, monkeypatch):
    """The DVC-cached best.ckpt must not record where the project lives."""
    saved = []
    for clone in ("one", "two"):
        root = tmp_path / clone
        root.mkdir()
        monkeypatch.chdir(root)
        params = mlp_params(root, checkpoint_dir="checkpoints", log_dir="logs")
        run({**params, "best_checkpoint": "best.ckpt"}, tabular(), tabular(32, 1))
        saved.append((root / "best.ckpt").read_bytes())
        state = torch.load(root / "best.ckpt", weights_only=True)
        paths = [v for cb in state["callbacks"].values() for v in cb.values() if isinstance(v, str)]
        assert all(not p.startswith(str(root)) for p in paths), paths
    assert saved[0] == saved[1]


def test_a_tensorboard_log_beside_the_csv_history_changes_nothing_else(tmp_path):
    plain, plain_history = run(mlp_params(tmp_path / "a"), tabular())
    logged, history = run(
        mlp_params(tmp_path / "b", trainer={"loggers": ["tensorboard"]}), tabular()
    )
    assert torch.equal(weights(plain), weights(logged))
    pd.testing.assert_frame_equal(plain_history, history)
    events = list((tmp_path / "b" / "logs" / "tensorboard").rglob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0


def test_a_logger_whose_package_is_missing_is_named(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if mlflow were not installed
    monkeypatch.setattr("lightning.pytorch.loggers.mlflow._MLFLOW_AVAILABLE", False)
    with pytest.raises(ParameterError, match=r"loggers lists 'mlflow', which needs mlflow"):
        run(mlp_params(tmp_path, trainer={"loggers": ["mlflow"]}), tabular())
