"""Benchmarks side by side with their references: ``make bench`` (or ``python benchmarks/run.py``).

Every figure is a ratio to a reference measured in the same run, with the variants interleaved
(round-robin, order rotated each round), at least three rounds, reported as medians with
min–max. Writes ``benchmarks/RESULTS.md`` (tables, command, environment, and the hand-written
notes of ``benchmarks/analysis.md``) and ``benchmarks/results.json`` (every raw figure).

Options: ``--rounds N`` (default 3; env ``BENCH_ROUNDS``), ``--only train,quality,convert,
startup,dvc`` (a subset, for a quick look; RESULTS.md is then written to ``--out``), and
``--wait-quiet`` (poll the 1-minute load until it is below 1.2, up to 15 minutes, first).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PY = sys.executable
HERE = Path(__file__).resolve().parent
ENV = {
    **os.environ,
    "HF_HUB_OFFLINE": "1",
    "KEDRO_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "PYTHONWARNINGS": "ignore",
}
os.environ.update({k: ENV[k] for k in ("HF_HUB_OFFLINE", "KEDRO_DISABLE_TELEMETRY")})
os.environ["TOKENIZERS_PARALLELISM"] = "false"
HEAVY = ("torch", "transformers", "lightning", "torchmetrics", "tokenizers", "sklearn")
ALL_ROWS = ("train", "convert", "startup", "dvc", "quality", "overhead")
OVERHEAD_STEPS = 300  # the overhead row's optimiser steps per run (the train row runs 40)


# ------------------------------------------------------------------------------------ helpers
def stats(values: Sequence[float | None]) -> dict[str, Any]:
    """Median, min, max and the raw values (``None`` entries, e.g. "never reached", dropped)."""
    vals = [v for v in values if v is not None]
    if not vals:
        return {"median": None, "min": None, "max": None, "values": list(values)}
    return {
        "median": statistics.median(vals),
        "min": min(vals),
        "max": max(vals),
        "values": list(values),
    }


def mean_ci(values: Sequence[float], level: float = 0.95, resamples: int = 10_000) -> list[float]:
    """``[mean, low, high]``: the mean and its bootstrap percentile interval (seeded)."""
    rng = random.Random(0)
    means = sorted(statistics.fmean(rng.choices(values, k=len(values))) for _ in range(resamples))
    tail = int(resamples * (1 - level) / 2)
    return [statistics.fmean(values), means[tail], means[resamples - 1 - tail]]


def rotated(variants: Sequence[str], r: int) -> list[str]:
    """The variants in round ``r``'s order (rotated, so none always runs first)."""
    k = r % len(variants)
    return [*variants[k:], *variants[:k]]


