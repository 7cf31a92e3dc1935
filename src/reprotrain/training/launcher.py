"""Multi-device and multi-node training from inside a Kedro node, without re-running Kedro.

Lightning's own DDP launcher re-executes ``sys.argv`` for every extra rank, which under
``kedro run`` re-runs the whole pipeline on every rank. Instead, the ``train_model`` node calls
``launch``, which writes the node's inputs to a run folder (``<checkpoint_dir>/launch``), starts
``python -m reprotrain.training.entrypoint <run folder>`` on every rank (torchrun or srun),
forwards the ranks' output to the Kedro log and loads what rank 0 wrote.

A failing rank fails the node with that rank's error and the tail of the log; nothing is
returned, so the catalog saves nothing and earlier outputs stay as they were.

Run folder layout::

    <run>/inputs/   initial_model/ train.parquet validation.parquet params.json
    <run>/result/   trained_model/ history.parquet          (rank 0 only, renamed into place)
    <run>/ranks/    rank-<k>.json   what each rank trained  (host, pid, steps, rows)
    <run>/errors/   rank-<k>.txt    the traceback of a rank that failed
    <run>/logs/     rank-<k>.log    each rank's log; launch.log: the launcher's output
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections import deque
from pathlib import Path

import pandas as pd
from torch import nn

from reprotrain.artifact import load_artifact, save_artifact
from reprotrain.atomic import writing_dir
from reprotrain.models import from_artifact, to_artifact
from reprotrain.params import FitParams, TaskParams

log = logging.getLogger(__name__)

ENTRYPOINT = "reprotrain.training.entrypoint"
RDZV_ENDPOINT_ENV = "REPROTRAIN_RDZV_ENDPOINT"
RDZV_ID_ENV = "REPROTRAIN_RDZV_ID"
LOG_TAIL_LINES = 40


class DistributedTrainingError(RuntimeError):
    """A rank of a multi-process training run failed (the message holds its error and log)."""


# ------------------------------------------------------------------------- the run folder
def run_dir_for(p: FitParams) -> Path:
    """The run folder of ``p``: ``<checkpoint_dir>/launch``, absolute.

    It is a fixed path, not a fresh temporary folder, so that the workers of a multi-node run
    (started on other machines, with the same path on a shared file system) can find it.
    """
    return (Path(p.checkpoint_dir) / "launch").resolve()


def world_params(p: FitParams, world_size: int, local_world_size: int) -> FitParams:
    """``p`` with devices/nodes as the processes really are, and ``auto`` strategy → ``ddp``.

    Raises:
        ValueError: ``world_size`` is not a whole number of nodes of ``local_world_size``.
    """
    if world_size % local_world_size:
        raise ValueError(
            f"world size {world_size} is not a multiple of {local_world_size} per node"
        )
    t = p.trainer
    strategy = "ddp" if t.strategy == "auto" else t.strategy
    trainer = t.model_copy(
        update={
            "devices": local_world_size,
            "num_nodes": world_size // local_world_size,
            "strategy": strategy,
        }
    )
    return p.model_copy(update={"trainer": trainer})


def write_inputs(
    run_dir: Path,
    model: nn.Module,
    train_set: pd.DataFrame,
    validation_set: pd.DataFrame | None,
    p: FitParams,
    task: TaskParams,
) -> None:
    """Empty ``run_dir`` and write the node's inputs into ``run_dir/inputs``."""
    if run_dir.exists():
        shutil.rmtree(run_dir)
    for sub in ("inputs", "ranks", "errors", "logs"):
        (run_dir / sub).mkdir(parents=True)
    inputs = run_dir / "inputs"
    save_artifact(to_artifact(model), str(inputs / "initial_model"))
    train_set.to_parquet(inputs / "train.parquet")
    if validation_set is not None:
        validation_set.to_parquet(inputs / "validation.parquet")
    (inputs / "params.json").write_text(p.model_dump_json(indent=2))
    (inputs / "task.json").write_text(task.model_dump_json(indent=2))


