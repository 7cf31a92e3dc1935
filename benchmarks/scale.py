"""Scaling: wall time and peak RSS of each step on 10k, 100k and 1M rows (``benchmarks/scale.py``).

Synthetic tables resampled (seeded, with replacement) from the demo data:

- text: ``movie_reviews.csv`` to 10k, 100k and 1M rows; each text gets a unique suffix
  (`` #<n>``, 2–4 tokens) so that clean's duplicate check keeps every row;
- tabular: ``penguins.csv`` to 1M rows; numeric columns get Gaussian noise (1 % of each
  column's spread) so that rows are distinct.

Every measurement is one ``kedro run --pipelines=<step>`` in a fresh process of a scratch
project (conf and src copied), run under ``/usr/bin/time -v``: wall time and maximum
resident set size. Predict runs on the texts without labels:

- ``predict`` with the trained default package (MiniLM) at 2k and 20k rows (``SCALE_MODEL_SIZES``;
  1M rows would take about an hour of forward passes on 2 cores);
- ``predict_tiny`` with a 2-layer, 32-wide random BERT package on the same tokenizer at every
  size, to show how predict's own machinery (read, tokenise, write: streamed in chunks)
  scales in time and memory without an hour of MiniLM forward passes.

Sections (``--only``): ``imports`` (peak RSS and time of importing the training path's
libraries, each set in a fresh process, 3 rounds), ``text`` (clean, convert, split at each size), ``predict``,
``tabular``, ``tokenize`` (convert's tokenizer threads: single-threaded batched calls, the
same with ``TOKENIZERS_PARALLELISM=true``, and the convert node with the variable false and
true, 100k texts, 3 rounds interleaved). Writes ``benchmarks/scale_results.json`` (merged with earlier sections).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "src"))
from run import ENV, environment, loadavg, rotated, stats  # noqa: E402

KEDRO = str(Path(sys.executable).parent / "kedro")
TEXT_SIZES = tuple(int(n) for n in os.environ.get("SCALE_SIZES", "10000,100000,1000000").split(","))
# MiniLM forward passes take ~3 ms a text on 2 cores: 1M rows would take about an hour.
MODEL_SIZES = tuple(
    int(n) for n in os.environ.get("SCALE_MODEL_SIZES", "2000,20000").split(",") if n
)


def measured(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> dict[str, float]:
    """Wall seconds and peak RSS (MiB) of ``cmd`` under ``/usr/bin/time -v``."""
    start = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-v", *cmd],
        cwd=cwd,
        env=env or ENV,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"{cmd} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    rss_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    return {"seconds": wall, "peak_rss_mib": rss_kib / 1024}


def project(work: Path, name: str) -> Path:
    """A scratch project: pyproject, conf (no local) and src; data written by the caller."""
    proj = work / name
    proj.mkdir()
    shutil.copy(ROOT / "pyproject.toml", proj)
    shutil.copytree(ROOT / "conf", proj / "conf", ignore=shutil.ignore_patterns("local"))
    (proj / "conf/local").mkdir()
    shutil.copytree(ROOT / "src", proj / "src", ignore=shutil.ignore_patterns("__pycache__"))
    (proj / "data/01_raw").mkdir(parents=True)
    return proj


def text_table(raw: Path, n: int) -> Any:
    """``n`` rows resampled from the reviews, each text made unique with a suffix."""
    import pandas as pd

    base = pd.read_csv(raw, keep_default_na=False, na_values=[""])
    out = base.sample(n=n, replace=True, random_state=0).reset_index(drop=True)
    out["id"] = range(1, n + 1)
    out["text"] = out["text"] + " #" + out["id"].astype(str)
    return out


def penguin_table(raw: Path, n: int) -> Any:
    """``n`` penguins resampled, numeric columns jittered by 1 % of their spread."""
    import numpy as np
    import pandas as pd

    base = pd.read_csv(raw)
    out = base.sample(n=n, replace=True, random_state=0).reset_index(drop=True)
    rng = np.random.default_rng(0)
    for c in ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"):
        out[c] = (out[c] + rng.normal(0, 0.01 * base[c].std(), n)).round(3)
    return out


def step(proj: Path, pipeline: str, *extra: str) -> dict[str, float]:
    """One ``kedro run --pipelines=<pipeline>`` in ``proj``, measured."""
    result = measured([KEDRO, "run", f"--pipelines={pipeline}", *extra], proj)
    print(f"  {proj.name} {pipeline} {json.dumps(result)}", flush=True)
    return result


def bench_text(work: Path, raw: Path) -> dict[str, Any]:
    """clean, convert, split at each size."""
    out: dict[str, Any] = {}
    for n in TEXT_SIZES:
        proj = project(work, f"text{n}")
        text_table(raw, n).to_csv(proj / "data/01_raw/movie_reviews.csv", index=False)
        out[str(n)] = {s: step(proj, s) for s in ("clean", "convert", "split")}
        shutil.rmtree(proj / "data")  # keep the disk free for the next size
    return out


def tiny_package(folder: Path, tokenizer: Path) -> None:
    """A 2-layer, 32-wide random BERT packaged with the default model's tokenizer."""
    import pandas as pd
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from reprotrain.datasets import ModelPackageDataset
    from reprotrain.packaging import PackageDraft, in_memory_package, package_info

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=2,
        id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1},
    )
    model = BertForSequenceClassification(config).eval()
    package = in_memory_package(
        model,
        task="classification",
        labels=["negative", "positive"],
        tokenizer=str(tokenizer),
        max_length=64,
    )
    info = package_info(package, "tiny", "benchmark", "random weights")
    sample = {"text": ["a lovely film", "dull"]}
    lineage = {"git": None, "data": {}, "libraries": {}, "seed": 0}
    draft = PackageDraft(package, info, "# tiny\n", {}, lineage, pd.DataFrame(sample))
    ModelPackageDataset(filepath=str(folder)).save(draft)