def loadavg() -> float:
    """The 1-minute load average."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def wait_quiet(limit_s: float = 900, below: float = 1.2, every_s: float = 30) -> float:
    """Poll the load until it drops below ``below`` or ``limit_s`` passes; return the load."""
    deadline = time.time() + limit_s
    while (load := loadavg()) >= below and time.time() < deadline:
        print(f"  load {load:.2f} >= {below}: waiting", flush=True)
        time.sleep(every_s)
    return loadavg()


def timed(
    cmd: Sequence[str] | str, cwd: Path, env: dict[str, str] | None = None, **kw: Any
) -> tuple[float, subprocess.CompletedProcess]:
    """Wall time of a subprocess (raises with its output if it fails)."""
    start = time.perf_counter()
    proc = subprocess.run(
        check=False, args=cmd, cwd=cwd, env=env or ENV, capture_output=True, text=True, **kw
    )
    elapsed = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"{cmd} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return elapsed, proc


def environment() -> dict[str, Any]:
    """CPU model, cores, library versions, the git commit and the load."""
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    versions = {}
    for dist in ("torch", "lightning", "transformers", "accelerate", "tokenizers", "kedro", "dvc"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    commit = subprocess.run(
        check=False,
        args=["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    dirty = bool(
        subprocess.run(
            check=False,
            args=["git", "status", "--porcelain", "src"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "git": f"{commit}{' + uncommitted changes in src/' if dirty else ''}",
    }


# ---------------------------------------------------------------------------- data and setup
def ensure_model_input() -> None:
    """Write the raw data and run clean/convert/split if the model input is missing."""
    split = ROOT / "data/05_model_input/reviews"
    if all((split / f"{s}.parquet").is_file() for s in ("train", "validation", "test")):
        return
    print("preparing data: demo_data, kedro run --pipelines=clean,convert,split", flush=True)
    timed([PY, "-m", "reprotrain.demo_data", "--out", "data/01_raw"], ROOT)
    timed([str(BIN / "kedro"), "run", "--pipelines=clean,convert,split"], ROOT)


def prepare_training(work: Path) -> None:
    """The 640 rows, the project's batch order over them, and the fixed validation subset."""
    import numpy as np
    import pandas as pd

    sys.path.insert(0, str(ROOT / "src"))
    from reprotrain.settings import load_parameters
    from reprotrain.training.data import GroupedBatchSampler

    train = pd.read_parquet(ROOT / "data/05_model_input/reviews/train.parquet")
    rows = train.iloc[:640].reset_index(drop=True)
    rows.to_parquet(work / "rows.parquet")
    lengths = np.fromiter(map(len, rows["input_ids"]), dtype=np.int64, count=len(rows))
    sampler = GroupedBatchSampler(lengths, 16, shuffle=True, group_by_length=True, seed=42)
    sampler.set_epoch(0)  # what Lightning does before the first epoch
    (work / "batches.json").write_text(json.dumps(list(sampler)))
    val = pd.read_parquet(ROOT / "data/05_model_input/reviews/validation.parquet")
    val.iloc[:256].to_parquet(work / "val_subset.parquet")
    (work / "fit_defaults.json").write_text(json.dumps(load_parameters("fit", ROOT / "conf")))
    (work / "task.json").write_text(json.dumps(load_parameters("task", ROOT / "conf")))


def run_worker(kind: str, variant: str, work: Path, steps: int | None = None) -> dict[str, Any]:
    """Run one variant of ``train_worker.py`` in a fresh process; return its figures."""
    env = {**ENV, "BENCH_STEPS": str(steps)} if steps else None
    wall, proc = timed([PY, str(HERE / "train_worker.py"), kind, variant, str(work)], work, env)
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    result["process_wall_s"] = wall
    print(
        f"  {kind:<10} {variant:<8} {json.dumps({k: v for k, v in result.items() if k != 'curve'})}",
        flush=True,
    )
    return result


# ----------------------------------------------------------------------------------- row 1, 2
def bench_training(work: Path, rounds: int) -> dict[str, Any]:
    """Throughput and peak RSS: project fit() vs hand-written loop vs HF Trainer."""
    variants = ["project", "hand", "hf"]
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    tiny: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for r in range(rounds):
        for v in rotated(variants, r):
            runs[v].append(run_worker("throughput", v, work))
            tiny[v].append(run_worker("overhead", v, work))
    # steady: from the end of the first optimiser step to the end of the last
    sps = {v: [(x["steps"] - 1) * 16 / x["steady_s"] for x in runs[v]] for v in variants}
    whole = {v: [x["steps"] * 16 / x["step_s"] for x in runs[v]] for v in variants}
    step_ms = {v: [x["step_ms_median"] for x in runs[v]] for v in variants}
    work_ms = {v: [x["step_ms_median"] for x in tiny[v]] for v in variants}
    rss = {v: [x["peak_rss_mib"] for x in runs[v]] for v in variants}
    grow = {v: [x["peak_rss_mib"] - x["rss_before_model_mib"] for x in runs[v]] for v in variants}
    out: dict[str, Any] = {"runs": runs, "overhead_runs": tiny}
    for v in variants:
        out[f"samples_per_s_{v}"] = stats(sps[v])
        out[f"samples_per_s_whole_{v}"] = stats(whole[v])
        out[f"step_ms_{v}"] = stats(step_ms[v])
        out[f"framework_ms_{v}"] = stats(work_ms[v])
        out[f"peak_rss_mib_{v}"] = stats(rss[v])
        out[f"rss_growth_mib_{v}"] = stats(grow[v])
    for ref in ("hand", "hf"):
        out[f"throughput_ratio_{ref}"] = stats(
            [a / b for a, b in zip(sps["project"], sps[ref], strict=True)]
        )
        out[f"throughput_whole_ratio_{ref}"] = stats(
            [a / b for a, b in zip(whole["project"], whole[ref], strict=True)]
        )
        # the project's extra framework work per step, as a share of a MiniLM step
        out[f"framework_share_{ref}"] = stats(
            [
                (a - b) / m
                for a, b, m in zip(
                    work_ms["project"], work_ms[ref], step_ms["project"], strict=True
                )
            ]
        )
        out[f"rss_ratio_{ref}"] = stats(
            [a / b for a, b in zip(rss["project"], rss[ref], strict=True)]
        )
        out[f"rss_growth_ratio_{ref}"] = stats(
            [a / b for a, b in zip(grow["project"], grow[ref], strict=True)]
        )
    return out


