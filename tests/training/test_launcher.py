"""Multi-process training inside Kedro: the launcher, the entry point and the sharded batches.

The slow tests run the real ``train`` pipeline through a ``KedroSession`` with two CPU
processes (gloo), and compare with one process on the same global batch and seed.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from kedro.framework.hooks import hook_impl
from safetensors.torch import load_file

from reprotrain.datasets import SafetensorsModelDataset
from reprotrain.params import ParameterError, parse
from reprotrain.training.data import GroupedBatchSampler
from reprotrain.training.entrypoint import distributed_env
from reprotrain.training.launcher import (
    model_from_checkpoint,
    run_dir_for,
    srun_command,
    torchrun_command,
    world_params,
    write_inputs,
)
from tests.conftest import make_task, new_scratch_project

WEIGHT_TOLERANCE = 1e-5  # max |w_2proc - w_1proc| after 10 AdamW steps, float32 on CPU


TASK = make_task(["neg", "pos"])


def _fit_params(**trainer) -> object:
    return parse(
        "fit",
        {
            "model": {"family": "mlp"},
            "data": {"batch_size": 8},
            "trainer": trainer,
        },
    )


# ------------------------------------------------------------------------------ sampler
@pytest.mark.parametrize("group_by_length", [False, True])
@pytest.mark.parametrize("n", [64, 70])
def test_sharded_training_batches_make_up_the_single_process_batches(n, group_by_length):
    """Rank slices of step k together are exactly the one-process batch k (same global batch)."""
    lengths = np.random.default_rng(0).integers(3, 40, size=n)
    one = list(
        GroupedBatchSampler(lengths, 8, shuffle=True, group_by_length=group_by_length, seed=3)
    )
    ranks = [
        GroupedBatchSampler(
            lengths, 4, shuffle=True, group_by_length=group_by_length, seed=3, rank=r, world_size=2
        )
        for r in range(2)
    ]
    shards = [list(s) for s in ranks]
    assert len(shards[0]) == len(shards[1]) == len(ranks[0]) == len(ranks[1])
    for k, (a, b) in enumerate(zip(*shards, strict=True)):
        assert len(a) == len(b)  # equal per-device batches: DDP's average is the global mean
        assert sorted(a + b) == sorted(one[k][: len(a) + len(b)])
    assert len(one) == -(-n // 8)


def test_sharded_evaluation_sees_every_row_once():
    lengths = np.arange(23)
    rows = [
        i
        for r in range(3)
        for b in GroupedBatchSampler(
            lengths, 4, shuffle=False, group_by_length=True, rank=r, world_size=3
        )
        for i in b
    ]
    assert sorted(rows) == list(range(23))


# ------------------------------------------------------------------- params and commands
def test_auto_strategy_becomes_ddp_and_devices_follow_the_world():
    p = world_params(_fit_params(devices=4, num_nodes=2), world_size=8, local_world_size=4)
    assert (p.trainer.strategy, p.trainer.devices, p.trainer.num_nodes) == ("ddp", 4, 2)
    assert world_params(_fit_params(strategy="fsdp"), 2, 2).trainer.strategy == "fsdp"


def test_deepspeed_is_refused_with_a_clear_error():
    with pytest.raises(ParameterError, match="deepspeed' is not supported"):
        _fit_params(strategy="deepspeed")


def test_fsdp_on_cpu_is_refused_with_a_clear_error():
    with pytest.raises(ParameterError, match="'fsdp' needs CUDA"):
        _fit_params(strategy="fsdp", accelerator="cpu")


def test_fsdp_result_is_read_from_the_full_checkpoint(tmp_path):
    """Rank 0 of an FSDP run rebuilds the model from the full checkpoint Lightning saved."""
    from reprotrain.models import build_model

    table = pd.DataFrame({"num__x": [0.0, 1.0], "num__y": [1.0, 0.0], "label": [0, 1]})
    p = _fit_params().model_copy(update={"checkpoint_dir": str(tmp_path / "ck")})
    task = parse("task", TASK)
    model = build_model(p, task, table)
    write_inputs(tmp_path / "run", model, table, None, p, task)
    trained = {k: v + 1 for k, v in model.state_dict().items()}
    Path(p.checkpoint_dir).mkdir()
    torch.save(
        {"state_dict": {f"model.{k}": v for k, v in trained.items()}},
        Path(p.checkpoint_dir) / "best.ckpt",
    )
    loaded = model_from_checkpoint(tmp_path / "run", p).state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in trained.items())


def test_single_process_trainer_refuses_several_devices(tmp_path):
    from reprotrain.training.budget import plan_training
    from reprotrain.training.trainer import build_trainer

    p = _fit_params(devices=2, accelerator="cpu")
    plan = plan_training(p, batches_per_epoch=10, n_validation=0, batch_size=16)
    with pytest.raises(ValueError, match="launcher"):
        build_trainer(p, plan)


def test_torchrun_command_one_node_is_standalone(tmp_path):
    cmd = torchrun_command(_fit_params(devices=2), tmp_path)
    assert "--nproc-per-node=2" in cmd and "--nnodes=1" in cmd and "--standalone" in cmd
    assert cmd[-3:] == ["-m", "reprotrain.training.entrypoint", str(tmp_path)]


def test_torchrun_command_several_nodes_needs_a_rendezvous(tmp_path, monkeypatch):
    monkeypatch.delenv("REPROTRAIN_RDZV_ENDPOINT", raising=False)
    with pytest.raises(ValueError, match="rendezvous"):
        torchrun_command(_fit_params(devices=8, num_nodes=2), tmp_path)
    monkeypatch.setenv("REPROTRAIN_RDZV_ENDPOINT", "node0:29500")
    cmd = torchrun_command(_fit_params(devices=8, num_nodes=2), tmp_path)
    assert "--rdzv-endpoint=node0:29500" in cmd and "--rdzv-backend=c10d" in cmd


def test_srun_command_starts_one_task_per_device(tmp_path):
    cmd = srun_command(_fit_params(devices=4, num_nodes=2, launcher="srun"), tmp_path)
    assert cmd[:5] == [
        "srun",
        "--nodes=2",
        "--ntasks=8",
        "--ntasks-per-node=4",
        "--kill-on-bad-exit=1",
    ]


def test_run_dir_is_under_the_checkpoint_dir():
    p = _fit_params()
    assert run_dir_for(p) == (Path(p.checkpoint_dir) / "launch").resolve()


def test_entrypoint_takes_ranks_from_torchrun_then_slurm():
    torchrun = {
        "RANK": "3",
        "WORLD_SIZE": "4",
        "LOCAL_RANK": "1",
        "LOCAL_WORLD_SIZE": "2",
        "GROUP_RANK": "1",
        "MASTER_ADDR": "n0",
        "MASTER_PORT": "1234",
        "SLURM_PROCID": "9",
    }
    assert distributed_env(torchrun) == {k: v for k, v in torchrun.items() if k != "SLURM_PROCID"}
    slurm = {
        "SLURM_PROCID": "5",
        "SLURM_NTASKS": "8",
        "SLURM_LOCALID": "1",
        "SLURM_NNODES": "2",
        "SLURM_NODEID": "1",
        "SLURM_LAUNCH_NODE_IPADDR": "10.0.0.1",  # the login node: not rank 0's host
        "SLURM_NODELIST": "gpu[07-08]",
        "SLURM_JOB_ID": "7",
    }
    env = distributed_env(slurm)
    assert env == {
        "RANK": "5",
        "WORLD_SIZE": "8",
        "LOCAL_RANK": "1",
        "LOCAL_WORLD_SIZE": "4",
        "GROUP_RANK": "1",
        "MASTER_ADDR": "gpu07",
        "MASTER_PORT": "15007",
    }
    assert distributed_env({})["WORLD_SIZE"] == "1"


def test_entrypoint_rejects_a_folder_that_is_not_a_run(tmp_path, capsys):
    from reprotrain.training.entrypoint import main

    with pytest.raises(SystemExit):
        main([str(tmp_path)])
    assert "not a run folder" in capsys.readouterr().err


# --------------------------------------------------------------------- through Kedro
class CountRuns:
    """Counts node runs and dataset saves of the session it is registered with."""

    def __init__(self) -> None:
        self.nodes: collections.Counter[str] = collections.Counter()
        self.saved: collections.Counter[str] = collections.Counter()

    @hook_impl
    def before_node_run(self, node) -> None:
        self.nodes[node.name] += 1

    @hook_impl
    def after_dataset_saved(self, dataset_name) -> None:
        self.saved[dataset_name] += 1


def run_train(project, counter: CountRuns | None = None) -> None:
    """``kedro run --pipelines=train`` in the scratch project, with ``counter`` registered."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project.root)
    with KedroSession.create(project_path=project.root) as session:
        if counter is not None:
            session._hook_manager.register(counter)
        session.run(pipeline_names=["train"])


