"""One training variant in its own process; prints one JSON line with its figures.

Run by ``benchmarks/run.py`` (never imported by it, so each variant's imports and memory are
its own)::

    python benchmarks/train_worker.py throughput {project,hand,hf} WORKDIR
    python benchmarks/train_worker.py overhead {project,hand,hf} WORKDIR
    python benchmarks/train_worker.py quality {project,hf} WORKDIR

``throughput``: 40 optimiser steps at batch 16 over the same 640 rows, in the same batches
(the project's length-grouped order, computed by ``run.py`` and stored in WORKDIR), AdamW
(lr 5e-5, weight decay 0.01 on weights only), 4 warmup steps then linear decay, gradient
clipping at 1.0, fp32, 2 threads. Model loading and tokenising are outside the timed spans:
``steady_s`` from the end of the first optimiser step to the end of the 40th (the first step
holds one-off costs), ``step_s`` from the start of the epoch. Peak RSS is the
whole process's high-water mark (``ru_maxrss``), imports included; the growth from just
before the model load is reported too, and the median time between two optimiser steps.

``overhead``: the same runs with a near-zero-cost model (a one-layer BERT of width 4, random
weights) in place of MiniLM: the median time between two steps is then the framework's own work
per step (loader, hooks, logging, metrics, clipping, optimiser bookkeeping).

``quality``: the project's defaults against Hugging Face ``Trainer``'s defaults on the full
training split, validating on a fixed subset every 320 training samples; wall time from the
start of training to the first validation accuracy >= 0.80 (validation time included).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = "sentence-transformers/all-MiniLM-L6-v2"
THREADS = 2
STEPS = int(os.environ.get("BENCH_STEPS", "40"))  # run.py's overhead row runs more
BATCH = 16
LR = 5e-5
WEIGHT_DECAY = 0.01
WARMUP = 4
CLIP = 1.0
TARGET_ACC = 0.80
EVAL_EVERY_SAMPLES = 320
QUALITY_CAP_S = float(os.environ.get("BENCH_QUALITY_CAP_S", "420"))
# ``overhead``: every variant trains tiny_model() instead of MiniLM (a script, never imported)
TINY = sys.argv[1:2] == ["overhead"]


def maxrss_mib() -> float:
    """This process's peak resident set size so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fit_defaults(workdir: Path) -> dict[str, Any]:
    """The project's ``fit`` parameters as Kedro resolves them (written by ``run.py``)."""
    return json.loads((workdir / "fit_defaults.json").read_text())


def task_defaults(workdir: Path) -> Any:
    """The project's ``task`` group, validated (written by ``run.py``)."""
    from reprotrain.params import parse

    return parse("task", json.loads((workdir / "task.json").read_text()))


def ordered_rows(workdir: Path):
    """The 640 benchmark rows, reordered so that consecutive runs of 16 are the project's batches."""
    import pandas as pd

    table = pd.read_parquet(workdir / "rows.parquet")
    order = json.loads((workdir / "batches.json").read_text())
    flat = [i for batch in order for i in batch]
    return table, table.iloc[flat].reset_index(drop=True)