def bench_overhead(work: Path, rounds: int) -> dict[str, Any]:
    """Framework work per step, paired: the project against HF ``Trainer``.

    Both run the same kernels on the same batches, so their throughputs differ by their own
    work per step only: this row measures that difference directly, with a near-zero model
    and ``OVERHEAD_STEPS`` steps per run, in alternating pairs of fresh processes.
    """
    variants = ["project", "hf"]
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for r in range(rounds):
        for v in rotated(variants, r):
            runs[v].append(run_worker("overhead", v, work, steps=OVERHEAD_STEPS))
    ms = {v: [x["step_ms_median"] for x in runs[v]] for v in variants}
    difference = [a - b for a, b in zip(ms["project"], ms["hf"], strict=True)]
    return {
        "runs": runs,
        "steps": OVERHEAD_STEPS,
        **{f"framework_ms_{v}": stats(ms[v]) for v in variants},
        "difference_ms": stats(difference),
        "difference_mean_ci_ms": mean_ci(difference),
        "project_lower_in": sum(d < 0 for d in difference),
    }


def bench_quality(work: Path, rounds: int) -> dict[str, Any]:
    """Wall time to 0.80 validation accuracy: project defaults vs HF Trainer defaults."""
    variants = ["project", "hf"]
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for r in range(rounds):
        for v in rotated(variants, r):
            runs[v].append(run_worker("quality", v, work))
    secs = {v: [x["seconds"] for x in runs[v]] for v in variants}
    ratios = [
        a / b if a is not None and b is not None else None
        for a, b in zip(secs["project"], secs["hf"], strict=True)
    ]
    return {
        "runs": runs,
        "seconds_project": stats(secs["project"]),
        "seconds_hf": stats(secs["hf"]),
        "ratio": stats(ratios),
    }


# ------------------------------------------------------------------------------------- row 3
def bench_convert(work: Path, rounds: int) -> dict[str, Any]:
    """The convert node (tokenizer load and Parquet write included) vs bare tokenizer calls."""
    import pandas as pd
    from transformers import AutoTokenizer

    from reprotrain.pipelines.convert.nodes import convert_table
    from reprotrain.pretrained import resolve_checkpoint
    from reprotrain.settings import load_parameters

    params = load_parameters("convert", ROOT / "conf")
    task = load_parameters("task", ROOT / "conf")
    cleaned = pd.read_parquet(ROOT / "data/02_intermediate/reviews/clean_table.parquet")
    texts = cleaned["text"].astype(str).tolist()
    kw = {"truncation": True, "max_length": task["max_length"]}

    def load() -> Any:
        checkpoint = resolve_checkpoint(task["model_checkpoint"])
        return AutoTokenizer.from_pretrained(checkpoint, use_fast=True)

    tokenizer = load()

    def node() -> None:
        convert_table(cleaned, params, task).to_parquet(work / "model_input.parquet")

    def batched() -> None:
        tokenizer(texts, **kw)

    def per_text() -> None:
        for t in texts:
            tokenizer(t, **kw)

    variants: dict[str, Callable[[], None]] = {
        "node": node,
        "bare_batched": batched,
        "per_text": per_text,
        "tokenizer_load": load,
    }
    node()  # warm: imports and file caches
    times: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(rounds):
        for v in rotated(list(variants), r):
            start = time.perf_counter()
            variants[v]()
            times[v].append(time.perf_counter() - start)
    out: dict[str, Any] = {
        "texts": len(texts),
        **{f"seconds_{v}": stats(t) for v, t in times.items()},
    }
    for ref in ("bare_batched", "per_text"):
        # speed ratio: the node's texts/s over the reference's (time ref / time node)
        out[f"speed_ratio_{ref}"] = stats(
            [b / a for a, b in zip(times["node"], times[ref], strict=True)]
        )
    print(
        f"  convert {json.dumps({k: v['median'] for k, v in out.items() if isinstance(v, dict)})}"
    )
    return out


