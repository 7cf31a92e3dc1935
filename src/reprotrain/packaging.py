"""Self-contained model packages: build, write, verify, load, predict.

A package is one folder that runs without this project:

- transformer: the ``save_pretrained`` layout (``config.json`` with ``id2label``,
  ``model.safetensors``, tokenizer files), loadable by plain
  ``transformers.pipeline("text-classification", model=folder)``;
- mlp: ``model.safetensors`` (weights and the scaling buffers), ``package.json`` (architecture
  and preprocessing: feature names, numeric columns, categories, scaling) and ``model.onnx``
  (raw features → logits, dynamic batch), runnable with onnxruntime alone;
- both: ``package.json``, ``metrics.json``, ``lineage.json`` (git commit, SHA-256 of the input
  data, library versions, seed), a model card ``README.md`` and ``manifest.json`` (SHA-256 of
  every file). Nothing is pickled.

Applications use ``load_package(folder).predict(rows)``:

.. code-block:: python

    from reprotrain.packaging import load_package

    package = load_package("data/06_models/reviews/package")   # checks manifest.json first
    package.predict(["a lovely, moving film", "dull and far too long"])
    #       label  label_id     score
    # 0  positive         1  0.981...
    # 1  negative         0  0.975...
"""

from __future__ import annotations

import copy
import json
import logging
import platform
import subprocess
import warnings
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from reprotrain.datasets.model_dataset import recover_dir
from reprotrain.datasets.package_dataset import sha256_file, verify_manifest
from reprotrain.features import one_hot
from reprotrain.inference import to_predictions
from reprotrain.models.mlp import MLP, mlp_from_spec

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
PACKAGE_FILE = "package.json"
METRICS_FILE = "metrics.json"
LINEAGE_FILE = "lineage.json"
CARD_FILE = "README.md"
WEIGHTS_FILE = "model.safetensors"
ONNX_FILE = "model.onnx"
ONNX_INPUT = "features"
ONNX_OUTPUT = "logits"
LIBRARIES = (
    "torch",
    "transformers",
    "tokenizers",
    "safetensors",
    "lightning",
    "torchmetrics",
    "kedro",
    "kedro-datasets",
    "pandas",
    "numpy",
    "onnx",
    "onnxscript",
    "onnxruntime",
)


class PackageError(ValueError):
    """A package cannot be written, loaded or used."""


class PackageInputError(PackageError):
    """The rows given to ``predict`` lack a needed column or hold unusable values."""


class PackageVerificationError(PackageError):
    """A package reloaded from disk does not predict what the in-memory model predicts."""


def _as_frame(rows: Any, column: str | None) -> pd.DataFrame:
    """Rows as a DataFrame: a DataFrame, a list of dicts, or (text tasks) a list of strings."""
    if isinstance(rows, pd.DataFrame):
        return rows
    if isinstance(rows, str):
        rows = [rows]
    rows = list(rows)
    if column is not None and all(isinstance(r, str) for r in rows):
        return pd.DataFrame({column: rows})
    return pd.DataFrame(rows)


