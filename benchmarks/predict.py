"""Prediction speed beside plain ``transformers.pipeline``: ``python benchmarks/predict.py``.

The same 3,000 review texts (a seeded sample of ``data/01_raw/movie_reviews.csv``) and the
same threads (2 torch / onnxruntime threads) for every variant, each in a fresh process,
interleaved (order rotated each round):

- ``kedro``: ``kedro run --pipelines=predict`` on them, whole command (wall, start-up incl.);
- ``ours``: ``load_package(pkg).predict(texts)`` (fp32 torch), its default batch (32);
- ``onnx`` / ``int8``: ``load_package(pkg, backend="onnx").predict(texts)``, the same batch;
- ``hf64``: ``transformers.pipeline("text-classification", model=pkg, batch_size=64,
  truncation=True)``; ``hf1``: the same with the pipeline's default batch (1).

A worker times the predict call alone (``predict_s``, model load excluded) and its whole
process (``process_s``). Test accuracy and agreement with the fp32 torch package are measured
once on the test split (ids from ``test_predictions.csv``). Needs a trained package (``dvc
repro``); ``--package`` and ``--raw`` default to the paths in the checkout. Writes
``benchmarks/predict_results.json``; ``benchmarks/run.py`` puts its rows into RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
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

PY = sys.executable
THREADS = 2
N_TEXTS = int(os.environ.get("PREDICT_TEXTS", "3000"))
VARIANTS = ("kedro", "ours", "onnx", "int8", "hf64", "hf1")


# ------------------------------------------------------------------------------------- worker
def worker(variant: str, package: str, texts_csv: str, out: str) -> None:
    """Load one variant, predict the texts, print ``RESULT {...}``; labels/scores to ``out``."""
    start = time.perf_counter()
    import numpy as np
    import pandas as pd
    import torch

    torch.set_num_threads(THREADS)
    texts = pd.read_csv(texts_csv, keep_default_na=False)["text"].tolist()
    t0 = time.perf_counter()
    if variant in ("hf64", "hf1"):
        from transformers import pipeline

        kw = {"batch_size": 64} if variant == "hf64" else {}
        pipe = pipeline("text-classification", model=package, truncation=True, **kw)
        load_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        res = pipe(texts)
        predict_s = time.perf_counter() - t1
        labels = [r["label"] for r in res]
        scores = [r["score"] for r in res]
    else:
        from reprotrain.packaging import load_package

        backend = "torch" if variant == "ours" else "onnx"
        pkg = load_package(package, backend=backend)
        load_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        pred = pkg.predict(texts)  # the package's default batch
        predict_s = time.perf_counter() - t1
        labels, scores = pred["label"].tolist(), pred["score"].tolist()
    np.savez(out, labels=np.asarray(labels, dtype=object), scores=np.asarray(scores))
    result = {
        "load_s": load_s,
        "predict_s": predict_s,
        "process_s": time.perf_counter() - start,
    }
    print("RESULT " + json.dumps(result), flush=True)


# ------------------------------------------------------------------------------------- driver
def run(cmd: list[str], cwd: Path) -> tuple[float, str]:
    """Wall time and stdout of a subprocess (raises with its stderr if it fails)."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"{cmd} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall, proc.stdout