# ------------------------------------------------------------------------------------- row 4
def scratch_project(work: Path) -> Path:
    """A copy of the project's config and input data, so timed runs write nothing shared."""
    proj = work / "project"
    if proj.exists():
        return proj
    proj.mkdir()
    shutil.copy(ROOT / "pyproject.toml", proj)
    shutil.copytree(ROOT / "conf", proj / "conf", ignore=shutil.ignore_patterns("local"))
    (proj / "conf/local").mkdir(exist_ok=True)
    for rel in (
        "data/01_raw/movie_reviews.csv",
        "data/02_intermediate/reviews/clean_table.parquet",
        "data/04_feature/reviews/model_input.parquet",
    ):
        (proj / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, proj / rel)
    # Kedro puts the project's src/ first on sys.path (and wants it inside the project)
    shutil.copytree(ROOT / "src", proj / "src", ignore=shutil.ignore_patterns("__pycache__"))
    return proj


BARE_SESSION = (
    "from kedro.framework.startup import bootstrap_project\n"
    "from kedro.framework.session import KedroSession\n"
    "bootstrap_project('.')\n"
    "with KedroSession.create(project_path='.') as s:\n"
    "    s.load_context()\n"
)


def imported_heavy(stderr: str) -> dict[str, Any]:
    """From ``-X importtime`` output: heavy packages present, and the slowest top-level imports."""
    cumulative: dict[str, int] = {}
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if m:
            name = m.group(4)
            top = name.split(".")[0]
            if len(m.group(3)) <= 1:  # a top-level import (depth 0)
                cumulative[top] = cumulative.get(top, 0) + int(m.group(2))
            cumulative.setdefault(f"seen:{top}", 0)
    seen = {k[5:] for k in cumulative if k.startswith("seen:")}
    slowest = sorted(
        ((k, v / 1e6) for k, v in cumulative.items() if not k.startswith("seen:")),
        key=lambda kv: -kv[1],
    )[:8]
    return {
        "heavy": [h for h in HEAVY if h in seen],
        "slowest_top_level_s": [(k, round(v, 3)) for k, v in slowest],
    }


def bench_startup(work: Path, rounds: int) -> dict[str, Any]:
    """``kedro run --pipelines=clean`` vs a bare KedroSession start, and each stage's imports."""
    proj = scratch_project(work)
    kedro = str(BIN / "kedro")
    variants = {
        "kedro_run_clean": [kedro, "run", "--pipelines=clean"],
        "bare_session": [PY, "-c", BARE_SESSION],
    }
    timed(variants["kedro_run_clean"], proj)  # warm file caches and .pyc
    times: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(rounds):
        for v in rotated(list(variants), r):
            times[v].append(timed(variants[v], proj)[0])
    out: dict[str, Any] = {f"seconds_{v}": stats(t) for v, t in times.items()}
    out["ratio"] = stats(
        [a / b for a, b in zip(times["kedro_run_clean"], times["bare_session"], strict=True)]
    )
    imports = {}
    for stage in ("clean", "convert", "split"):
        _, proc = timed(
            [PY, "-X", "importtime", "-m", "kedro", "run", f"--pipelines={stage}"], proj
        )
        imports[stage] = imported_heavy(proc.stderr)
    out["imports"] = imports
    print(f"  startup {json.dumps({k: v['median'] for k, v in out.items() if 'median' in v})}")
    print(f"  imports {json.dumps({k: v['heavy'] for k, v in imports.items()})}")
    return out