def tiny_fit(project, devices: int) -> None:
    """Global batch 16 over 160 rows: 2 epochs of 10 steps, split evenly over 1 or 2 processes."""
    project.write_params(
        "fit",
        {
            "schedule": {"warmup_steps": 0, "decay": "constant"},
            "data": {"batch_size": 16, "train_subsample": 160},
            "trainer": {
                "devices": devices,
                "strategy": "ddp" if devices > 1 else "auto",
                "accelerator": "cpu",
                "num_threads": 1,
                "max_epochs": 2,
                "min_steps": 0,
                # the best checkpoint by validation loss, which moves every epoch here
                "early_stopping": {"monitor": "val/loss"},
            },
        },
    )


@pytest.fixture(scope="module")
def single_process(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint_dir: Path) -> Path:
    """The ``data/`` of one single-process ``tiny_fit`` train run: both tests' baseline, made once."""
    project = new_scratch_project(
        tmp_path_factory.mktemp("single") / "project", tiny_checkpoint_dir
    )
    tiny_fit(project, devices=1)
    with contextlib.chdir(project.root):
        run_train(project)
    return project.path("data")


def with_single_process_run(project, single_process: Path) -> None:
    """``project`` set to ``tiny_fit(devices=1)``, its ``data/`` that of the baseline run."""
    tiny_fit(project, devices=1)
    shutil.rmtree(project.path("data"))
    shutil.copytree(single_process, project.path("data"))