def tiny_model():
    """A one-layer BERT of width 4 (MiniLM's vocabulary): almost no arithmetic per step."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(42)
    config = BertConfig(
        hidden_size=4, num_hidden_layers=1, num_attention_heads=1, intermediate_size=4
    )
    return BertForSequenceClassification(config)


def step_figures(stamps: list[float]) -> dict[str, float]:
    """From the end time of each optimiser step: the steady span and the median step.

    ``steady_s`` runs from the end of the first step to the end of the last, so that one-off
    first-step costs stay out of it (Lightning's first ``self.log`` spends ~0.2 s in abstract
    base class checks over torchmetrics' classes; every variant allocates its optimiser state).
    """
    import itertools
    import statistics

    return {
        "steady_s": stamps[-1] - stamps[0],
        "step_ms_median": 1000 * statistics.median(b - a for a, b in itertools.pairwise(stamps)),
    }


def load_hf_model():
    """The default MiniLM with a fresh 2-label head, seeded (``tiny_model()`` under TINY)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from reprotrain.pretrained import resolve_checkpoint

    if TINY:
        return tiny_model()
    torch.manual_seed(42)
    return AutoModelForSequenceClassification.from_pretrained(
        resolve_checkpoint(CHECKPOINT), num_labels=2
    )


# ------------------------------------------------------------------------------- throughput
def throughput_project(workdir: Path) -> dict[str, Any]:
    """The project's ``fit`` (its Lightning system, loaders, callbacks and CSV logger)."""
    import lightning as L

    from reprotrain.models import build_model
    from reprotrain.params import parse
    from reprotrain.training.trainer import fit

    raw = fit_defaults(workdir)
    raw["data"] = {**raw["data"], "batch_size": BATCH}
    raw["schedule"] = {**raw["schedule"], "warmup_steps": WARMUP}
    raw["trainer"] = {
        **raw["trainer"],
        "max_steps": STEPS,
        "num_threads": THREADS,
        "precision": "32-true",
        "accelerator": "cpu",
    }
    raw.update(
        checkpoint_dir=str(workdir / "project_ckpt"),
        log_dir=str(workdir / "project_logs"),
        best_checkpoint=None,
    )
    p = parse("fit", raw)
    table, _ = ordered_rows(workdir)

    class StepTimer(L.Callback):
        def __init__(self) -> None:
            self.t0 = self.t1 = 0.0
            self.steps = self.tokens = 0
            self.stamps: list[float] = []

        def on_train_epoch_start(self, trainer, pl_module) -> None:
            self.t0 = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self.steps += 1
            self.tokens += batch["input_ids"].numel()
            self.t1 = time.perf_counter()
            self.stamps.append(self.t1)

    rss_before = maxrss_mib()
    task = task_defaults(workdir)
    model = tiny_model() if TINY else build_model(p, task, table)
    timer = StepTimer()
    start = time.perf_counter()
    fit(model, table, None, p, task, callbacks=[timer])
    total = time.perf_counter() - start
    return {
        "steps": timer.steps,
        "padded_tokens": timer.tokens,
        "step_s": timer.t1 - timer.t0,
        **step_figures(timer.stamps),
        "call_s": total,
        "rss_before_model_mib": rss_before,
        "peak_rss_mib": maxrss_mib(),
    }


def throughput_hand(workdir: Path) -> dict[str, Any]:
    """A plain PyTorch loop over the same batches and the same fused AdamW as the project.

    Same optimiser kernel as the project and HF Trainer, so the ratio measures framework
    overhead only, not the choice of kernel.
    """
    import numpy as np
    import torch

    torch.set_num_threads(THREADS)
    _, rows = ordered_rows(workdir)
    ids = [np.asarray(x, dtype=np.int64) for x in rows["input_ids"]]
    labels = torch.as_tensor(rows["label"].to_numpy(), dtype=torch.int64)

    rss_before = maxrss_mib()
    model = load_hf_model()
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "norm" not in n.lower()]
    plain = [
        p for n, p in model.named_parameters() if not (p.ndim >= 2 and "norm" not in n.lower())
    ]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": plain, "weight_decay": 0.0}],
        lr=LR,
        fused=True,
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: (s + 1) / WARMUP if s < WARMUP else max(0.0, (STEPS - s) / (STEPS - WARMUP)),
    )
    steps = tokens = 0
    stamps: list[float] = []
    start = t0 = time.perf_counter()
    for b in range(STEPS):
        chunk = ids[b * BATCH : (b + 1) * BATCH]
        width = max(len(x) for x in chunk)
        input_ids = torch.zeros(len(chunk), width, dtype=torch.int64)
        mask = torch.zeros(len(chunk), width, dtype=torch.int64)
        for r, x in enumerate(chunk):
            input_ids[r, : len(x)] = torch.from_numpy(x)
            mask[r, : len(x)] = 1
        logits = model(input_ids=input_ids, attention_mask=mask).logits
        loss = torch.nn.functional.cross_entropy(logits, labels[b * BATCH : (b + 1) * BATCH])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if (b + 1) % 10 == 0:
            loss.item()  # what a loop that logs every 10 steps reads back
        steps += 1
        tokens += input_ids.numel()
        stamps.append(time.perf_counter())
    t1 = time.perf_counter()
    return {
        "steps": steps,
        "padded_tokens": tokens,
        "step_s": t1 - t0,
        **step_figures(stamps),
        "call_s": t1 - start,
        "rss_before_model_mib": rss_before,
        "peak_rss_mib": maxrss_mib(),
    }


