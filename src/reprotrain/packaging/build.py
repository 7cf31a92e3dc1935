"""A package in memory (``PackageDraft``): its ``package.json``, files and verification."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from reprotrain.artifact import save_weights
from reprotrain.features import format_dates
from reprotrain.inference import to_predictions
from reprotrain.models.mlp import MLP
from reprotrain.packaging.format import (
    CARD_FILE,
    FORMAT_VERSION,
    LINEAGE_FILE,
    METRICS_FILE,
    ONNX_FILE,
    ONNX_INPUT,
    ONNX_OUTPUT,
    PACKAGE_FILE,
    WEIGHTS_FILE,
)
from reprotrain.packaging.onnx import export_onnx, onnx_outputs
from reprotrain.packaging.runtime import (
    Package,
    PackageError,
    TabularPackage,
    TextPackage,
    compare_predictions,
    load_package,
)

log = logging.getLogger(__name__)


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
        if package.date_columns:  # written only when there are some: older packages lack it
            info["preprocessing"]["date_columns"] = package.date_columns
    return info


@dataclass
class PackageDraft:
    """A package in memory: ``write`` puts its files in a folder, ``verify`` checks a written copy
    (``ModelPackageDataset.save`` calls both before it publishes the folder)."""

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
                from reprotrain.packaging.onnx_text import export_text_onnx

                export_text_onnx(self.package.model, folder, self.onnx)
        else:
            weights = self.package.model.state_dict()
            save_weights(weights, folder / WEIGHTS_FILE, metadata={"format": "pt"})
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
            from reprotrain.packaging.onnx_text import verify_onnx

            onnx = load_package(folder, verify=False, backend="onnx")  # checked just above
            verify_onnx(expected, onnx, self.sample, self.tolerance)
        log.info("package verified: %d sample rows agree after reload", len(self.sample))


def example_rows(package: Package, table: pd.DataFrame, n: int) -> pd.DataFrame:
    """Up to ``n`` raw input rows reconstructed from a converted table (for verification).

    Text: token ids decoded back to text. Tabular: numbers as they are, date parts back to
    dates written in their format (to the minute), one-hot columns back to category names
    (all zeros → missing).
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
    for c, fmt in package.date_columns.items():
        rows[c] = _dates_from_parts(head, c, fmt)
    return pd.DataFrame(rows)


def _dates_from_parts(table: pd.DataFrame, column: str, fmt: str) -> np.ndarray:
    """``column``'s dates rebuilt from its converted parts (``features.date_parts``), written
    with ``fmt``; NaN parts → missing. Exact to the minute (``.hour`` holds minutes)."""
    doy = table[f"{column}.day_of_year"].to_numpy(np.float64)
    # .time lies in [year, year + 1): less the day's share (at most 1/365) it rounds to the year
    year = np.round(table[f"{column}.time"].to_numpy(np.float64) - (doy - 1) / 365.5)
    hour = f"{column}.hour"
    hours = table[hour].to_numpy(np.float64) if hour in table else np.zeros(len(table))
    dates = pd.Series(
        [
            pd.NaT
            if np.isnan(y) or np.isnan(d)
            else pd.Timestamp(int(y), 1, 1) + pd.Timedelta(days=int(d) - 1, minutes=round(h * 60))
            for y, d, h in zip(year, doy, hours, strict=True)
        ],
        dtype="datetime64[us]",
    )
    return format_dates(dates, fmt).to_numpy(dtype=object, na_value=None)


def in_memory_package(
    model: nn.Module,
    *,
    task: str,
    labels: list[str] | None,
    tokenizer: str | None = None,
    max_length: int = 128,
    numeric_columns: list[str] | None = None,
    categories: dict[str, list[str]] | None = None,
    date_columns: dict[str, str] | None = None,
    text_column: str = "text",
) -> Package:
    """Wrap a trained model (and its preprocessing) in the same predict API as a loaded package.

    ``text_column``: the name of the text column in the user's raw table (``clean.text_column``),
    which the package then expects in tables to predict.
    """
    if isinstance(model, MLP):
        return TabularPackage(
            model=model,
            task=task,
            labels=labels,
            numeric_columns=numeric_columns or [],
            categories=categories or {},
            date_columns=date_columns or {},
        )
    if tokenizer is None:
        raise PackageError(
            "a text model needs the tokenizer it was trained with (task.model_checkpoint)"
        )
    from transformers import AutoTokenizer

    from reprotrain.pretrained import resolve_checkpoint

    tok = AutoTokenizer.from_pretrained(resolve_checkpoint(tokenizer), use_fast=True)
    return TextPackage(
        model=model,
        tokenizer=tok,
        task=task,
        labels=labels,
        max_length=max_length,
        text_column=text_column,
    )
