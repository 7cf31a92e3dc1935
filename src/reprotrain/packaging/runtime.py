"""A loaded package: the predictors, ``load_package`` and the check that a reload agrees.

Nothing here imports Kedro or Lightning: an application that only predicts needs torch,
pandas and (for text) transformers.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from reprotrain.atomic import recover_dir
from reprotrain.batches import sorted_batches
from reprotrain.features import DATE_PARTS, date_parts, normalise_text, one_hot, parse_dates
from reprotrain.inference import to_predictions
from reprotrain.models.mlp import MLP, mlp_from_spec
from reprotrain.packaging.format import FORMAT_VERSION, PACKAGE_FILE, WEIGHTS_FILE
from reprotrain.packaging.manifest import verify_manifest

log = logging.getLogger(__name__)

# texts per forward pass: the fastest on a CPU, in torch and onnxruntime alike (benchmarks/
# RESULTS.md, row 7); predict.batch_size defaults to the same (params.py imports no torch)
TEXT_BATCH = 32


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


class _Predictor:
    """What both kinds of package share: ``predict`` on top of their own ``outputs``."""

    labels: list[str] | None
    batch_size: int  # rows per forward pass unless ``predict`` is told otherwise

    @property
    def width(self) -> int:
        """Outputs per row: one per class, or one number (regression)."""
        return 1 if self.labels is None else len(self.labels)

    def predict(
        self, rows: Any, *, batch_size: int | None = None, text_column: str | None = None
    ) -> pd.DataFrame:
        """Label and score (classification) or prediction (regression) for every row.

        Args:
            rows: A DataFrame with the columns the model needs, a list of dicts, or (text
                packages) a list of strings.
            batch_size: Rows per forward pass (default: the package's ``batch_size``).
            text_column: Text packages: the column holding the text (default: the package's,
                the name the raw training table gave it; a table without it may use ``text``).

        Raises:
            PackageInputError: A needed column is missing or holds unusable values.
        """
        batch_size = batch_size or self.batch_size
        outputs = self.outputs(rows, batch_size=batch_size, text_column=text_column)
        return to_predictions(outputs, self.labels)


@dataclass(eq=False, kw_only=True)
class TextPackage(_Predictor):
    """A text classifier (or regressor): a Hugging Face model and its tokenizer."""

    model: nn.Module | None = field(default=None, repr=False)  # None: OnnxTextPackage
    tokenizer: Any = field(repr=False)
    task: str
    labels: list[str] | None
    max_length: int
    text_column: str = "text"
    info: dict[str, Any] = field(default_factory=dict, repr=False)
    folder: Path | None = None  # the folder it was loaded from (``load_package``)

    family: ClassVar[str] = "transformer"
    backend: ClassVar[str] = "torch"
    batch_size: ClassVar[int] = TEXT_BATCH

    def __post_init__(self) -> None:
        if self.model is not None:
            self.model.eval()

    @classmethod
    def from_folder(cls, folder: Path, info: dict[str, Any], **runner: Any) -> TextPackage:
        """The package ``folder`` (its tokenizer and ``package.json`` ``info``) around
        ``runner``: ``model=`` the torch model, or (``OnnxTextPackage``) ``session=``."""
        from transformers import AutoTokenizer

        return cls(
            tokenizer=AutoTokenizer.from_pretrained(folder),
            task=info["task"],
            labels=info["labels"],
            max_length=info["max_length"],
            text_column=info["inputs"]["text_column"],
            info=info,
            folder=Path(folder),
            **runner,
        )

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
        return normalise_text(values.astype(str)).tolist()

    @torch.inference_mode()
    def outputs(
        self, rows: Any, *, batch_size: int = TEXT_BATCH, text_column: str | None = None
    ) -> np.ndarray:
        """Raw model outputs for every row, in row order (texts batched by length)."""
        texts = self.texts(rows, text_column)
        out = np.empty((len(texts), self.width), dtype=np.float32)
        for idx in sorted_batches([len(t) for t in texts], batch_size):
            out[idx] = self._logits([texts[j] for j in idx])
        return out

    def _logits(self, texts: list[str]) -> np.ndarray:
        """One forward pass: ``texts`` padded to the longest of them → raw outputs."""
        enc = self.tokenizer(
            texts, truncation=True, max_length=self.max_length, padding=True, return_tensors="pt"
        )
        return self.model(**enc).logits.float().cpu().numpy()


def _date_names(column: str) -> list[str]:
    """The names ``features.date_parts`` gives ``column``'s features, in order."""
    return [f"{column}.{part}" for part in DATE_PARTS]


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


@dataclass(eq=False, kw_only=True)
class TabularPackage(_Predictor):
    """An MLP on numeric, date and one-hot categorical columns (scaling inside the model).

    ``date_columns`` maps a raw column to its format (``features.parse_dates``); its features
    are the parts (``features.date_parts``) the model's ``feature_names`` hold.
    """

    model: MLP = field(repr=False)
    task: str
    labels: list[str] | None
    numeric_columns: list[str]
    categories: dict[str, list[str]]
    date_columns: dict[str, str] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict, repr=False)

    family: ClassVar[str] = "mlp"
    batch_size: ClassVar[int] = 1024

    def __post_init__(self) -> None:
        self.model.eval()
        self.numeric_columns = list(self.numeric_columns)
        # The model's feature_names are the one ordered source of truth: a JSON object of
        # categories may come back in another order (package.json is written with sorted keys).
        expected = list(self.model.spec["feature_names"])
        position = {name: i for i, name in enumerate(expected)}
        self.date_columns = dict(
            sorted(self.date_columns.items(), key=lambda kv: position.get(f"{kv[0]}.time", -1))
        )
        self.categories = {
            k: list(v)
            for k, v in sorted(
                self.categories.items(),
                key=lambda kv: position.get(f"{kv[0]}={kv[1][0]}", len(expected)) if kv[1] else 0,
            )
        }
        dates = [n for c in self.date_columns for n in _date_names(c) if n in position]
        names = [*self.numeric_columns, *dates]
        names += [f"{c}={v}" for c, vs in self.categories.items() for v in vs]
        if names != expected:
            raise PackageError(
                f"preprocessing gives features {names} but the model expects {expected}"
            )

    def features(self, rows: Any) -> np.ndarray:
        """Raw rows → the model's float32 features (numbers as given, date parts, categories
        one-hot).

        Missing and unknown values are encoded as in the convert step (``features.one_hot``;
        a missing date: NaN parts).

        Raises:
            PackageInputError: A needed column is missing, a numeric column is not numeric
                or holds an infinite value, or a date does not read with its format.
        """
        frame = _as_frame(rows, None)
        _require(frame, [*self.numeric_columns, *self.date_columns, *self.categories])
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
        wanted = set(self.model.spec["feature_names"])
        for c, fmt in self.date_columns.items():
            try:
                dates = parse_dates(frame[c], c, fmt)
            except ValueError as err:
                raise PackageInputError(f"{err}: the model reads dates in that format") from None
            cols += [v for name, v in date_parts(dates, c).items() if name in wanted]
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
        return np.concatenate(chunks) if chunks else np.empty((0, self.width), np.float32)