def _hf_dataset(table) -> list[dict[str, Any]]:
    return [
        {"input_ids": list(map(int, x)), "labels": int(y)}
        for x, y in zip(table["input_ids"], table["label"], strict=True)
    ]


def throughput_hf(workdir: Path) -> dict[str, Any]:
    """Hugging Face ``Trainer`` with equivalent arguments, fed the same batches in order."""
    import torch
    from torch.utils.data import SequentialSampler
    from transformers import (
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    from reprotrain.pretrained import resolve_checkpoint

    torch.set_num_threads(THREADS)
    _, rows = ordered_rows(workdir)
    dataset = _hf_dataset(rows)
    tokenizer = AutoTokenizer.from_pretrained(resolve_checkpoint(CHECKPOINT))
    pad = DataCollatorWithPadding(tokenizer)
    counts = {"tokens": 0}

    def collate(features: list[dict[str, Any]]) -> dict[str, Any]:
        batch = pad(features)
        counts["tokens"] += batch["input_ids"].numel()
        return batch

    class InOrder(Trainer):
        def _get_train_sampler(self, *args: Any, **kwargs: Any):
            return SequentialSampler(self.train_dataset)

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.t0 = self.t1 = 0.0
            self.steps = 0
            self.stamps: list[float] = []

        def on_epoch_begin(self, args, state, control, **kwargs) -> None:
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs) -> None:
            self.steps += 1
            self.t1 = time.perf_counter()
            self.stamps.append(self.t1)

    args = TrainingArguments(
        output_dir=str(workdir / "hf_out"),
        per_device_train_batch_size=BATCH,
        max_steps=STEPS,
        learning_rate=LR,
        weight_decay=WEIGHT_DECAY,
        warmup_steps=WARMUP,
        lr_scheduler_type="linear",
        max_grad_norm=CLIP,
        logging_steps=10,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=42,
        data_seed=42,
        dataloader_num_workers=0,
    )
    rss_before = maxrss_mib()
    model = load_hf_model()
    timer = StepTimer()
    trainer = InOrder(
        model=model, args=args, train_dataset=dataset, data_collator=collate, callbacks=[timer]
    )
    start = time.perf_counter()
    trainer.train()
    total = time.perf_counter() - start
    return {
        "steps": timer.steps,
        "padded_tokens": counts["tokens"],
        "step_s": timer.t1 - timer.t0,
        **step_figures(timer.stamps),
        "call_s": total,
        "optim": str(args.optim),
        "rss_before_model_mib": rss_before,
        "peak_rss_mib": maxrss_mib(),
    }


# ---------------------------------------------------------------------------- time to quality
def _quality_sets(workdir: Path):
    import pandas as pd

    train = pd.read_parquet(ROOT / "data/05_model_input/reviews/train.parquet")
    val = pd.read_parquet(workdir / "val_subset.parquet")
    return train, val