# ------------------------------------------------------------------------------------- row 5
def bench_dvc(rounds: int) -> dict[str, Any]:
    """No-op ``dvc repro`` in the checkout, if dvc.lock exists and every stage is up to date."""
    dvc = str(BIN / "dvc")
    if not (ROOT / "dvc.yaml").is_file() or not (ROOT / "dvc.lock").is_file():
        return {"pending": "dvc.lock does not exist yet: no full `dvc repro` has completed"}
    env_path = {**ENV, "PATH": f"{BIN}:{ENV.get('PATH', '')}"}
    status = subprocess.run(
        check=False,
        args=[dvc, "status", "--json"],
        cwd=ROOT,
        env=env_path,
        capture_output=True,
        text=True,
    )
    changed = json.loads(status.stdout or "{}") if status.returncode == 0 else None
    if changed is None or changed:
        why = status.stderr.strip()[-300:] if changed is None else ", ".join(sorted(changed))
        return {"pending": f"the pipeline is not up to date ({why}); a repro would run stages"}
    times: dict[str, list[float]] = {"repro": [], "dvc_version": []}
    for r in range(rounds):
        for v in rotated(list(times), r):
            cmd = [dvc, "repro"] if v == "repro" else [dvc, "version"]
            start = time.perf_counter()
            proc = subprocess.run(
                check=False, args=cmd, cwd=ROOT, env=env_path, capture_output=True, text=True
            )
            times[v].append(time.perf_counter() - start)
            if proc.returncode:
                return {"pending": f"`{' '.join(cmd[1:])}` failed: {proc.stderr.strip()[-300:]}"}
            if v == "repro" and "didn't change" not in proc.stdout + proc.stderr:
                if "Running stage" in proc.stdout:
                    return {"pending": "`dvc repro` ran stages: not a no-op"}
    out = {f"seconds_{v}": stats(t) for v, t in times.items()}
    out["ratio"] = stats([a / b for a, b in zip(times["repro"], times["dvc_version"], strict=True)])
    print(f"  dvc {json.dumps({k: v['median'] for k, v in out.items()})}")
    return out


# ----------------------------------------------------------------------------------- report
def fmt(s: dict[str, Any] | None, unit: str = "", digits: int = 2) -> str:
    """``median (min–max)``."""
    if not s or s.get("median") is None:
        return "n/a"
    f = f"{{:.{digits}f}}"
    return f"{f.format(s['median'])}{unit} ({f.format(s['min'])}–{f.format(s['max'])})"


def verdict(s: dict[str, Any] | None, ok: Callable[[float], bool]) -> str:
    """PASS / MISS on the median, or n/a."""
    if not s or s.get("median") is None:
        return "n/a"
    return "PASS" if ok(s["median"]) else "**MISS**"


def _pct(s: dict[str, Any]) -> dict[str, Any]:
    """A ``stats`` dict of shares, in per cent."""
    return {
        k: (100 * v if isinstance(v, float) and k in ("median", "min", "max") else v)
        for k, v in s.items()
    }


def _overhead_rows(results: dict[str, Any]) -> list[str]:
    """Row 1b: the paired framework-work difference, with its interval, against a MiniLM step."""
    o = results.get("overhead")
    if not o:
        return []
    mean, low, high = o["difference_mean_ci_ms"]
    step = ((results.get("train") or {}).get("step_ms_project") or {}).get("median")
    share = (
        f"; {100 * mean / step:+.3f} % ({100 * low / step:+.3f} to {100 * high / step:+.3f}) "
        f"of a MiniLM step ({step:.0f} ms)"
        if step
        else ""
    )
    n = len(o["difference_ms"]["values"])
    # the mean step over the whole span, epoch ends included: the project writes its
    # checkpoints at each epoch's end, the HF run saves nothing (save_strategy "no")
    spans = {
        v: stats([1000 * r["steady_s"] / (r["steps"] - 1) for r in o["runs"][v]])
        for v in ("project", "hf")
    }
    return [
        f"| 1 | Framework work per step, paired, near-zero model, {o['steps']} steps (ms, median "
        f"step) | {fmt(o['framework_ms_project'])} | HF Trainer {fmt(o['framework_ms_hf'])} "
        f"| project − HF: mean {mean:+.3f} ms (95 % CI {low:+.3f} to {high:+.3f}){share}; "
        f"project lower in {o['project_lower_in']} of {n} pairs "
        f"| ≤ 0: same kernels, so throughput ≥ HF | {'PASS' if high <= 0 else 'MISS'} |",
        f"| 1 | The same runs, mean step with epoch ends (ms) | {fmt(spans['project'])} "
        f"| HF Trainer {fmt(spans['hf'])} | the project writes its checkpoints at each of the "
        f"{o['steps'] // 40} epoch ends (640 rows an epoch); the HF run saves nothing | (info) | – |",
    ]