def read_inputs(
    run_dir: Path,
) -> tuple[nn.Module, pd.DataFrame, pd.DataFrame | None, FitParams, TaskParams]:
    """What ``write_inputs`` wrote: model (train mode), tables, parameters, task."""
    inputs = Path(run_dir) / "inputs"
    model = from_artifact(load_artifact(str(inputs / "initial_model")))
    train_set = pd.read_parquet(inputs / "train.parquet")
    val_path = inputs / "validation.parquet"
    validation_set = pd.read_parquet(val_path) if val_path.is_file() else None
    p = FitParams.model_validate_json((inputs / "params.json").read_text())
    task = TaskParams.model_validate_json((inputs / "task.json").read_text())
    return model.train(), train_set, validation_set, p, task


def write_result(run_dir: Path, model: nn.Module, history: pd.DataFrame) -> None:
    """Write the trained model and history to ``run_dir/result`` atomically (rank 0 only)."""
    with writing_dir(Path(run_dir) / "result") as tmp:
        save_artifact(to_artifact(model), str(tmp / "trained_model"))
        history.to_parquet(tmp / "history.parquet")


def model_from_checkpoint(run_dir: Path, p: FitParams) -> nn.Module:
    """The initial architecture with the weights of ``best.ckpt`` (else ``last.ckpt``).

    For FSDP, whose in-memory model is sharded across the ranks: Lightning saves a full
    (unsharded) checkpoint from rank 0, which this reads back (weights only, no pickle).

    Raises:
        FileNotFoundError: Training left no checkpoint.
    """
    import torch

    from reprotrain.models import model_from_spec
    from reprotrain.training.trainer import BEST, LAST

    found = [Path(p.checkpoint_dir, f"{n}.ckpt") for n in (BEST, LAST)]
    path = next((f for f in found if f.is_file()), None)
    if path is None:
        raise FileNotFoundError(f"no {BEST}.ckpt or {LAST}.ckpt in {p.checkpoint_dir}")
    model = model_from_spec(load_artifact(str(Path(run_dir) / "inputs" / "initial_model")).spec)
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    model.load_state_dict(
        {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
    )
    log.info("rank 0 read the trained weights from %s", path)
    return model


# ------------------------------------------------------------------------------ commands
def torchrun_command(p: FitParams, run_dir: Path) -> list[str]:
    """``python -m torch.distributed.run ... -m reprotrain.training.entrypoint RUN_DIR``.

    One node: ``--standalone`` (a free local port). Several nodes: c10d rendezvous at
    ``$REPROTRAIN_RDZV_ENDPOINT`` or ``fit.trainer.rdzv_endpoint`` (``host:port``); the other
    nodes run the same command (``launch`` logs it).

    Raises:
        ValueError: several nodes and no rendezvous endpoint.
    """
    t = p.trainer
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc-per-node={t.devices}",
        f"--nnodes={t.num_nodes}",
        "--max-restarts=0",
    ]
    if t.num_nodes == 1:
        cmd.append("--standalone")
    else:
        endpoint = os.environ.get(RDZV_ENDPOINT_ENV) or t.rdzv_endpoint
        if not endpoint:
            raise ValueError(
                f"fit.trainer.num_nodes={t.num_nodes} needs a rendezvous endpoint (host:port of "
                f"this machine): set fit.trainer.rdzv_endpoint or ${RDZV_ENDPOINT_ENV}"
            )
        rdzv_id = os.environ.get(RDZV_ID_ENV, "reprotrain")
        cmd += ["--rdzv-backend=c10d", f"--rdzv-endpoint={endpoint}", f"--rdzv-id={rdzv_id}"]
    return [*cmd, "-m", ENTRYPOINT, str(run_dir)]