def quality_project(workdir: Path) -> dict[str, Any]:
    """The project's defaults (batch 32, length grouping, 20 warmup steps, linear decay)."""
    import lightning as L

    from reprotrain.models import build_model
    from reprotrain.params import parse
    from reprotrain.training.trainer import fit

    raw = fit_defaults(workdir)
    every = max(1, EVAL_EVERY_SAMPLES // raw["data"]["batch_size"])
    raw["trainer"] = {**raw["trainer"], "val_check_interval": every, "num_threads": THREADS}
    raw.update(
        checkpoint_dir=str(workdir / "q_project_ckpt"),
        log_dir=str(workdir / "q_project_logs"),
        best_checkpoint=None,
    )
    p = parse("fit", raw)
    train, val = _quality_sets(workdir)
    curve: list[tuple[float, int, float]] = []
    state: dict[str, Any] = {"t0": 0.0, "hit": None}

    class Watch(L.Callback):
        def on_train_start(self, trainer, pl_module) -> None:
            state["t0"] = time.perf_counter()

        def on_validation_end(self, trainer, pl_module) -> None:
            acc = float(trainer.callback_metrics["val/acc"])
            elapsed = time.perf_counter() - state["t0"]
            curve.append((round(elapsed, 2), trainer.global_step, round(acc, 4)))
            if acc >= TARGET_ACC and state["hit"] is None:
                state["hit"] = (elapsed, trainer.global_step)
            if state["hit"] is not None or elapsed > QUALITY_CAP_S:
                trainer.should_stop = True

    task = task_defaults(workdir)
    model = build_model(p, task, train)
    fit(model, train, val, p, task, callbacks=[Watch()])
    hit = state["hit"]
    return {
        "seconds": hit[0] if hit else None,
        "step": hit[1] if hit else None,
        "batch_size": p.data.batch_size,
        "eval_every_steps": every,
        "curve": curve,
    }


def quality_hf(workdir: Path) -> dict[str, Any]:
    """Hugging Face ``Trainer`` with its defaults (batch 8, no warmup, no length grouping)."""
    import numpy as np
    import torch
    from transformers import (
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    from reprotrain.pretrained import resolve_checkpoint

    torch.set_num_threads(THREADS)
    train, val = _quality_sets(workdir)
    tokenizer = AutoTokenizer.from_pretrained(resolve_checkpoint(CHECKPOINT))
    defaults = TrainingArguments(output_dir=str(workdir / "hf_q"), report_to="none")
    every = max(1, EVAL_EVERY_SAMPLES // defaults.per_device_train_batch_size)
    args = TrainingArguments(
        output_dir=str(workdir / "hf_q"),
        report_to="none",
        use_cpu=True,
        seed=42,
        eval_strategy="steps",
        eval_steps=every,
    )
    curve: list[tuple[float, int, float]] = []
    state: dict[str, Any] = {"t0": 0.0, "hit": None}

    class Watch(TrainerCallback):
        def on_train_begin(self, args, state_, control, **kwargs) -> None:
            state["t0"] = time.perf_counter()

        def on_evaluate(self, args, state_, control, metrics=None, **kwargs) -> None:
            acc = float((metrics or {}).get("eval_accuracy", 0.0))
            elapsed = time.perf_counter() - state["t0"]
            curve.append((round(elapsed, 2), state_.global_step, round(acc, 4)))
            if acc >= TARGET_ACC and state["hit"] is None:
                state["hit"] = (elapsed, state_.global_step)
            if state["hit"] is not None or elapsed > QUALITY_CAP_S:
                control.should_training_stop = True

    def accuracy(pred) -> dict[str, float]:
        return {"accuracy": float((np.argmax(pred.predictions, -1) == pred.label_ids).mean())}

    model = load_hf_model()
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=_hf_dataset(train),
        eval_dataset=_hf_dataset(val),
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=accuracy,
        callbacks=[Watch()],
    )
    trainer.train()
    hit = state["hit"]
    return {
        "seconds": hit[0] if hit else None,
        "step": hit[1] if hit else None,
        "batch_size": args.per_device_train_batch_size,
        "eval_every_steps": every,
        "optim": str(args.optim),
        "curve": curve,
    }


VARIANTS = {
    ("throughput", "project"): throughput_project,
    ("throughput", "hand"): throughput_hand,
    ("throughput", "hf"): throughput_hf,
    ("overhead", "project"): throughput_project,
    ("overhead", "hand"): throughput_hand,
    ("overhead", "hf"): throughput_hf,
    ("quality", "project"): quality_project,
    ("quality", "hf"): quality_hf,
}


def main() -> None:
    """``train_worker.py KIND VARIANT WORKDIR``: run one variant, print its figures as JSON."""
    kind, variant, workdir = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    sys.path.insert(0, str(ROOT / "src"))
    os.chdir(workdir)  # Lightning and HF write nothing into the checkout
    result = VARIANTS[(kind, variant)](workdir)
    print("RESULT " + json.dumps({"kind": kind, "variant": variant, **result}))


if __name__ == "__main__":
    main()