def onnx_copy(package: Path, dest: Path, precision: str) -> float:
    """A copy of ``package`` with an ONNX model added (as ``package.onnx`` would); export s."""
    import torch

    from reprotrain.packaging import PACKAGE_FILE, load_package
    from reprotrain.packaging.manifest import write_manifest
    from reprotrain.packaging.onnx_text import FILES, export_text_onnx

    torch.set_num_threads(THREADS)
    shutil.copytree(package, dest)
    start = time.perf_counter()
    export_text_onnx(load_package(dest).model, dest, precision)
    seconds = time.perf_counter() - start
    info = json.loads((dest / PACKAGE_FILE).read_text())
    info["onnx"] = {"file": FILES[precision], "precision": precision, "runtime": "onnxruntime"}
    (dest / PACKAGE_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    write_manifest(dest)
    return seconds


def scratch_project(work: Path, package: Path) -> Path:
    """Conf, src and the package in a scratch folder: ``kedro run`` writes nothing shared."""
    proj = work / "project"
    proj.mkdir()
    shutil.copy(ROOT / "pyproject.toml", proj)
    shutil.copytree(ROOT / "conf", proj / "conf", ignore=shutil.ignore_patterns("local"))
    (proj / "conf/local").mkdir()
    shutil.copytree(ROOT / "src", proj / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(package, proj / "data/06_models/reviews/package")
    return proj


def summarise(figures: dict[str, list[dict[str, Any]]], variants: list[str], n: int) -> dict:
    """Medians (min–max) of each figure, and the speed ratios (reference time / ours)."""

    def series(v: str, key: str) -> list[float]:
        return [f[key] for f in figures.get(v, [])]

    out: dict[str, Any] = {}
    for v in variants:
        for key in ("predict_s", "process_s", "load_s"):
            if figures[v] and key in figures[v][0]:
                out[f"{key}_{v}"] = stats(series(v, key))

    def ratio(num: str, den: str, key: str) -> dict[str, Any] | None:
        if num not in variants or den not in variants:
            return None
        a, b = series(num, key), series(den, key)
        return stats([b[i] / a[i] for i in range(n)])  # speed: reference time / ours

    out["speed_ours_vs_hf64"] = ratio("ours", "hf64", "predict_s")
    out["speed_ours_vs_hf1"] = ratio("ours", "hf1", "predict_s")
    out["speed_onnx_vs_ours"] = ratio("onnx", "ours", "predict_s")
    out["speed_int8_vs_ours"] = ratio("int8", "ours", "predict_s")
    out["speed_int8_vs_hf64"] = ratio("int8", "hf64", "predict_s")
    out["speed_kedro_vs_hf64_process"] = ratio("kedro", "hf64", "process_s")
    return out


def check_quality(variants: list[str], once: Any, work: Path, test: Any) -> dict[str, Any]:
    """Test accuracy of each variant and its agreement with ``ours`` (once, not timed)."""
    import numpy as np

    quality: dict[str, Any] = {}
    for v in variants:
        once(v, work / "test.csv", "test")
        got = np.load(work / f"{v}-test.npz", allow_pickle=True)
        ref = np.load(work / "ours-test.npz", allow_pickle=True) if v != "ours" else got
        quality[v] = {
            "accuracy": float((got["labels"] == test["actual"].to_numpy()).mean()),
            "label_agreement_with_ours": float((got["labels"] == ref["labels"]).mean()),
            "max_score_diff_with_ours": float(np.abs(got["scores"] - ref["scores"]).max()),
        }
        print(f"  quality {v} {json.dumps(quality[v])}", flush=True)
    return quality


def main() -> None:
    """Prepare inputs and ONNX copies, run the rounds, write predict_results.json."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--package", type=Path, default=ROOT / "data/06_models/reviews/package")
    ap.add_argument("--raw", type=Path, default=ROOT / "data/01_raw/movie_reviews.csv")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument(
        "--test-predictions",
        type=Path,
        default=ROOT / "data/07_model_output/reviews/test_predictions.csv",
        help="the package's test split (ids and actual labels), from the evaluate step",
    )
    ap.add_argument("--out", type=Path, default=HERE / "predict_results.json")
    ap.add_argument("worker", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(*args.worker[1:])  # the first is the word 'worker'
        return
    import pandas as pd

    variants = [v for v in args.variants.split(",") if v]
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "load_start": loadavg(),
        "environment": environment(),
        "rounds": args.rounds,
        "texts": N_TEXTS,
        "threads": THREADS,
    }
    with tempfile.TemporaryDirectory(prefix="reprotrain-predict-") as tmp:
        work = Path(tmp)
        raw = pd.read_csv(args.raw, keep_default_na=False, na_values=[""])
        sample = raw.sample(n=N_TEXTS, random_state=0)[["id", "text"]]
        sample.to_csv(work / "texts.csv", index=False)
        tests = pd.read_csv(args.test_predictions)
        test = tests[["id", "actual"]].merge(raw[["id", "text"]], on="id", how="left")
        test.to_csv(work / "test.csv", index=False)
        packages = {"ours": work / "pkg", "hf64": work / "pkg", "hf1": work / "pkg"}
        shutil.copytree(args.package, work / "pkg")
        export_s = {}
        for v, precision in (("onnx", "fp32"), ("int8", "int8")):
            if v in variants:
                export_s[v] = onnx_copy(args.package, work / f"pkg_{v}", precision)
                packages[v] = work / f"pkg_{v}"
        results.update(
            onnx_export_s=export_s,
            onnx_bytes={
                v: sum(f.stat().st_size for f in (packages[v] / "onnx").iterdir()) for v in export_s
            },
        )
        proj = scratch_project(work, args.package) if "kedro" in variants else None

        def once(v: str, texts: Path, tag: str) -> dict[str, Any]:
            if v == "kedro":
                cmd = [
                    str(Path(PY).parent / "kedro"),
                    "run",
                    "--pipelines=predict",
                    f"--params=predict_input={texts},predictions={work / 'kedro_out.csv'}",
                ]
                wall, _ = run(cmd, proj)
                return {"process_s": wall}
            out = work / f"{v}-{tag}.npz"
            _, stdout = run(
                [PY, __file__, "worker", v, str(packages[v]), str(texts), str(out)], work
            )
            line = next(ln for ln in stdout.splitlines() if ln.startswith("RESULT "))
            return json.loads(line[len("RESULT ") :])

        quality = check_quality([v for v in variants if v != "kedro"], once, work, test)
        results["quality"] = quality

        figures: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
        once("ours", work / "texts.csv", "warm")  # warm file caches and .pyc
        for r in range(args.rounds):
            for v in rotated(variants, r):
                figures[v].append(once(v, work / "texts.csv", f"r{r}"))
                print(f"  round {r} {v} {json.dumps(figures[v][-1])}", flush=True)
        results["raw"] = figures

    out = summarise(figures, variants, args.rounds)
    results.update(figures=out, load_end=loadavg())
    args.out.write_text(json.dumps(results, indent=1, default=str))
    print(json.dumps({k: (v or {}).get("median") for k, v in out.items()}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    os.environ.update({k: ENV[k] for k in ("HF_HUB_OFFLINE", "KEDRO_DISABLE_TELEMETRY")})
    main()