def bench_predict(work: Path, raw: Path, package: Path) -> dict[str, Any]:
    """predict with the real package at MODEL_SIZES; with the tiny package at TEXT_SIZES.

    Each package sits in its own scratch project at the default task's package path
    (``task.name`` cannot be changed with ``--params``).
    """
    out: dict[str, Any] = {"predict": {}, "predict_tiny": {}}
    for name, sizes in (("predict", MODEL_SIZES), ("predict_tiny", TEXT_SIZES)):
        proj = project(work, name)
        folder = proj / "data/06_models/reviews/package"
        if name == "predict":
            shutil.copytree(package, folder)
        else:
            tiny_package(folder, package)
        dest = proj / "data/07_model_output/out.csv"
        for n in sizes:
            src = proj / f"data/01_raw/predict{n}.csv"
            text_table(raw, n)[["id", "text"]].to_csv(src, index=False)
            out[name][str(n)] = step(
                proj, "predict", f"--params=predict_input={src},predictions={dest}"
            )
            src.unlink()
        shutil.rmtree(proj / "data")
    return out


def bench_tabular(work: Path, raw: Path, package: Path, n: int = TEXT_SIZES[-1]) -> dict[str, Any]:
    """clean, convert, split and predict of the penguins resampled to ``n`` rows."""
    proj = project(work, "penguins")
    table = penguin_table(raw, n)
    table.to_csv(proj / "data/01_raw/penguins.csv", index=False)
    table.drop(columns="species").to_csv(proj / "data/01_raw/predict.csv", index=False)
    shutil.copytree(package, proj / "data/06_models/penguins/package")
    out = {s: step(proj, s, "--env=penguins") for s in ("clean", "convert", "split")}
    dest = proj / "data/07_model_output/out.csv"
    out["predict"] = step(
        proj,
        "predict",
        "--env=penguins",
        f"--params=predict_input={proj / 'data/01_raw/predict.csv'},predictions={dest}",
    )
    return {str(n): out}


TOKENIZE_WORKER = """
import json, os, sys, time
sys.path.insert(0, {src!r})
import pandas as pd
from transformers import AutoTokenizer
from reprotrain.pipelines.convert.nodes import convert_table
variant, table = sys.argv[1], pd.read_parquet(sys.argv[2])
texts = table["text"].tolist()
tok = AutoTokenizer.from_pretrained({tokenizer!r})
params = {{"batch_size": 1000}}
task = {{"name": "scale", "raw_file": "raw.csv", "labels": ["negative", "positive"],
        "model_checkpoint": {tokenizer!r}, "max_length": 64}}
start = time.perf_counter()
if variant == "node":
    convert_table(table, params, task)
elif variant == "node_parallel":
    os.environ["TOKENIZERS_PARALLELISM"] = "true"
    convert_table(table, params, task)
else:
    os.environ["TOKENIZERS_PARALLELISM"] = "true" if variant == "bare_parallel" else "false"
    for i in range(0, len(texts), 1000):
        tok(texts[i : i + 1000], truncation=True, max_length=64,
            return_attention_mask=False, return_token_type_ids=False)
print("RESULT " + json.dumps({{"seconds": time.perf_counter() - start}}))
"""