def _require(frame: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise PackageInputError(
            f"the table to predict lacks the column(s) {missing} the model needs; "
            f"it has {list(frame.columns)}"
        )


class TextPackage:
    """A text classifier (or regressor): a Hugging Face model and its tokenizer."""

    family = "transformer"
    backend = "torch"
    folder: Path | None = None  # the folder it was loaded from (``load_package``)

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        *,
        task: str,
        labels: list[str] | None,
        max_length: int,
        text_column: str = "text",
        info: dict[str, Any] | None = None,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.task = task
        self.labels = labels
        self.max_length = max_length
        self.text_column = text_column
        self.info = info or {}

    def texts(self, rows: Any, text_column: str | None = None) -> list[str]:
        """The whitespace-normalised texts of ``rows`` (as the clean step normalises them)."""
        column = text_column or self.text_column
        frame = _as_frame(rows, column)
        if column not in frame.columns and text_column is None and "text" in frame.columns:
            column = "text"  # the standard name, where the table has no other candidate
        _require(frame, [column])
        values = frame[column]
        if values.isna().any():
            bad = frame.index[values.isna()].tolist()[:5]
            raise PackageInputError(f"column '{column}' has missing text (rows {bad}...)")
        text = values.astype(str).str.replace(r"\s+", " ", regex=True).str.strip()
        return text.tolist()

    @torch.inference_mode()
    def outputs(
        self, rows: Any, *, batch_size: int = 64, text_column: str | None = None
    ) -> np.ndarray:
        """Raw model outputs for every row, in row order (texts batched by length)."""
        texts = self.texts(rows, text_column)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        width = 1 if self.labels is None else len(self.labels)
        out = np.empty((len(texts), width), dtype=np.float32)
        for i in range(0, len(texts), batch_size):
            idx = order[i : i + batch_size]
            out[idx] = self._logits([texts[j] for j in idx])
        return out

    def _logits(self, texts: list[str]) -> np.ndarray:
        """One forward pass: ``texts`` padded to the longest of them → raw outputs."""
        enc = self.tokenizer(
            texts, truncation=True, max_length=self.max_length, padding=True, return_tensors="pt"
        )
        return self.model(**enc).logits.float().cpu().numpy()

    def predict(
        self, rows: Any, *, batch_size: int = 64, text_column: str | None = None
    ) -> pd.DataFrame:
        """Label and score (classification) or prediction (regression) for every row.

        Args:
            rows: A DataFrame with the text column, a list of dicts, or a list of strings.
            batch_size: Texts per forward pass.
            text_column: The column holding the text (default: the package's, the name the
                raw training table gave it; a table without it may use ``text``).

        Raises:
            PackageInputError: The text column is missing or has missing values.
        """
        return to_predictions(
            self.outputs(rows, batch_size=batch_size, text_column=text_column), self.labels
        )


def _warn_mostly_missing(frame: pd.DataFrame, numeric_columns: list[str]) -> None:
    """Warn about rows whose numbers are mostly missing: their prediction is mostly imputed."""
    if not numeric_columns:
        return
    share = frame[numeric_columns].isna().mean(axis=1)
    mostly = frame.index[share > 0.5]
    if len(mostly):
        log.warning(
            "%d row(s) have more than half of their numeric columns %s missing (rows %s%s): "
            "their predictions rest mostly on imputed training means",
            len(mostly),
            numeric_columns,
            mostly[:5].tolist(),
            ", ..." if len(mostly) > 5 else "",
        )


class TabularPackage:
    """An MLP on numeric and one-hot categorical columns (scaling inside the model)."""

    family = "mlp"

    def __init__(
        self,
        model: MLP,
        *,
        task: str,
        labels: list[str] | None,
        numeric_columns: list[str],
        categories: dict[str, list[str]],
        info: dict[str, Any] | None = None,
    ) -> None:
        self.model = model.eval()
        self.task = task
        self.labels = labels
        self.numeric_columns = list(numeric_columns)
        # The model's feature_names are the one ordered source of truth: a JSON object of
        # categories may come back in another order (package.json is written with sorted keys).
        expected = list(model.spec["feature_names"])
        position = {name: i for i, name in enumerate(expected)}
        self.categories = {
            k: list(v)
            for k, v in sorted(
                categories.items(),
                key=lambda kv: position.get(f"{kv[0]}={kv[1][0]}", len(expected)) if kv[1] else 0,
            )
        }
        self.info = info or {}
        names = self.numeric_columns + [f"{c}={v}" for c, vs in self.categories.items() for v in vs]
        if names != list(model.spec["feature_names"]):
            raise PackageError(
                f"preprocessing gives features {names} but the model expects "
                f"{model.spec['feature_names']}"
            )

    def features(self, rows: Any) -> np.ndarray:
        """Raw rows → the model's float32 features (numbers as given, categories one-hot).

        A missing number stays NaN (the model imputes the training mean); a missing or
        unknown category encodes as all zeros (unknown: with a warning), as in the convert step.

        Raises:
            PackageInputError: A needed column is missing, or a numeric column is not numeric
                or holds an infinite value.
        """
        frame = _as_frame(rows, None)
        _require(frame, [*self.numeric_columns, *self.categories])
        cols = []
        for c in self.numeric_columns:
            try:
                values = pd.to_numeric(frame[c], errors="raise").to_numpy(dtype=np.float32)
            except (ValueError, TypeError) as err:
                raise PackageInputError(f"column '{c}' must be numeric: {err}") from None
            if np.isinf(values).any():
                rows = frame.index[np.isinf(values)].tolist()[:5]
                raise PackageInputError(f"column '{c}' holds infinite values (rows {rows})")
            cols.append(values)
        for c, values in self.categories.items():
            cols += one_hot(frame[c], c, values).values()
        _warn_mostly_missing(frame, self.numeric_columns)
        return np.stack(cols, axis=1) if cols else np.empty((len(frame), 0), np.float32)

    @torch.inference_mode()
    def outputs(self, rows: Any, *, batch_size: int = 1024, **_: Any) -> np.ndarray:
        """Raw model outputs for every row, in row order."""
        x = torch.from_numpy(self.features(rows))
        chunks = [
            self.model(x[i : i + batch_size]).float().numpy() for i in range(0, len(x), batch_size)
        ]
        width = 1 if self.labels is None else len(self.labels)
        return np.concatenate(chunks) if chunks else np.empty((0, width), np.float32)

    def predict(self, rows: Any, *, batch_size: int = 1024, **_: Any) -> pd.DataFrame:
        """Label and score (classification) or prediction (regression) for every row.

        Raises:
            PackageInputError: A needed column is missing or not numeric.
        """
        return to_predictions(self.outputs(rows, batch_size=batch_size), self.labels)


Package = TextPackage | TabularPackage


_REQUIRED = {
    "transformer": {"max_length": int, "inputs": dict},
    "mlp": {"architecture": dict, "preprocessing": dict},
}


def read_package_info(folder: Path) -> dict[str, Any]:
    """``package.json`` of ``folder``, checked for the keys and types ``load_package`` uses.

    Raises:
        PackageError: The file is missing, not JSON, or lacks a key or has one of the wrong
            type; the message names the file and the key.
    """
    path = folder / PACKAGE_FILE
    if not path.is_file():
        raise PackageError(f"{folder} is not a model package: it has no {PACKAGE_FILE}")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise PackageError(f"{path} is not valid JSON ({err}); rebuild the package") from None
    if not isinstance(info, dict):
        raise PackageError(f"{path} must hold a JSON object, not {type(info).__name__}")
    if info.get("format") != FORMAT_VERSION:
        raise PackageError(f"{path}: unsupported package format {info.get('format')!r}")
    family = info.get("family")
    if family not in _REQUIRED:
        raise PackageError(f"{path}: unknown model family {family!r}; known: {sorted(_REQUIRED)}")
    wanted: dict[str, Any] = {"task": str, "labels": (list, type(None)), **_REQUIRED[family]}
    for key, kind in wanted.items():
        if key not in info:
            raise PackageError(f"{path}: key '{key}' is missing; rebuild the package")
        if not isinstance(info[key], kind):
            raise PackageError(
                f"{path}: key '{key}' has the wrong type ({type(info[key]).__name__}: "
                f"{info[key]!r}); rebuild the package"
            )
    nested = (
        {"inputs": ("text_column",)}
        if family == "transformer"
        else {"preprocessing": ("numeric_columns", "categories")}
    )
    for key, subkeys in nested.items():
        for sub in subkeys:
            if sub not in info[key]:
                raise PackageError(f"{path}: key '{key}.{sub}' is missing; rebuild the package")
    if (info["task"] == "classification") != isinstance(info["labels"], list):
        raise PackageError(f"{path}: task {info['task']!r} with labels {info['labels']!r}")
    return info


def _check_package_labels(folder: Path, info: dict[str, Any], model: nn.Module) -> None:
    """Refuse a package whose ``package.json`` labels disagree with the model's own."""
    from reprotrain.models import model_labels

    recorded = model_labels(model)
    listed = info["labels"]
    if recorded is not None and listed is not None and list(listed) != recorded:
        raise PackageError(
            f"{folder}: {PACKAGE_FILE} lists labels {listed} but the model "
            f"({'config.json id2label' if info['family'] == 'transformer' else 'architecture.labels'}) "
            f"was trained on {recorded}: predictions would carry the wrong class names. "
            "Rebuild the package from the trained model (`kedro run --pipelines=package`)."
        )
    width = 1 if listed is None else len(listed)
    outputs = (
        model.config.num_labels if info["family"] == "transformer" else model.spec["out_features"]
    )
    if outputs != width:
        raise PackageError(
            f"{folder}: {PACKAGE_FILE} lists {width} label(s) {listed} for a model with "
            f"{outputs} outputs; rebuild the package"
        )


def load_package(folder: str | Path, *, verify: bool = True, backend: str = "torch") -> Package:
    """Load a package folder for prediction.

    When the folder is missing because a crash interrupted the swap of a new version into
    place, the previous version is restored first (``recover_dir``).

    Args:
        folder: The package folder.
        verify: Check ``manifest.json`` first (recommended).
        backend: ``torch``, or ``onnx``: a text package built with ``package.onnx`` runs its
            ONNX model with onnxruntime (``reprotrain.onnx_text``).

    Raises:
        ManifestError: A file is missing, changed or not listed, the manifest is malformed or
            lists a path outside the folder, or the folder holds a symbolic link (``verify``).
        PackageError: ``package.json`` is missing, malformed or of an unknown format, or its
            labels disagree with the model's (``config.json`` ``id2label``, the MLP's spec).
    """
    folder = Path(folder)
    recover_dir(str(folder))
    if verify:
        verify_manifest(folder)
    info = read_package_info(folder)
    if backend not in ("torch", "onnx"):
        raise PackageError(f"backend must be 'torch' or 'onnx', not {backend!r}")
    if backend == "onnx":
        from reprotrain.onnx_text import load_onnx_package

        return load_onnx_package(folder, info)
    if info["family"] == "transformer":
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from reprotrain.models.transformer import quietly

        if not (folder / WEIGHTS_FILE).is_file():
            raise PackageError(
                f"{folder} has no {WEIGHTS_FILE}; packages load safetensors weights only "
                "(a pickled pytorch_model.bin is never loaded)"
            )
        # safetensors only: a pickled pytorch_model.bin is never loaded, whatever is listed
        model = quietly(
            AutoModelForSequenceClassification.from_pretrained, folder, use_safetensors=True
        )
        _check_package_labels(folder, info, model)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        package = TextPackage(
            model,
            tokenizer,
            task=info["task"],
            labels=info["labels"],
            max_length=info["max_length"],
            text_column=info["inputs"]["text_column"],
            info=info,
        )
        package.folder = folder
        return package
    from safetensors.torch import load_file

    try:
        model = mlp_from_spec(info["architecture"])
    except (TypeError, ValueError) as err:
        raise PackageError(f"{folder / PACKAGE_FILE}: bad 'architecture': {err}") from None
    _check_package_labels(folder, info, model)
    model.load_state_dict(load_file(folder / WEIGHTS_FILE), strict=True)
    pre = info["preprocessing"]
    return TabularPackage(
        model,
        task=info["task"],
        labels=info["labels"],
        numeric_columns=pre["numeric_columns"],
        categories=pre["categories"],
        info=info,
    )


# ------------------------------------------------------------------------------ verification
def compare_predictions(
    expected: pd.DataFrame, actual: pd.DataFrame, tolerance: float, what: str = "reloaded package"
) -> None:
    """Raise unless ``actual`` has the same labels and scores within ``tolerance``.

    Scores are probabilities: compared within ``tolerance``. Regression predictions are in
    the target's units, which may be in the thousands: compared within ``tolerance`` relative
    to their size (float32 keeps about seven significant digits).

    Raises:
        PackageVerificationError: Naming the first differing row.
    """
    if len(expected) != len(actual):
        raise PackageVerificationError(
            f"{what}: {len(actual)} predictions, expected {len(expected)}"
        )
    if "label" in expected:
        differ = np.flatnonzero(expected["label"].to_numpy() != actual["label"].to_numpy())
        if differ.size:
            i = int(differ[0])
            raise PackageVerificationError(
                f"{what} predicts label {actual['label'].iloc[i]!r} for sample row {i}, the "
                f"in-memory model {expected['label'].iloc[i]!r} ({differ.size} rows differ)"
            )
    column = "score" if "score" in expected else "prediction"
    want = expected[column].to_numpy(dtype=np.float64)
    gap = np.abs(want - actual[column].to_numpy(dtype=np.float64))
    if column == "prediction":
        gap = gap / np.maximum(1.0, np.abs(want))
    if gap.size and not gap.max() <= tolerance:
        i = int(np.nanargmax(gap)) if not np.isnan(gap).all() else 0
        raise PackageVerificationError(
            f"{what}: {column} of sample row {i} differs from the in-memory model by "
            f"{gap[i]:.3g}{' (relative)' if column == 'prediction' else ''} "
            f"(tolerance {tolerance:g})"
        )


def onnx_outputs(path: str | Path, features: np.ndarray) -> np.ndarray:
    """Run an exported MLP with onnxruntime alone."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run([ONNX_OUTPUT], {ONNX_INPUT: features.astype(np.float32)})[0]


def export_onnx(model: MLP, path: str | Path) -> None:
    """Export ``model`` (features → logits) to a single ONNX file with a dynamic batch axis."""
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    module = copy.deepcopy(model).eval()
    example = torch.zeros(2, len(model.spec["feature_names"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.onnx.export(
            module,
            (example,),
            str(path),
            dynamo=True,
            external_data=False,
            input_names=[ONNX_INPUT],
            output_names=[ONNX_OUTPUT],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            verbose=False,
        )


# ------------------------------------------------------------------------------------ lineage
def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], capture_output=True, text=True, check=True, timeout=30
    ).stdout


def git_commit() -> dict[str, Any] | None:
    """The git commit, and what differs from it: tracked changes, and configuration files
    that are modified, untracked (a new env) or git-ignored (``conf/local``), if in git.

    ``conf_changes`` lists those configuration files as ``git status`` does (`` M``, ``??``,
    ``!!``): the model was shaped by them, and the commit alone cannot rebuild it.
    """
    try:
        commit = _git("rev-parse", "HEAD").strip()
        tracked = _git("status", "--porcelain", "--untracked-files=no")
        conf = _git("status", "--porcelain", "--untracked-files=all", "--", "conf")
        local = _git("status", "--porcelain", "--ignored=matching", "--", "conf/local")
    except (OSError, subprocess.SubprocessError):
        return None
    changes = sorted(
        {
            line.strip()
            for line in (conf + local).splitlines()
            if line.strip() and not line.rstrip("/").endswith(".gitkeep")
        }
    )
    return {"commit": commit, "dirty": bool(tracked.strip() or changes), "conf_changes": changes}


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries that shaped the model, plus Python's."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def collect_lineage(data_files: list[str], seed: int) -> dict[str, Any]:
    """Where the model came from: git commit, SHA-256 of the data files, libraries, seed."""
    data: dict[str, Any] = {}
    for name in data_files:
        path = Path(name)
        if path.is_file():
            data[name] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
        else:
            log.warning("lineage: data file %s not found; recorded as missing", name)
            data[name] = None
    return {"git": git_commit(), "data": data, "libraries": library_versions(), "seed": seed}


# ------------------------------------------------------------------------------------- the card
def _metric_rows(metrics: dict[str, Any], prefix: str = "") -> list[str]:
    rows = []
    for key, value in metrics.items():
        if isinstance(value, dict):
            rows += _metric_rows(value, f"{prefix}{key}.")
        elif isinstance(value, float):
            rows.append(f"| {prefix}{key} | {value:.4f} |")
        else:
            rows.append(f"| {prefix}{key} | {value} |")
    return rows


_COMPARISON = ("baselines", "best_baseline", "below_baseline")


def _baseline_section(metrics: dict[str, Any]) -> str:
    """The trained model and the baselines fitted on its split, side by side."""
    baselines = metrics.get("baselines")
    if not baselines:
        return ""
    headline = [k for k in ("accuracy", "f1_macro", "mse", "mae") if k in metrics]
    rows = [("trained model (this package)", metrics)] + list(baselines.items())
    table = "\n".join(
        f"| {name} | " + " | ".join(f"{m[k]:.4f}" for k in headline) + " |" for name, m in rows
    )
    verdict = (
        f"**The trained model scores below the `{metrics['best_baseline']}` baseline** on the "
        "primary metric."
        if metrics.get("below_baseline")
        else "The trained model scores at least as well as every baseline on the primary metric."
    )
    return f"""
## Against baselines

Cheap classical models fitted on the same training split and scored on the same test rows
(reprotrain.baselines). {verdict}

| model | {" | ".join(headline)} |
|---|{"---|" * len(headline)}
{table}
"""


def _conf_note(git: dict[str, Any]) -> str:
    changes = git.get("conf_changes") or []
    if not changes:
        return ""
    shown = ", ".join(f"`{c}`" for c in changes[:10]) + (" ..." if len(changes) > 10 else "")
    return f"\n- configuration not as committed (`git status`): {shown}"


def render_card(
    info: dict[str, Any],
    metrics: dict[str, Any],
    lineage: dict[str, Any],
    parameters: dict[str, Any],
    data_summary: dict[str, Any],
) -> str:
    """The model card (``README.md``) of a package."""
    text = info["family"] == "transformer"
    regression = info["task"] == "regression"
    what = (
        "regression (one number per row, in the target's units)"
        if regression
        else f"classification into {', '.join(info['labels'] or [])}"
    )
    outputs = (
        "Predictions are numbers in the target's units, not probabilities."
        if regression
        else "Scores are softmax probabilities of an uncalibrated model."
    )
    git = lineage.get("git") or {}
    if text:
        usage = (
            "```python\nfrom transformers import pipeline\n\n"
            'classify = pipeline("text-classification", model="path/to/this/folder")\n'
            'classify(["a lovely, moving film"], truncation=True)  # truncation=True: as in training\n```'
        )
        inputs = f"one text column (`{info['inputs']['text_column']}`), truncated to {info['max_length']} tokens"
        front = "---\nlibrary_name: transformers\npipeline_tag: text-classification\n---\n\n"
    else:
        pre = info["preprocessing"]
        usage = (
            "```python\nimport json, numpy as np, onnxruntime as ort\n\n"
            'info = json.load(open("package.json"))  # feature_names, categories, labels\n'
            'session = ort.InferenceSession("model.onnx")\n'
            "features = ...  # float32 [rows, len(feature_names)]: numbers as-is (NaN allowed),\n"
            "                # categories one-hot in the order of feature_names\n"
            'logits = session.run(["logits"], {"features": features})[0]\n```'
        )
        inputs = (
            f"numeric columns {pre['numeric_columns']} (missing → training mean) and categorical "
            f"columns {list(pre['categories'])} (one-hot; missing or unknown → all zeros)"
        )
        front = ""
    files = (
        "`config.json`, `model.safetensors`, tokenizer files"
        if text
        else f"`{WEIGHTS_FILE}`, `{ONNX_FILE}`"
    )
    data_rows = [f"| {k} | {v} |" for k, v in data_summary.items()]
    data_files = [
        f"| `{k}` | {v['sha256'] if v else 'missing'} |" for k, v in lineage["data"].items()
    ]
    libs = ", ".join(f"{k} {v}" for k, v in lineage["libraries"].items() if v)
    return f"""{front}# {info["name"]}

Model family: {info["family"]}; task: {what}. Trained and packaged by reprotrain.

## Intended use

{info.get("intended_use") or "Not stated."}

## Limitations

{info.get("limitations") or "Not stated."}
{outputs} Inputs: {inputs}.

## Data

| split | rows |
|---|---|
{chr(10).join(data_rows) or "| (unknown) | |"}

## Test metrics

| metric | value |
|---|---|
{chr(10).join(_metric_rows({k: v for k, v in metrics.items() if k not in _COMPARISON and not k.startswith("margin_")}))}
{_baseline_section(metrics)}
## Parameters

```json
{json.dumps(parameters, indent=2, sort_keys=True, default=str)}
```

## Lineage

- git commit: {git.get("commit", "unknown")}{" (with uncommitted changes)" if git.get("dirty") else ""}{_conf_note(git)}
- seed: {lineage["seed"]}
- libraries: {libs}

| data file | SHA-256 |
|---|---|
{chr(10).join(data_files) or "| (none recorded) | |"}

## Use

{usage}

Files: {files}, `{PACKAGE_FILE}` (task, labels, preprocessing), `{METRICS_FILE}`, `{LINEAGE_FILE}`,
and `manifest.json` (SHA-256 of every file; `reprotrain.packaging.load_package` checks it).
Nothing in this folder is pickled.
"""


# ------------------------------------------------------------------------------------- drafts
def package_info(
    package: Package, name: str, intended_use: str, limitations: str
) -> dict[str, Any]:
    """The ``package.json`` of a package built from an in-memory ``package``."""
    info: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "name": name,
        "family": package.family,
        "task": package.task,
        "labels": package.labels,
        "intended_use": intended_use,
        "limitations": limitations,
    }
    if isinstance(package, TextPackage):
        info.update(max_length=package.max_length, inputs={"text_column": package.text_column})
    else:
        spec = {"family": "mlp", **package.model.spec}
        info.update(
            architecture=spec,
            preprocessing={
                "feature_names": spec["feature_names"],
                "numeric_columns": package.numeric_columns,
                "categories": package.categories,
                "scaling": {
                    "mean": package.model.mean.tolist(),
                    "std": package.model.std.tolist(),
                    "note": "applied inside the model and the ONNX graph: (x - mean) / std, NaN → 0",
                },
            },
            onnx={"file": ONNX_FILE, "input": ONNX_INPUT, "output": ONNX_OUTPUT, "batch_axis": 0},
        )
    return info


@dataclass
class PackageDraft:
    """A package in memory: ``write`` puts its files in a folder, ``verify`` checks a written copy.

    ``ModelPackageDataset.save`` calls ``write`` on a temporary folder, adds the manifest,
    calls ``verify`` on that folder and only then swaps it into place, so an unverified or
    half-written package is never published (see the dataset's docstring).
    """

    package: Package
    info: dict[str, Any]
    card: str
    metrics: dict[str, Any]
    lineage: dict[str, Any]
    sample: pd.DataFrame = field(repr=False)
    tolerance: float = 1e-5
    onnx: str | None = None  # text packages: also write an ONNX model, "fp32" or "int8"

    def write(self, folder: Path) -> None:
        """Write weights, config/tokenizer or ONNX, metadata and the card into ``folder``."""
        folder = Path(folder)
        if isinstance(self.package, TextPackage):
            self.package.model.save_pretrained(folder)
            self.package.tokenizer.save_pretrained(folder)
            self._set_tokenizer_max_length(folder)
            if self.onnx:
                from reprotrain.onnx_text import export_text_onnx

                export_text_onnx(self.package.model, folder, self.onnx)
        else:
            from safetensors.torch import save_file

            state = {
                k: v.detach().cpu().contiguous() for k, v in self.package.model.state_dict().items()
            }
            save_file(state, folder / WEIGHTS_FILE, metadata={"format": "pt"})
            export_onnx(self.package.model, folder / ONNX_FILE)
        for name, content in (
            (PACKAGE_FILE, self.info),
            (METRICS_FILE, self.metrics),
            (LINEAGE_FILE, self.lineage),
        ):
            (folder / name).write_text(
                json.dumps(content, indent=2, sort_keys=True, default=str) + "\n"
            )
        (folder / CARD_FILE).write_text(self.card)

    def _set_tokenizer_max_length(self, folder: Path) -> None:
        """Record the training truncation length, so ``pipeline(..., truncation=True)`` matches.

        Loading options that ``save_pretrained`` copies from the environment (offline mode,
        local paths) are dropped, so the same model gives the same package on any machine.
        """
        path = folder / "tokenizer_config.json"
        if path.is_file():
            config = json.loads(path.read_text())
            config["model_max_length"] = self.package.max_length
            for key in ("local_files_only", "name_or_path", "_name_or_path"):
                config.pop(key, None)
            path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")

    def verify(self, folder: Path) -> None:
        """Reload ``folder`` from disk and compare its predictions on ``sample`` with memory's.

        For an MLP the ONNX export is run with onnxruntime and compared too.

        Raises:
            PackageVerificationError: Labels differ, or scores differ by more than ``tolerance``.
        """
        expected = self.package.predict(self.sample)
        reloaded = load_package(folder, verify=True)
        compare_predictions(expected, reloaded.predict(self.sample), self.tolerance)
        if isinstance(self.package, TabularPackage):
            logits = onnx_outputs(Path(folder) / ONNX_FILE, self.package.features(self.sample))
            compare_predictions(
                expected, to_predictions(logits, self.package.labels), self.tolerance, "ONNX export"
            )
        if self.onnx:
            from reprotrain.onnx_text import load_onnx_package, verify_onnx

            onnx = load_onnx_package(Path(folder), read_package_info(Path(folder)))
            verify_onnx(expected, onnx, self.sample, self.tolerance)
        log.info("package verified: %d sample rows agree after reload", len(self.sample))


def example_rows(package: Package, table: pd.DataFrame, n: int) -> pd.DataFrame:
    """Up to ``n`` raw input rows reconstructed from a converted table (for verification).

    Text: token ids decoded back to text. Tabular: numbers as they are, one-hot columns back
    to category names (all zeros → missing).
    """
    head = table.head(n)
    if isinstance(package, TextPackage):
        ids = [list(map(int, x)) for x in head["input_ids"]]
        texts = package.tokenizer.batch_decode(ids, skip_special_tokens=True)
        return pd.DataFrame({package.text_column: texts})
    rows = {c: head[c].to_numpy(dtype=np.float64) for c in package.numeric_columns}
    for c, values in package.categories.items():
        onehot = head[[f"{c}={v}" for v in values]].to_numpy()
        names = np.asarray(values, dtype=object)[onehot.argmax(axis=1)]
        rows[c] = np.where(onehot.max(axis=1) > 0, names, None)
    return pd.DataFrame(rows)


def in_memory_package(
    model: nn.Module,
    *,
    task: str,
    labels: list[str] | None,
    tokenizer: str | None = None,
    max_length: int = 128,
    numeric_columns: list[str] | None = None,
    categories: dict[str, list[str]] | None = None,
    text_column: str = "text",
) -> Package:
    """Wrap a trained model (and its preprocessing) in the same predict API as a loaded package.

    ``text_column``: the name of the text column in the user's raw table (``clean.text_column``),
    which the package then expects in tables to predict.
    """
    if isinstance(model, MLP):
        return TabularPackage(
            model,
            task=task,
            labels=labels,
            numeric_columns=numeric_columns or [],
            categories=categories or {},
        )
    if tokenizer is None:
        raise PackageError(
            "a text model needs the tokenizer it was trained with (convert.tokenizer)"
        )
    from transformers import AutoTokenizer

    from reprotrain.checkpoints import resolve_checkpoint

    tok = AutoTokenizer.from_pretrained(resolve_checkpoint(tokenizer), use_fast=True)
    return TextPackage(
        model, tok, task=task, labels=labels, max_length=max_length, text_column=text_column
    )