def table(results: dict[str, Any]) -> list[str]:
    """The Markdown rows of RESULTS.md's main table."""
    head = [
        "| # | Figure | Measured | Reference | Ratio | Target | Result |",
        "|---|---|---|---|---|---|---|",
    ]
    rows: list[str] = []
    t = results.get("train")
    if t:
        p = t["samples_per_s_project"]
        rows += [
            f"| 1 | Training throughput, project `fit()` (samples/s) | {fmt(p)} | hand loop "
            f"{fmt(t['samples_per_s_hand'])} | {fmt(t['throughput_ratio_hand'], '×', 3)} | ≥ 0.98× | "
            f"{verdict(t['throughput_ratio_hand'], lambda x: x >= 0.98)} |",
            f"| 1 | Training throughput, project `fit()` (samples/s) | {fmt(p)} | HF Trainer "
            f"{fmt(t['samples_per_s_hf'])} | {fmt(t['throughput_ratio_hf'], '×', 3)} | ≥ 1.0× | "
            f"{verdict(t['throughput_ratio_hf'], lambda x: x >= 1.0)} |",
        ]
        if "samples_per_s_whole_project" in t:
            w = t["samples_per_s_whole_project"]
            rows += [
                f"| 1 | Throughput incl. the first step (samples/s) | {fmt(w)} | hand loop "
                f"{fmt(t['samples_per_s_whole_hand'])} | {fmt(t['throughput_whole_ratio_hand'], '×', 3)} "
                "| (info) | – |",
                f"| 1 | Throughput incl. the first step (samples/s) | {fmt(w)} | HF Trainer "
                f"{fmt(t['samples_per_s_whole_hf'])} | {fmt(t['throughput_whole_ratio_hf'], '×', 3)} "
                "| (info) | – |",
                f"| 1 | Framework work per step, near-zero model (ms) | {fmt(t['framework_ms_project'])} "
                f"| hand loop {fmt(t['framework_ms_hand'])}; HF Trainer {fmt(t['framework_ms_hf'])} "
                f"| extra vs hand {fmt(_pct(t['framework_share_hand']), ' %')}, vs HF "
                f"{fmt(_pct(t['framework_share_hf']), ' %')} of a MiniLM step "
                f"({fmt(t['step_ms_project'], ' ms', 0)}) | (info) | – |",
            ]
        rows += [
            f"| 1 | Peak RSS, whole process (MiB) | {fmt(t['peak_rss_mib_project'], '', 0)} | hand loop "
            f"{fmt(t['peak_rss_mib_hand'], '', 0)} | {fmt(t['rss_ratio_hand'], '×', 3)} | ≤ 1.1× | "
            f"{verdict(t['rss_ratio_hand'], lambda x: x <= 1.1)} |",
            f"| 1 | Peak RSS growth from model load on (MiB) | {fmt(t['rss_growth_mib_project'], '', 0)} "
            f"| hand loop {fmt(t['rss_growth_mib_hand'], '', 0)} | {fmt(t['rss_growth_ratio_hand'], '×', 3)} "
            "| (info) | – |",
            f"| 1 | Peak RSS, whole process (MiB) | {fmt(t['peak_rss_mib_project'], '', 0)} | HF Trainer "
            f"{fmt(t['peak_rss_mib_hf'], '', 0)} | {fmt(t['rss_ratio_hf'], '×', 3)} | (info) | – |",
        ]
    rows += _overhead_rows(results)
    q = results.get("quality")
    if not q:
        rows.append(
            "| 2 | Time to 0.80 val. accuracy, project defaults (s) | not measured in this run "
            "(see notes; `python benchmarks/run.py --only quality`) | HF Trainer defaults | – | "
            "≤ 0.8× | n/a |"
        )
    if q:
        rows.append(
            f"| 2 | Time to 0.80 val. accuracy, project defaults (s) | {fmt(q['seconds_project'], ' s', 1)} "
            f"| HF Trainer defaults {fmt(q['seconds_hf'], ' s', 1)} | {fmt(q['ratio'], '×', 3)} | ≤ 0.8× | "
            f"{verdict(q['ratio'], lambda x: x <= 0.8)} |"
        )
    c = results.get("convert")
    if c:
        rows += [
            f"| 3 | Convert node, {c['texts']} texts, Parquet write incl. (s) | {fmt(c['seconds_node'], ' s')} "
            f"| one batched tokenizer call {fmt(c['seconds_bare_batched'], ' s')} | "
            f"{fmt(c['speed_ratio_bare_batched'], '×', 3)} speed | ≥ 0.8× | "
            f"{verdict(c['speed_ratio_bare_batched'], lambda x: x >= 0.8)} |",
            f"| 3 | Convert node (s) | {fmt(c['seconds_node'], ' s')} | one call per text "
            f"{fmt(c['seconds_per_text'], ' s')} | {fmt(c['speed_ratio_per_text'], '×', 2)} speed | "
            f"far ahead (> 1×) | {verdict(c['speed_ratio_per_text'], lambda x: x > 1.0)} |",
        ]
    s = results.get("startup")
    if s:
        rows.append(
            f"| 4 | `kedro run --pipelines=clean` (s) | {fmt(s['seconds_kedro_run_clean'], ' s')} | bare "
            f"`KedroSession` start {fmt(s['seconds_bare_session'], ' s')} | {fmt(s['ratio'], '×')} | ≤ 2× | "
            f"{verdict(s['ratio'], lambda x: x <= 2.0)} |"
        )
        for stage, info in s["imports"].items():
            heavy = ", ".join(info["heavy"]) or "none"
            target = "none of torch, transformers, lightning" if stage != "convert" else "(info)"
            ok = not {"torch", "transformers", "lightning"} & set(info["heavy"])
            result = ("PASS" if ok else "**MISS**") if stage != "convert" else "–"
            rows.append(
                f"| 4 | Heavy imports of `kedro run --pipelines={stage}` | {heavy} | – | – | {target} | {result} |"
            )
    d = results.get("dvc")
    if d:
        if "pending" in d:
            rows.append(
                f"| 5 | No-op `dvc repro` after a full one | pending: {d['pending']} | – | – | ≤ 3 s | n/a |"
            )
        else:
            rows.append(
                f"| 5 | No-op `dvc repro` after a full one (s) | {fmt(d['seconds_repro'], ' s')} | `dvc version` "
                f"{fmt(d['seconds_dvc_version'], ' s')} | {fmt(d['ratio'], '×')} | ≤ 3 s | "
                f"{verdict(d['seconds_repro'], lambda x: x <= 3.0)} |"
            )
    rows.append(
        "| 6 | GPU check (samples/s, peak memory, MFU vs H200 989 TFLOP/s bf16) | prepared, not run: "
        "no GPU lent to this session (device `status`: not drawn) (`benchmarks/gpu_check.sh`) "
        "| – | – | – | not run |"
    )
    from report_rows import extra_rows

    return head + rows + extra_rows()


