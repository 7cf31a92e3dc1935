"""Train the default task on one GPU and report samples/s, peak memory and model FLOPs utilisation.

Usage (see ``gpu_check.sh``, which prepares the data first)::

    python benchmarks/gpu_check.py [--steps 300] [--warmup 30] [--precision bf16-mixed]
                                   [--peak-tflops 989] [--env base]

MFU = achieved model FLOP/s / peak dense FLOP/s, with training FLOPs counted as
6 x parameters x tokens (forward 2, backward 4 per parameter and token), over the real,
non-padding tokens of each batch (attention masks summed); embedding tables, which do no
matrix multiply, are left out of the parameter count (both counts are printed). The attention
score FLOPs are left out too, so the figure is slightly conservative. Lightning's own FLOP
table is not used. The default peak is the H200's (= H100 SXM) dense BF16 tensor-core peak,
~989 TFLOP/s.

Without a GPU it runs a few CPU steps at 32-bit (``--cpu-fallback``, automatic) so that the
script itself can be checked; its MFU line then says n/a.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from lightning.pytorch.callbacks import Callback

from reprotrain.models import build_model
from reprotrain.params import parse
from reprotrain.training.trainer import fit


class Throughput(Callback):
    """Times optimizer steps after ``warmup`` and counts their samples and non-pad tokens."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.samples = self.tokens = self.steps = 0
        self.start: float | None = None
        self.elapsed = 0.0

    def _sync(self) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.start is None and trainer.global_step >= self.warmup:
            self._sync()
            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.start is None:
            return
        self.steps += 1
        self.samples += len(batch["labels"])
        mask = batch.get("attention_mask")
        self.tokens += int(mask.sum()) if mask is not None else len(batch["labels"])

    def on_train_end(self, trainer, pl_module) -> None:
        self._sync()
        if self.start is not None:
            self.elapsed = time.perf_counter() - self.start


def load_fit_inputs(env: str, train_path: Path | None) -> tuple[dict, dict, pd.DataFrame]:
    """The ``fit`` and ``task`` groups of ``conf/<env>`` and the training split (the catalog's)."""
    from kedro.config import OmegaConfigLoader

    from reprotrain.settings import load_parameters

    loader = OmegaConfigLoader("conf", base_env="base", default_run_env=env)
    params = load_parameters("fit", "conf", env)
    task = load_parameters("task", "conf", env)
    train_path = train_path or Path(loader["catalog"]["train_set"]["filepath"])
    return params, task, pd.read_parquet(train_path)


def main() -> None:
    """Parse arguments, train, print the figures (and write them as JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="base", help="Kedro configuration environment")
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps to run")
    parser.add_argument("--warmup", type=int, default=30, help="steps excluded from timing")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="global batch (default: params)"
    )
    parser.add_argument("--precision", default="bf16-mixed")
    parser.add_argument(
        "--peak-tflops",
        type=float,
        default=989.0,
        help="dense peak of the GPU at --precision (H200/H100 SXM BF16: 989)",
    )
    parser.add_argument(
        "--cpu-fallback",
        action="store_true",
        help="run a few 32-bit CPU steps (automatic without a GPU)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument(
        "--train-set",
        type=Path,
        default=None,
        help="converted training table (default: the catalog's train_set)",
    )
    parser.add_argument(
        "--checkpoint", default=None, help="model folder or hub id (default: task.model_checkpoint)"
    )
    args = parser.parse_args()

    cpu = args.cpu_fallback or not torch.cuda.is_available()
    steps, warmup = (5, 2) if cpu else (args.steps, args.warmup)
    raw, task_raw, train_set = load_fit_inputs(args.env, args.train_set)
    if args.checkpoint:
        task_raw = {**task_raw, "model_checkpoint": args.checkpoint}
    batch = args.batch_size or raw["data"]["batch_size"]
    work = Path(tempfile.mkdtemp(prefix="gpu_check-"))
    raw = {
        **raw,
        "best_checkpoint": None,
        "checkpoint_dir": str(work / "ck"),
        "log_dir": str(work / "logs"),
        "resume": False,
        "data": {**raw["data"], "batch_size": batch, "train_subsample": None},
        "trainer": {
            **raw["trainer"],
            "accelerator": "cpu" if cpu else "gpu",
            "devices": 1,
            "strategy": "auto",
            "precision": "32-true" if cpu else args.precision,
            "max_steps": steps,
            "max_epochs": 1000,  # max_steps ends the run
            "enable_progress_bar": False,
            "deterministic": False,
            "early_stopping": None,
        },
    }
    task = parse("task", task_raw)
    p = parse("fit", raw, task)
    model = build_model(p, task, train_set)
    n_params = sum(t.numel() for t in model.parameters())
    n_embed = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding))
    meter = Throughput(warmup)
    fit(model, train_set, None, p, task, callbacks=[meter])

    flops_params = n_params - n_embed
    figures = {
        "device": torch.cuda.get_device_name() if not cpu else "cpu (fallback)",
        "precision": p.trainer.precision,
        "global_batch": batch,
        "timed_steps": meter.steps,
        "samples_per_s": meter.samples / meter.elapsed if meter.elapsed else float("nan"),
        "tokens_per_s": meter.tokens / meter.elapsed if meter.elapsed else float("nan"),
        "mean_tokens_per_sample": meter.tokens / max(1, meter.samples),
        "parameters": n_params,
        "non_embedding_parameters": flops_params,
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if not cpu else None,
    }
    achieved = 6 * flops_params * figures["tokens_per_s"]
    figures["model_tflops_per_s"] = achieved / 1e12
    figures["mfu"] = None if cpu else achieved / (args.peak_tflops * 1e12)
    figures["mfu_all_parameters"] = (
        None if cpu else 6 * n_params * figures["tokens_per_s"] / (args.peak_tflops * 1e12)
    )
    for key, value in figures.items():
        shown = f"{value:.4g}" if isinstance(value, float) else ("n/a" if value is None else value)
        print(f"{key:>26}: {shown}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
