"""Small models and tables shared by the evaluate, package and predict tests (no downloads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from reprotrain.models import ModelArtifact, build_model, to_artifact
from reprotrain.models.mlp import MLP
from reprotrain.packaging import PackageDraft, example_rows, in_memory_package, package_info
from reprotrain.params import parse
from tests.conftest import TINY_BERT, make_task

PENGUIN_LABELS = ["Adelie", "Chinstrap", "Gentoo"]
NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
CATEGORIES = {"island": ["Biscoe", "Dream", "Torgersen"], "sex": ["female", "male"]}
REVIEW_LABELS = ["negative", "positive"]


def penguin_features(n: int = 30, seed: int = 0) -> pd.DataFrame:
    """A converted penguins table: four numbers (one NaN), five one-hot columns, ``label``."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        rng.normal([44, 17, 200, 4200], [5, 2, 14, 800], size=(n, 4)).astype(np.float32),
        columns=NUMERIC,
    )
    frame.loc[1, "bill_length_mm"] = np.nan
    for column, values in CATEGORIES.items():
        pick = rng.integers(0, len(values), n)
        for i, value in enumerate(values):
            frame[f"{column}={value}"] = (pick == i).astype(np.float32)
    frame.loc[2, ["sex=female", "sex=male"]] = 0.0  # a missing sex
    frame["label"] = np.arange(n) % 3
    return frame


def tiny_mlp(table: pd.DataFrame, seed: int = 0) -> MLP:
    """An MLP with scaling fitted on ``table`` and random weights."""
    torch.manual_seed(seed)
    names = [c for c in table.columns if c != "label"]
    model = MLP(names, 3, [8, 8], "relu", 0.1)
    model.fit_scaling(table[names].to_numpy(dtype=np.float32))
    return model.eval()


def tiny_bert(labels: list[str] | None = None) -> torch.nn.Module:
    """A randomly initialised tiny BERT sequence classifier."""
    torch.manual_seed(0)
    task = parse("task", make_task(labels or REVIEW_LABELS))
    p = parse("fit", {"model": {"family": "transformer", "config": TINY_BERT}}, task)
    return build_model(p, task, pd.DataFrame()).eval()


def prediction_frame(labels: list[str], actual: list[int], predicted: list[int]) -> pd.DataFrame:
    """Test predictions as ``predict_test_set`` returns them, from class ids."""
    names = np.array(labels, dtype=object)
    return pd.DataFrame(
        {
            "actual": names[actual],
            "predicted": names[predicted],
            "actual_id": actual,
            "predicted_id": predicted,
            "score": 0.9,
        }
    )


def mlp_artifact(table: pd.DataFrame) -> ModelArtifact:
    """``tiny_mlp`` as a saved-model artifact."""
    return to_artifact(tiny_mlp(table))


def draft_for(
    model: torch.nn.Module,
    table: pd.DataFrame,
    tokenizer: Path | None = None,
    rows: int = 16,
    categories: dict[str, list[str]] | None = None,
) -> PackageDraft:
    """A package draft of ``model`` with a minimal card, verified on ``rows`` rows of ``table``."""
    is_mlp = isinstance(model, MLP)
    package = in_memory_package(
        model,
        task="classification",
        labels=PENGUIN_LABELS if is_mlp else REVIEW_LABELS,
        tokenizer=None if tokenizer is None else str(tokenizer),
        max_length=32,
        numeric_columns=NUMERIC if is_mlp else None,
        categories=(categories or CATEGORIES) if is_mlp else None,
    )
    info = package_info(package, "test-model", "tests", "none")
    lineage = {"git": None, "data": {}, "libraries": {}, "seed": 0}
    return PackageDraft(
        package,
        info,
        "# test\n",
        {"accuracy": 0.5},
        lineage,
        example_rows(package, table, rows),
        1e-5,
    )


def token_table(tokenizer_dir: Path, texts: list[str], labels: list[int]) -> pd.DataFrame:
    """A converted text table (``input_ids``, ``label``) made with the tiny tokenizer."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    ids = tok(texts, truncation=True, max_length=32)["input_ids"]
    return pd.DataFrame(
        {"input_ids": [np.asarray(x, dtype=np.int32) for x in ids], "label": labels}
    )


ISOLATION = '''
import sys


class _BlockReprotrain:
    """Make sure this process cannot import reprotrain, whatever is installed."""

    def find_spec(self, name, path=None, target=None):
        if name == "reprotrain" or name.startswith("reprotrain."):
            raise ImportError(name + " is blocked in this process")
        return None


sys.meta_path.insert(0, _BlockReprotrain())
sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("/src")]
try:
    import reprotrain  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("reprotrain is importable; the isolation failed")
'''


def run_isolated(code: str, cwd: Path) -> str:
    """Run ``code`` in a fresh ``python -I`` process that cannot import reprotrain; its stdout."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, "-I", "-c", ISOLATION + code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode:
        raise AssertionError(f"isolated process failed:\n{done.stderr[-3000:]}")
    return done.stdout


def onnx_standalone(folder: Path, csv: Path) -> str:
    """Code that predicts ``csv`` with the package's ONNX file, using only its package.json."""
    return f"""
import json
import numpy as np, onnxruntime as ort, pandas as pd
info = json.load(open({str(folder / "package.json")!r}))
pre = info["preprocessing"]
rows = pd.read_csv({str(csv)!r})
cols = [pd.to_numeric(rows[c]).to_numpy(np.float32) for c in pre["numeric_columns"]]
for column, values in pre["categories"].items():
    text = rows[column].astype("string").str.strip()
    cols += [(text == v).fillna(False).to_numpy(np.float32) for v in values]
session = ort.InferenceSession({str(folder / "model.onnx")!r}, providers=["CPUExecutionProvider"])
logits = session.run(["logits"], {{"features": np.stack(cols, axis=1)}})[0]
p = np.exp(logits - logits.max(axis=1, keepdims=True))
p /= p.sum(axis=1, keepdims=True)
print(json.dumps({{"label": [info["labels"][i] for i in p.argmax(axis=1)], "score": p.max(axis=1).tolist()}}))
"""