def bench_tokenize(work: Path, raw: Path, package: Path, rounds: int = 3) -> dict[str, Any]:
    """Convert's tokenisation: one thread vs the tokenizer's own threads vs the node."""
    n = TEXT_SIZES[len(TEXT_SIZES) // 2]
    table = text_table(raw, n)
    table["label"] = (table["sentiment"] > 0).map({True: "positive", False: "negative"})
    table[["id", "text", "label"]].to_parquet(work / "tok.parquet")
    code = TOKENIZE_WORKER.format(src=str(ROOT / "src"), tokenizer=str(package))
    variants = ("bare_serial", "bare_parallel", "node", "node_parallel")
    times: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(rounds):
        for v in rotated(variants, r):
            proc = subprocess.run(
                [sys.executable, "-c", code, v, str(work / "tok.parquet")],
                env=ENV,  # TOKENIZERS_PARALLELISM=false, as the Makefile exports it
                capture_output=True,
                text=True,
                check=True,
            )
            line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
            times[v].append(json.loads(line[7:])["seconds"])
            print(f"  tokenize round {r} {v} {times[v][-1]:.2f}s", flush=True)
    ratio = stats([a / b for a, b in zip(times["bare_serial"], times["node"], strict=True)])
    return {
        "texts": n,
        **{f"seconds_{v}": stats(t) for v, t in times.items()},
        "speed_node_vs_serial": ratio,
        "speed_parallel_vs_serial": stats(
            [a / b for a, b in zip(times["bare_serial"], times["bare_parallel"], strict=True)]
        ),
        "speed_node_parallel_vs_node": stats(
            [a / b for a, b in zip(times["node"], times["node_parallel"], strict=True)]
        ),
    }


IMPORT_SETS = {
    "torch": "torch",
    "torch+transformers+pandas+pyarrow (hand loop)": "torch,transformers,pandas,pyarrow",
    "+ lightning": "torch,transformers,pandas,pyarrow,lightning",
    "+ lightning + torchmetrics": "torch,transformers,pandas,pyarrow,lightning,torchmetrics",
    "reprotrain.training.trainer (project fit)": "reprotrain.training.trainer",
    "kedro_datasets.pandas + kedro.io": "kedro.io,kedro_datasets.pandas",
}
IMPORT_WORKER = """
import importlib, json, resource, sys, time
sys.path.insert(0, {src!r})
start = time.perf_counter()
for name in sys.argv[1].split(","):
    importlib.import_module(name)
seconds = time.perf_counter() - start
optional = [m for m in ("matplotlib", "scipy", "sklearn", "kedro", "sqlalchemy") if m in sys.modules]
print("RESULT " + json.dumps({{"seconds": seconds, "optional_loaded": optional,
      "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def bench_imports(rounds: int = 3) -> dict[str, Any]:
    """Peak RSS and time of importing each set of modules, in a fresh process each."""
    code = IMPORT_WORKER.format(src=str(ROOT / "src"))
    raw: dict[str, list[dict[str, Any]]] = {k: [] for k in IMPORT_SETS}
    for r in range(rounds):
        for name in rotated(list(IMPORT_SETS), r):
            proc = subprocess.run(
                [sys.executable, "-c", code, IMPORT_SETS[name]],
                env=ENV,
                capture_output=True,
                text=True,
                check=True,
            )
            line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
            raw[name].append(json.loads(line[7:]))
    out = {}
    for name, runs in raw.items():
        out[name] = {
            "rss_mib": stats([x["rss_mib"] for x in runs]),
            "seconds": stats([x["seconds"] for x in runs]),
            "optional_loaded": runs[0]["optional_loaded"],
        }
        print(f"  imports {name}: {out[name]['rss_mib']['median']:.0f} MiB", flush=True)
    return out


def main() -> None:
    """Run the chosen sections and merge them into scale_results.json."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="imports,tokenize,text,predict,tabular")
    ap.add_argument("--data", type=Path, default=ROOT / "data")
    ap.add_argument("--out", type=Path, default=HERE / "scale_results.json")
    args = ap.parse_args()
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    raw = args.data / "01_raw"
    package = args.data / "06_models/reviews/package"
    for section in [s for s in args.only.split(",") if s]:
        with tempfile.TemporaryDirectory(prefix="reprotrain-scale-") as tmp:
            work = Path(tmp)
            load = loadavg()
            start = time.perf_counter()
            started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
            print(f"[{section}] load {load:.2f}", flush=True)
            if section == "text":
                figures = bench_text(work, raw / "movie_reviews.csv")
            elif section == "predict":
                figures = bench_predict(work, raw / "movie_reviews.csv", package)
            elif section == "tabular":
                figures = bench_tabular(
                    work, raw / "penguins.csv", args.data / "06_models/penguins/package"
                )
            elif section == "imports":
                figures = bench_imports()
            elif section == "tokenize":
                figures = bench_tokenize(work, raw / "movie_reviews.csv", package)
            else:
                ap.error(f"unknown section {section}")
            results[section] = {
                "figures": figures,
                "started": started,
                "minutes": (time.perf_counter() - start) / 60,
                "load_at_start": load,
                "load_at_end": loadavg(),
                "environment": environment(),
            }
            args.out.write_text(json.dumps(results, indent=1, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