def srun_command(p: FitParams, run_dir: Path) -> list[str]:
    """``srun ... python -m reprotrain.training.entrypoint RUN_DIR``: one task per device.

    Run inside a SLURM allocation (``sbatch``/``salloc``) of ``num_nodes`` nodes; a failing
    task ends the others (``--kill-on-bad-exit``).
    """
    t = p.trainer
    return [
        "srun",
        f"--nodes={t.num_nodes}",
        f"--ntasks={t.devices * t.num_nodes}",
        f"--ntasks-per-node={t.devices}",
        "--kill-on-bad-exit=1",
        sys.executable,
        "-m",
        ENTRYPOINT,
        str(run_dir),
    ]


# ---------------------------------------------------------------------------------- launch
def _failure_message(run_dir: Path, returncode: int, tail: deque[str]) -> str:
    # the first rank to fail first: the others usually fail because it went away
    errors = sorted((run_dir / "errors").glob("rank-*.txt"), key=lambda f: f.stat().st_mtime_ns)
    last_lines = [(f.read_text().strip().splitlines() or ["(no message)"])[-1] for f in errors]
    parts = [f"distributed training failed (launcher exit status {returncode})"]
    if errors:
        parts[0] += f"; first failure on {errors[0].stem}: {last_lines[0]}"
        parts += [f"{f.stem}: {line}" for f, line in zip(errors[1:], last_lines[1:], strict=True)]
        parts.append(f"--- traceback of {errors[0].stem} ---\n{errors[0].read_text().strip()}")
    else:
        parts.append("no rank reported an error (killed, or failed before starting)")
    parts.append(f"--- last {len(tail)} lines of the ranks' output (all in {run_dir / 'logs'}) ---")
    parts.extend(tail)
    return "\n".join(parts)


def launch(
    model: nn.Module,
    train_set: pd.DataFrame,
    validation_set: pd.DataFrame | None,
    parameters: FitParams,
    task: TaskParams,
) -> tuple[nn.Module, pd.DataFrame]:
    """Train on ``devices * num_nodes`` processes and return (trained model, history).

    Args:
        model: The initial model.
        train_set: Converted training rows.
        validation_set: Converted validation rows (or ``None``).
        parameters: The validated ``fit`` parameters.
        task: The validated ``task`` group.

    Raises:
        DistributedTrainingError: A rank failed, or no result was written.
    """
    p = parameters
    t = p.trainer
    run_dir = run_dir_for(p)
    p = world_params(p, t.devices * t.num_nodes, t.devices)
    write_inputs(run_dir, model, train_set, validation_set, p, task)
    cmd = srun_command(p, run_dir) if t.launcher == "srun" else torchrun_command(p, run_dir)
    if t.num_nodes > 1 and t.launcher == "torchrun":  # the same command on the other nodes
        log.info(
            "multi-node run: on each of the other %d nodes, start\n  %s",
            t.num_nodes - 1,
            " ".join(["python", *cmd[1:]]),
        )
    log.info(
        "training on %d processes (%s): %s",
        t.devices * t.num_nodes,
        p.trainer.strategy,
        " ".join(cmd),
    )
    tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with (run_dir / "logs" / "launch.log").open("w") as out:
        with subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, bufsize=1
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line)
                tail.append(line.rstrip("\n"))
                # markup off: Kedro's rich handler would read "[...]" in a line as markup
                log.info("| %s", line.rstrip("\n"), extra={"markup": False})
        returncode = proc.returncode
    if returncode != 0:
        raise DistributedTrainingError(_failure_message(run_dir, returncode, tail))
    if not (run_dir / "result").is_dir():
        raise DistributedTrainingError(
            f"the ranks exited cleanly but rank 0 wrote no result in {run_dir / 'result'}"
        )
    trained = from_artifact(load_artifact(str(run_dir / "result" / "trained_model"))).train()
    history = pd.read_parquet(run_dir / "result" / "history.parquet")
    reports = [json.loads(f.read_text()) for f in (run_dir / "ranks").glob("rank-*.json")]
    for report in sorted(reports, key=lambda r: r["rank"]):
        log.info("rank %(rank)d on %(host)s: %(steps)d optimizer steps, %(rows)d rows", report)
    shutil.rmtree(run_dir / "inputs")
    shutil.rmtree(run_dir / "result")
    return trained, history