Package = TextPackage | TabularPackage


# The keys (``inputs.text_column``: a key inside ``inputs``) and types each family needs
_REQUIRED: dict[str, dict[str, Any]] = {
    "transformer": {"max_length": int, "inputs": dict, "inputs.text_column": object},
    "mlp": {
        "architecture": dict,
        "preprocessing": dict,
        "preprocessing.numeric_columns": object,
        "preprocessing.categories": object,
    },
}


def _check_keys(path: Path, info: dict[str, Any], wanted: dict[str, Any]) -> None:
    """Refuse ``info`` unless it holds each (dotted) key of ``wanted`` with a value of its type."""
    for key, kind in wanted.items():
        group, _, sub = key.rpartition(".")
        holder = info[group] if group else info
        if sub not in holder:
            raise PackageError(f"{path}: key '{key}' is missing; rebuild the package")
        if not isinstance(holder[sub], kind):
            raise PackageError(
                f"{path}: key '{key}' has the wrong type ({type(holder[sub]).__name__}: "
                f"{holder[sub]!r}); rebuild the package"
            )


def read_package_info(folder: Path) -> dict[str, Any]:
    """``package.json`` of ``folder``, checked for the keys and types ``load_package`` uses.

    Raises:
        PackageError: The file is missing, not JSON, or lacks a key or has one of the wrong
            type; the message names the file and the key.
    """
    path = folder / PACKAGE_FILE
    if not path.is_file():
        raise PackageError(f"{path.parent} is not a model package: it has no {path.name}")
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
    _check_keys(path, info, {"task": str, "labels": (list, type(None)), **_REQUIRED[family]})
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

    A folder that a crashed save left swapped aside is restored first (``recover_dir``).

    Args:
        folder: The package folder.
        verify: Check ``manifest.json`` first (recommended).
        backend: ``torch``, or ``onnx``: a text package built with ``package.onnx`` runs its
            ONNX model with onnxruntime (``reprotrain.packaging.onnx_text``).

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
        from reprotrain.packaging.onnx_text import load_onnx_package

        return load_onnx_package(folder, info)
    if info["family"] == "transformer":
        from transformers import AutoModelForSequenceClassification

        from reprotrain.models.transformer import quietly

        if not (folder / WEIGHTS_FILE).is_file():
            raise PackageError(
                f"{folder} has no {WEIGHTS_FILE}; packages load safetensors weights only "
                "(a pickled pytorch_model.bin is never loaded)"
            )
        model = quietly(
            AutoModelForSequenceClassification.from_pretrained, folder, use_safetensors=True
        )
        _check_package_labels(folder, info, model)
        return TextPackage.from_folder(folder, info, model=model)
    from safetensors.torch import load_file

    try:
        model = mlp_from_spec(info["architecture"])
    except (TypeError, ValueError) as err:
        raise PackageError(f"{folder / PACKAGE_FILE}: bad 'architecture': {err}") from None
    _check_package_labels(folder, info, model)
    model.load_state_dict(load_file(folder / WEIGHTS_FILE), strict=True)
    pre = info["preprocessing"]
    dates = pre.get("date_columns", {})  # older packages: no date columns
    if not (isinstance(dates, dict) and all(isinstance(v, str) for v in dates.values())):
        raise PackageError(
            f"{folder / PACKAGE_FILE}: key 'preprocessing.date_columns' must map each column "
            f"to its format, not {dates!r}; rebuild the package"
        )
    return TabularPackage(
        model=model,
        task=info["task"],
        labels=info["labels"],
        numeric_columns=pre["numeric_columns"],
        categories=pre["categories"],
        date_columns=dates,
        info=info,
    )


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