def model_dir(project) -> Path:
    """The trained_model folder of the default task."""
    found = list(project.path("data/06_models").glob("*/trained_model"))
    assert len(found) == 1, found
    return found[0]


def weights(project) -> dict[str, torch.Tensor]:
    return SafetensorsModelDataset(filepath=str(model_dir(project))).load().state_dict


def history(project) -> pd.DataFrame:
    found = list(project.path("data/08_reporting").glob("*/training_history.csv"))
    return pd.read_csv(found[0])


def snapshot(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` except training checkpoints and run folders."""
    return {
        str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(folder.rglob("*"))
        if f.is_file() and "checkpoints" not in f.parts
    }


@pytest.mark.slow
def test_two_process_ddp_in_kedro_runs_each_node_once_and_matches_one_process(
    scratch_project, tiny_checkpoint_dir, single_process
):
    with_single_process_run(scratch_project, single_process)
    single = weights(scratch_project)
    single_history = history(scratch_project)

    tiny_fit(scratch_project, devices=2)
    counter = CountRuns()
    run_train(scratch_project, counter)
    double = weights(scratch_project)
    double_history = history(scratch_project)

    assert counter.nodes and set(counter.nodes.values()) == {1}, counter.nodes
    assert counter.saved["trained_model"] == 1 and counter.saved["training_history"] == 1
    launch = next(scratch_project.path("data/06_models").glob("*/checkpoints/launch"))
    reports = [json.loads(f.read_text()) for f in sorted((launch / "ranks").glob("*.json"))]
    assert [r["rank"] for r in reports] == [0, 1]
    for r in reports:  # both ranks trained every step, on half of each global batch
        assert (r["world_size"], r["steps"], r["batches"], r["rows"]) == (2, 20, 20, 160)
        assert r["argv"][0].endswith("entrypoint.py")  # ranks ran the entry point, not kedro
    assert len({r["pid"] for r in reports}) == 2
    assert not (launch / "result").exists() and not (launch / "inputs").exists()

    assert single.keys() == double.keys()
    diff = max(float((single[k].float() - double[k].float()).abs().max()) for k in single)
    start = load_file(tiny_checkpoint_dir / "model.safetensors")
    moved = max(
        float((single[f"bert.{k}"] - v).abs().max())
        for k, v in start.items()
        if f"bert.{k}" in single
    )
    print(f"max abs weight difference, 2 processes vs 1: {diff:.3g} (training moved {moved:.3g})")
    assert moved > 1000 * WEIGHT_TOLERANCE  # the runs trained: the match is not trivial
    assert diff < WEIGHT_TOLERANCE, f"max abs weight difference {diff:.3g}"
    # validation is sharded by rows and synced: same loss and accuracy as one process
    for column in ("val/loss", "val/acc", "train/acc"):
        a, b = (h[column].dropna().to_numpy() for h in (single_history, double_history))
        print(column, a, b)
        assert len(a) == len(b) == 2 and np.abs(a - b).max() < 1e-5, column


@pytest.mark.slow
def test_a_failing_rank_fails_the_pipeline_and_keeps_previous_outputs(
    scratch_project, single_process, monkeypatch
):
    with_single_process_run(scratch_project, single_process)
    before = snapshot(scratch_project.path("data/06_models"))
    assert any(k.endswith("model.safetensors") for k in before)

    tiny_fit(scratch_project, devices=2)
    monkeypatch.setenv("REPROTRAIN_FAIL_RANK", "1")
    counter = CountRuns()
    with pytest.raises(Exception, match="injected failure on rank 1") as failure:
        run_train(scratch_project, counter)
    message = str(failure.value)  # the first failing rank, its traceback, the log tail
    assert "first failure on rank-1: RuntimeError: injected failure" in message
    assert "Traceback" in message and "lines of the ranks' output" in message
    assert counter.nodes["train_model"] == 1 and counter.saved["trained_model"] == 0
    assert snapshot(scratch_project.path("data/06_models")) == before
