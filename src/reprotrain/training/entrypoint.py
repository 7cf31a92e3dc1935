"""The training entry point that runs on every rank: ``python -m reprotrain.training.entrypoint RUN``.

``reprotrain.training.launcher.launch`` (the Kedro ``train_model`` node) writes the run folder
and starts this module through torchrun or srun. It can also be started by hand or by a cluster
scheduler on a run folder that a launcher wrote, e.g. on the other nodes of a multi-node run::

    python -m torch.distributed.run --nnodes=2 --nproc-per-node=8 --rdzv-backend=c10d \\
        --rdzv-endpoint=node0:29500 --rdzv-id=reprotrain -m reprotrain.training.entrypoint RUN
    srun --ntasks-per-node=8 python -m reprotrain.training.entrypoint RUN

Ranks come from torchrun's environment or, when it is not set, SLURM's (``distributed_env``).
Lightning joins the existing processes and starts none. Only rank 0 writes the result; a rank
that fails writes its traceback to ``RUN/errors/rank-<k>.txt`` and exits non-zero.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("reprotrain.training.entrypoint")

FAIL_RANK_ENV = "REPROTRAIN_FAIL_RANK"
"""Fault injection for tests: the rank named here raises after its first training batch."""


def _slurm_root_node(environ: Mapping[str, str]) -> str:
    """Rank 0's host: the first node of the job step (not the node `srun` was typed on)."""
    nodes = environ.get("SLURM_STEP_NODELIST") or environ.get("SLURM_NODELIST")
    if not nodes:
        return "127.0.0.1"
    from lightning.fabric.plugins.environments import SLURMEnvironment

    return SLURMEnvironment.resolve_root_node_address(nodes)


def distributed_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The torchrun variables for this process, taken from torchrun's or SLURM's environment.

    A single process with neither gets a world of one.
    """
    torchrun = "RANK" in environ and "WORLD_SIZE" in environ
    if "SLURM_PROCID" in environ and not torchrun:
        world = int(environ["SLURM_NTASKS"])
        nodes = int(environ.get("SLURM_NNODES", environ.get("SLURM_JOB_NUM_NODES", 1)))
        job = int(environ.get("SLURM_JOB_ID", 0))
        env = {
            "RANK": environ["SLURM_PROCID"],
            "WORLD_SIZE": str(world),
            "LOCAL_RANK": environ.get("SLURM_LOCALID", "0"),
            "LOCAL_WORLD_SIZE": str(world // nodes),
            "GROUP_RANK": environ.get("SLURM_NODEID", "0"),
            "MASTER_ADDR": environ.get("MASTER_ADDR", _slurm_root_node(environ)),
            "MASTER_PORT": environ.get("MASTER_PORT", str(15000 + job % 20000)),
        }
    else:
        given = environ if torchrun else {}  # neither: a world of one
        world = int(given.get("WORLD_SIZE", 1))
        local_world = int(given.get("LOCAL_WORLD_SIZE", world))
        rank = int(given.get("RANK", 0))
        env = {
            "RANK": str(rank),
            "WORLD_SIZE": str(world),
            "LOCAL_RANK": given.get("LOCAL_RANK", str(rank % local_world)),
            "LOCAL_WORLD_SIZE": str(local_world),
            "GROUP_RANK": given.get("GROUP_RANK", str(rank // local_world)),
        }
    env.setdefault("MASTER_ADDR", environ.get("MASTER_ADDR", "127.0.0.1"))
    env.setdefault("MASTER_PORT", environ.get("MASTER_PORT", "29500"))
    return env


def _report_callback(run_dir: Path, env: Mapping[str, str], fail_rank: int | None) -> Any:
    """A callback that writes ``ranks/rank-<k>.json`` after training (and injects a failure)."""
    from lightning.pytorch.callbacks import Callback

    rank = int(env["RANK"])

    class RankReport(Callback):
        def __init__(self) -> None:
            self.batches = 0
            self.rows = 0

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self.batches += 1
            self.rows += len(batch["labels"])
            if fail_rank == rank:
                raise RuntimeError(f"injected failure on rank {rank} (${FAIL_RANK_ENV})")

        def on_train_end(self, trainer, pl_module) -> None:
            report = {
                "rank": rank,
                "world_size": int(env["WORLD_SIZE"]),
                "local_rank": int(env["LOCAL_RANK"]),
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "argv": sys.argv,
                "steps": trainer.global_step,
                "batches": self.batches,
                "rows": self.rows,
            }
            path = run_dir / "ranks" / f"rank-{rank}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(report, indent=2))

    return RankReport()


def train(run_dir: Path, env: Mapping[str, str]) -> None:
    """Train this rank on the run folder's inputs; rank 0 writes the result."""
    from reprotrain.training.launcher import (
        model_from_checkpoint,
        read_inputs,
        world_params,
        write_result,
    )
    from reprotrain.training.trainer import fit

    rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
    model, train_set, validation_set, p, task = read_inputs(run_dir)
    p = world_params(p, world, int(env["LOCAL_WORLD_SIZE"]))
    fail = os.environ.get(FAIL_RANK_ENV)
    callback = _report_callback(run_dir, env, int(fail) if fail else None)
    log.info(
        "rank %d of %d (local rank %s) on %s: strategy %s",
        rank,
        world,
        env["LOCAL_RANK"],
        socket.gethostname(),
        p.trainer.strategy,
    )
    trained, history = fit(
        model, train_set, validation_set, p, task, rank=rank, world_size=world, callbacks=[callback]
    )
    if rank == 0:
        if p.trainer.strategy == "fsdp":
            trained = model_from_checkpoint(run_dir, p)
        write_result(run_dir, trained, history)
        log.info("rank 0 wrote the result to %s", run_dir / "result")


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, set up this rank's environment and logging, and train."""
    parser = argparse.ArgumentParser(
        prog="python -m reprotrain.training.entrypoint", description=__doc__.splitlines()[0]
    )
    parser.add_argument("run_dir", type=Path, help="run folder written by the launcher")
    args = parser.parse_args(argv)
    run_dir: Path = args.run_dir.resolve()
    if not (run_dir / "inputs" / "params.json").is_file():
        parser.error(f"{run_dir} holds no inputs/params.json: not a run folder")
    env = distributed_env(os.environ)
    os.environ.update(env)  # before Lightning is imported: it reads the rank at import time
    rank = int(env["RANK"])
    (run_dir / "logs").mkdir(exist_ok=True)
    fmt = f"%(asctime)s [rank {rank}] %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(
        level=logging.INFO,
        format=fmt,
        handlers=[
            logging.StreamHandler(sys.stderr),
            logging.FileHandler(run_dir / "logs" / f"rank-{rank}.log", mode="w"),
        ],
    )
    try:
        train(run_dir, env)
    except BaseException as err:
        log.error("rank %d failed: %s: %s", rank, type(err).__name__, err)
        errors = run_dir / "errors"
        errors.mkdir(exist_ok=True)
        (errors / f"rank-{rank}.txt").write_text(traceback.format_exc())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
