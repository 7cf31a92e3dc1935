"""Package: the trained model as one self-contained, verified folder (see ``reprotrain.packaging``)."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from reprotrain.datasets import ModelArtifact
from reprotrain.models import from_artifact
from reprotrain.packaging import (
    PackageDraft,
    collect_lineage,
    example_rows,
    in_memory_package,
    package_info,
    render_card,
)
from reprotrain.params import parse

log = logging.getLogger(__name__)


def build_package(
    trained_model: ModelArtifact,
    test_set: pd.DataFrame,
    metrics: dict[str, Any],
    split_report: dict[str, Any],
    package_parameters: dict[str, Any],
    fit_parameters: dict[str, Any],
    convert_parameters: dict[str, Any],
    task: dict[str, Any] | None = None,
) -> PackageDraft:
    """Assemble the package in memory: model, preprocessing, card, lineage, a sample to verify.

    Writing, the manifest and the self-check (reload from disk, predict the sample, compare
    with this in-memory model) happen in ``ModelPackageDataset.save``, before the new
    folder replaces the old one.

    Args:
        trained_model: The trained weights and architecture.
        test_set: The converted test split; its first rows are the verification sample.
        metrics: Test metrics (go into the card and ``metrics.json``).
        split_report: Rows per split (the card's data section).
        package_parameters: The ``package`` parameter group.
        fit_parameters: The ``fit`` parameter group (task, labels, seed; the card).
        convert_parameters: The ``convert`` parameter group (tokenizer, max length, categories).
        task: The ``task`` parameter group, which fills the three groups' shared keys and
            paths; ``None`` if they hold them already.
    """
    p = parse("package", package_parameters, task)
    fit = parse("fit", fit_parameters, task)
    convert = parse("convert", convert_parameters, task)
    package = in_memory_package(
        from_artifact(trained_model),
        task=fit.task,
        labels=list(fit.labels) if fit.task == "classification" else None,
        tokenizer=convert.tokenizer,
        max_length=convert.max_length,
        numeric_columns=convert.numeric_columns,
        categories=convert.categories,
    )
    info = package_info(package, p.name, p.intended_use, p.limitations)
    lineage = collect_lineage(p.lineage_files, fit.seed)
    parameters = {"fit": fit.model_dump(mode="json"), "convert": convert.model_dump(mode="json")}
    data = {split: report.get("rows") for split, report in split_report.items()}
    card = render_card(info, metrics, lineage, parameters, data)
    sample = example_rows(package, test_set, p.verify_rows)
    log.info("package: %s %s model, verifying on %d rows", p.name, package.family, len(sample))
    return PackageDraft(package, info, card, metrics, lineage, sample, p.tolerance)
