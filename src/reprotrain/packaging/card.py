"""The model card (``README.md``) of a package."""

from __future__ import annotations

import json
from typing import Any

from reprotrain.features import DATE_PARTS
from reprotrain.packaging.format import (
    LINEAGE_FILE,
    METRICS_FILE,
    ONNX_FILE,
    PACKAGE_FILE,
    WEIGHTS_FILE,
)
from reprotrain.params import HEADLINE_METRICS


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
    headline = [k for k in HEADLINE_METRICS if k in metrics]
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


# What each date feature holds (``features.date_parts``), for the card
_DATE_MEANINGS = {
    "time": "the date in years, with the elapsed share of the year",
    "month": "1-12",
    "day_of_week": "0 Monday to 6 Sunday",
    "day_of_year": "1-366",
    "hour": "hours since midnight",
}


def _date_inputs(pre: dict[str, Any]) -> str:
    """The card's words on the date columns: format and derived features; "" without any."""
    dates = pre.get("date_columns") or {}
    names = pre["feature_names"]
    each = [
        f"`{c}` read with format `{fmt}` → "
        + ", ".join(f"`{c}.{p}` ({_DATE_MEANINGS[p]})" for p in DATE_PARTS if f"{c}.{p}" in names)
        for c, fmt in dates.items()
    ]
    if not each:
        return ""
    return f", and date columns: {'; '.join(each)}; a missing date → training means"


def render_card(
    info: dict[str, Any],
    metrics: dict[str, Any],
    lineage: dict[str, Any],
    parameters: dict[str, Any],
    data_summary: dict[str, Any],
) -> str:
    """The model card (``README.md``) of a package."""
    if info["task"] == "regression":
        what = "regression (one number per row, in the target's units)"
        outputs = "Predictions are numbers in the target's units, not probabilities."
    else:
        what = f"classification into {', '.join(info['labels'] or [])}"
        outputs = "Scores are softmax probabilities of an uncalibrated model."
    git = lineage.get("git") or {}
    if info["family"] == "transformer":
        usage = (
            "```python\nfrom transformers import pipeline\n\n"
            'classify = pipeline("text-classification", model="path/to/this/folder")\n'
            'classify(["a lovely, moving film"], truncation=True)  # truncation=True: as in training\n```'
        )
        inputs = f"one text column (`{info['inputs']['text_column']}`), truncated to {info['max_length']} tokens"
        front = "---\nlibrary_name: transformers\npipeline_tag: text-classification\n---\n\n"
        files = "`config.json`, `model.safetensors`, tokenizer files"
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
        ) + _date_inputs(pre)
        front = ""
        files = f"`{WEIGHTS_FILE}`, `{ONNX_FILE}`"
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
