"""Package: the trained model as one self-contained, verified folder (see ``reprotrain.packaging``)."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from reprotrain.models import ModelArtifact, from_artifact, label_order_problem, model_labels
from reprotrain.packaging import (
    PackageDraft,
    PackageError,
    collect_lineage,
    example_rows,
    in_memory_package,
    package_info,
    render_card,
)
from reprotrain.params import ConvertParams, FitParams, PackageParams, TaskParams, parse

log = logging.getLogger(__name__)


def card_texts(p: PackageParams, task: TaskParams) -> dict[str, str]:
    """The card's name, intended use and limitations: as written for this task, else generated.

    Texts written for another task are not used (see ``PackageParams.describes``).
    """
    own = p.describes is None or p.describes == task.name
    if not own:
        log.info(
            "package: the texts in parameters_package.yml describe task '%s', not '%s': the "
            "card uses generated ones (set package.name, intended_use, limitations and "
            "describes: %s in your env's parameters_package.yml)",
            p.describes,
            task.name,
            task.name,
        )
    use = "Predicts a numeric target (regression)."
    if task.type == "classification":
        labels = task.labels or []
        use = f"Classifies each row into one of {len(labels)} classes: {', '.join(labels)}."
    return {
        "name": (p.name if own else None) or task.name,
        "intended_use": (p.intended_use if own else None) or use,
        "limitations": (p.limitations if own else None)
        or "Not assessed beyond the test split of its own data: see the metrics and the "
        "baselines below before using it elsewhere.",
    }


def card_parameters(fit: FitParams, convert: ConvertParams, task: TaskParams) -> dict[str, Any]:
    """The fit and convert parameters the card lists, with the task values each step used."""
    shared = {"task": task.type, "labels": task.labels}
    model = fit.model.model_dump(mode="json")
    if model["family"] == "transformer":
        model["checkpoint"] = None if fit.model.config is not None else task.model_checkpoint
    convert_values = {"tokenizer": task.model_checkpoint, "max_length": task.max_length}
    # date_columns only where set: a card without dates reads as before they existed
    exclude = None if convert.date_columns else {"date_columns"}
    return {
        "fit": {**fit.model_dump(mode="json"), **shared, "model": model, "seed": task.seed},
        "convert": {**convert.model_dump(mode="json", exclude=exclude), **shared, **convert_values},
    }


def build_package(
    trained_model: ModelArtifact,
    test_set: pd.DataFrame,
    metrics: dict[str, Any],
    split_report: dict[str, Any],
    package_parameters: dict[str, Any],
    fit_parameters: dict[str, Any],
    convert_parameters: dict[str, Any],
    task: dict[str, Any],
    clean_parameters: dict[str, Any] | None = None,
) -> PackageDraft:
    """Assemble the package in memory: model, preprocessing, card, lineage, a sample to verify.

    Writing, the manifest and the self-check: ``ModelPackageDataset.save``.

    Args:
        trained_model: The trained weights and architecture.
        test_set: The converted test split; its first rows are the verification sample.
        metrics: Test metrics (go into the card and ``metrics.json``).
        split_report: Rows per split (the card's data section).
        package_parameters: The ``package`` parameter group.
        fit_parameters: The ``fit`` parameter group (the card).
        convert_parameters: The ``convert`` parameter group (categories).
        task: The ``task`` parameter group: type, labels, tokenizer, max length, seed and the
            lineage's default files.
        clean_parameters: The ``clean`` parameter group: the text column's name in the raw
            table, which the package expects in tables to predict (default ``text``).
    """
    t = parse("task", task)
    p = parse("package", package_parameters, t)
    fit = parse("fit", fit_parameters, t)
    convert = parse("convert", convert_parameters, t)
    model = from_artifact(trained_model)
    labels = list(t.labels or []) if t.type == "classification" else None
    problem = label_order_problem(labels, model_labels(model), trained_model.source)
    if problem:
        raise PackageError(problem)
    package = in_memory_package(
        model,
        task=t.type,
        labels=labels,
        tokenizer=t.model_checkpoint,
        max_length=t.max_length,
        numeric_columns=convert.numeric_columns,
        categories=convert.categories,
        date_columns=convert.date_columns,
        text_column=(clean_parameters or {}).get("text_column") or "text",
    )
    info = package_info(package, **card_texts(p, t))
    onnx = p.onnx if package.family == "transformer" else None  # an MLP always has model.onnx
    if onnx:
        from reprotrain.packaging.onnx_text import FILES

        info["onnx"] = {"file": FILES[onnx], "precision": onnx, "runtime": "onnxruntime"}
    lineage = collect_lineage(p.lineage_files, t.seed)
    parameters = card_parameters(fit, convert, t)
    data = {split: report.get("rows") for split, report in split_report.items()}
    card = render_card(info, metrics, lineage, parameters, data)
    sample = example_rows(package, test_set, p.verify_rows)
    log.info(
        "package: %s %s model, verifying on %d rows", info["name"], package.family, len(sample)
    )
    return PackageDraft(package, info, card, metrics, lineage, sample, p.tolerance, onnx)