def write_report(results: dict[str, Any], out: Path, command: str) -> None:
    """RESULTS.md: table, command, environment, notes."""
    from report_rows import extra_environment

    env = results["environment"]
    v = env["versions"]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `benchmarks/run.py`; do not edit by hand (notes come from "
        "`benchmarks/analysis.md`). Raw figures: `benchmarks/results.json`.",
        "",
        f"Every figure is a ratio to a reference measured in the same run; variants interleaved "
        f"(order rotated each round), {results['rounds']} rounds; median (min–max). A ratio is "
        "the median of the per-round ratios.",
        "",
        *table(results),
        "",
        "## Command and environment",
        "",
        f"- Command: `{command}` (from the repository root; `make bench` runs "
        "`.venv/bin/python benchmarks/run.py`)",
        f"- Started {results['started']}, took {results['elapsed_s'] / 60:.1f} min; 1-minute load "
        f"at start {results['load_start']:.2f}, at end {results['load_end']:.2f} "
        "(other sessions share these cores); per row (start→end): "
        + ", ".join(
            f"{r} {results[r]['load_at_start']:.1f}→{results[r]['load_at_end']:.1f} "
            f"({results[r]['minutes']:.1f} min)"
            for r in ALL_ROWS
            if r in results
        ),
        f"- CPU: {env['cpu']}, {env['cores']} cores; Python {env['python']}; {env['platform']}",
        f"- torch {v['torch']}, lightning {v['lightning']}, transformers {v['transformers']}, "
        f"accelerate {v['accelerate']}, tokenizers {v['tokenizers']}, kedro {v['kedro']}, dvc {v['dvc']}",
        f"- Code: git {env['git']}"
        + "".join(
            f"; row {r} from an earlier run at git {results[r]['git']}"
            for r in ALL_ROWS
            if r in results and results[r].get("git", env["git"]) != env["git"]
        ),
        "- Settings: `HF_HUB_OFFLINE=1 KEDRO_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false`; "
        "training at 2 torch threads, fp32, CPU.",
        *extra_environment(),
        "",
    ]
    notes = HERE / "analysis.md"
    if notes.is_file():
        lines += [notes.read_text().rstrip(), ""]
    out.write_text("\n".join(lines))


