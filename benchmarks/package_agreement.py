"""Does a model package predict the same without reprotrain as the project's predict pipeline?

Run from the project root after ``kedro run --pipeline=train`` (``--env=penguins`` for the
tabular demo)::

    .venv/bin/python benchmarks/package_agreement.py              # default task, 200 test rows
    .venv/bin/python benchmarks/package_agreement.py --env penguins

1. Takes ``--rows`` rows of the test split (default task: their text, joined from the cleaned
   table by id; penguins: the raw rows of the test split's birds are not recoverable by id,
   so the first rows of the raw table are used) and writes them to a temporary folder.
2. Runs the project's predict pipeline on them: ``kedro run --pipelines=predict
   --params=predict_input=<rows.csv>,predictions=<out.csv>`` (the project's files untouched).
3. In a separate ``python -I`` process where importing reprotrain is blocked, predicts the
   same rows from the package folder alone: ``transformers.pipeline("text-classification")``
   (with and without ``truncation=True``), or onnxruntime on ``model.onnx`` with the
   preprocessing described in ``package.json``.
4. Prints label agreement and the largest score difference; exits 1 unless labels agree.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

log = logging.getLogger("package_agreement")

BLOCK = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name == "reprotrain" or name.startswith("reprotrain."):
            raise ImportError(name + " is blocked")
sys.meta_path.insert(0, _Block())
sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("/src")]
try:
    import reprotrain
    raise SystemExit("reprotrain is importable: isolation failed")
except ImportError:
    pass
"""

TEXT = """
import json, pandas as pd
from transformers import pipeline
texts = pd.read_csv({csv!r})["text"].astype(str).tolist()
classify = pipeline("text-classification", model={folder!r}, device="cpu")
out = {{"truncated": classify(texts, truncation=True, batch_size=32),
        "plain": classify(texts, batch_size=32)}}
print(json.dumps({{k: {{"label": [r["label"] for r in v], "score": [r["score"] for r in v]}}
                  for k, v in out.items()}}))
"""

TABULAR = """
import json, numpy as np, onnxruntime as ort, pandas as pd
info = json.load(open({folder!r} + "/package.json"))
pre = info["preprocessing"]
rows = pd.read_csv({csv!r})
cols = [pd.to_numeric(rows[c]).to_numpy(np.float32) for c in pre["numeric_columns"]]
for column, values in pre["categories"].items():
    text = rows[column].astype("string").str.strip()
    cols += [(text == v).fillna(False).to_numpy(np.float32) for v in values]
session = ort.InferenceSession({folder!r} + "/model.onnx", providers=["CPUExecutionProvider"])
logits = session.run(["logits"], {{"features": np.stack(cols, axis=1)}})[0]
p = np.exp(logits - logits.max(axis=1, keepdims=True))
p /= p.sum(axis=1, keepdims=True)
print(json.dumps({{"onnxruntime": {{"label": [info["labels"][i] for i in p.argmax(axis=1)],
                                   "score": p.max(axis=1).tolist()}}}}))
"""


def _task(env: str) -> dict:
    from reprotrain.settings import load_parameters

    return load_parameters("task", "conf", env)


def _input_rows(task: str, raw_file: str, rows: int) -> pd.DataFrame:
    test = pd.read_parquet(f"data/05_model_input/{task}/test.parquet")
    if "input_ids" in test.columns:
        clean = pd.read_parquet(f"data/02_intermediate/{task}/clean_table.parquet")
        picked = test[["id"]].head(rows).merge(clean[["id", "text"]], on="id", how="left")
        return picked
    return pd.read_csv(raw_file).head(rows).drop(columns=["species"], errors="ignore")


def main() -> int:
    """Run the comparison; 0 when every label agrees."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="base")
    parser.add_argument("--rows", type=int, default=200)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    g = _task(args.env)
    task = g["name"]
    folder = str(Path(f"data/06_models/{task}/package").resolve())
    work = Path(tempfile.mkdtemp(prefix="package_agreement-"))
    csv, predicted = work / "rows.csv", work / "predictions.csv"
    _input_rows(task, g["raw_file"], args.rows).to_csv(csv, index=False)

    kedro = Path(sys.executable).parent / "kedro"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "KEDRO_DISABLE_TELEMETRY": "1"}
    cmd = [
        str(kedro),
        "run",
        "--pipelines=predict",
        f"--params=predict_input={csv},predictions={predicted}",
    ] + ([f"--env={args.env}"] if args.env != "base" else [])
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    ours = pd.read_csv(predicted)

    code = (TEXT if "text" in ours.columns else TABULAR).format(
        folder=folder, csv=str(csv.resolve())
    )
    isolated_env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-I", "-c", BLOCK + code],
        env=isolated_env,
        cwd="/",
        capture_output=True,
        text=True,
        check=True,
    )
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    report: dict[str, dict] = {}
    for name, pred in theirs.items():
        same = [a == b for a, b in zip(pred["label"], ours["predicted_label"], strict=True)]
        gap = (pd.Series(pred["score"]) - ours["score"]).abs()
        report[name] = {
            "rows": len(same),
            "labels_agree": sum(same),
            "agreement": sum(same) / len(same),
            "max_score_diff": float(gap.max()),
        }
    log.info("%s", json.dumps({"task": task, "package": folder, **report}, indent=2))
    first = next(iter(report.values()))
    return 0 if first["agreement"] == 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