def main() -> None:
    """Run the selected rows and write RESULTS.md and results.json."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "3")))
    ap.add_argument("--only", default=",".join(ALL_ROWS))
    ap.add_argument("--wait-quiet", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="folder for RESULTS.md/results.json")
    ap.add_argument(
        "--report-only", action="store_true", help="rewrite RESULTS.md from results.json"
    )
    ap.add_argument(
        "--merge",
        action="store_true",
        help="keep the rows of the existing results.json that this run does not measure",
    )
    args = ap.parse_args()
    if args.report_only:
        folder = args.out or HERE
        results = json.loads((folder / "results.json").read_text())
        write_report(
            results, folder / "RESULTS.md", results.get("command", "python benchmarks/run.py")
        )
        return
    rows = [r for r in args.only.split(",") if r]
    unknown = set(rows) - set(ALL_ROWS)
    if unknown:
        ap.error(f"unknown rows {sorted(unknown)}; choose from {ALL_ROWS}")
    out = args.out or (HERE if set(rows) == set(ALL_ROWS) or args.merge else HERE / "partial")
    out.mkdir(parents=True, exist_ok=True)
    command = " ".join(["python", "benchmarks/run.py", *sys.argv[1:]])

    ensure_model_input()
    sys.path.insert(0, str(ROOT / "src"))
    if args.wait_quiet:
        print(f"load after waiting: {wait_quiet():.2f}")
    results: dict[str, Any] = {
        "rounds": args.rounds,
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "load_start": loadavg(),
        "environment": environment(),
        "command": command,
    }
    if args.merge and (out / "results.json").is_file():
        earlier = json.loads((out / "results.json").read_text())
        for row in set(ALL_ROWS) - set(rows):
            if row in earlier:
                results[row] = {"git": earlier["environment"]["git"], **earlier[row]}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="reprotrain-bench-") as tmp:
        work = Path(tmp)
        if {"train", "quality", "overhead"} & set(rows):
            prepare_training(work)
        benches: dict[str, Callable[[], dict[str, Any]]] = {
            "train": lambda: bench_training(work, args.rounds),
            "quality": lambda: bench_quality(work, args.rounds),
            "convert": lambda: bench_convert(work, args.rounds),
            "startup": lambda: bench_startup(work, args.rounds),
            "dvc": lambda: bench_dvc(args.rounds),
            "overhead": lambda: bench_overhead(work, args.rounds),
        }
        for row in rows:
            load = loadavg()
            print(f"[{row}] load {load:.2f}", flush=True)
            row_start = time.perf_counter()
            results[row] = benches[row]()
            results[row]["load_at_start"] = load
            results[row]["load_at_end"] = loadavg()
            results[row]["minutes"] = (time.perf_counter() - row_start) / 60
            results[row]["git"] = results["environment"]["git"]
            # written after every row, so an interrupted run keeps what it measured
            results["elapsed_s"] = time.perf_counter() - start
            results["load_end"] = loadavg()
            (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
            write_report(results, out / "RESULTS.md", command)
    print(f"wrote {out / 'RESULTS.md'} and {out / 'results.json'}")


if __name__ == "__main__":
    main()
