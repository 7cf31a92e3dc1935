"""Tune: search the fit step's parameters on the training and validation splits.

The test split is never read here: the winner is applied with ``python -m reprotrain
tune-apply`` and only then trained and evaluated by the train pipeline.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from reprotrain.params import ParameterError, check_space, parse, with_point

log = logging.getLogger(__name__)


def search(
    train_set: pd.DataFrame,
    validation_set: pd.DataFrame,
    parameters: dict[str, Any],
    fit_parameters: dict[str, Any],
    task: dict[str, Any],
) -> pd.DataFrame:
    """Run the search; return one row per trial (state, score, duration, values, digest).

    Raises:
        ParameterError: a bad search space (before any trial), or no validation split.
        RuntimeError: every trial failed (the first failure's reason is named).
    """
    from reprotrain.pipelines.tune.search import run_search, trial_table

    tune = parse("tune", parameters, task)
    check_space(tune, fit_parameters, task)
    if validation_set is None or len(validation_set) == 0:
        raise ParameterError(
            "tune needs a validation split to score trials on: set split.validation > 0 in "
            "parameters_split.yml and rerun the split step"
        )
    fit_raw = dict(fit_parameters)
    fit = parse("fit", fit_raw, task)
    if fit.trainer.devices * fit.trainer.num_nodes > 1:
        raise ParameterError(
            "tune runs each trial on one device (tune.jobs trials at a time): set "
            "fit.trainer.devices: 1 and num_nodes: 1 for the search, or tune.jobs to the "
            "number of devices"
        )
    if fit.budget:
        log.warning(
            "tune: fit.budget (%g minutes) stops each trial at a time, not a step: a rerun of "
            "the best trial may stop elsewhere; prefer fit.budget: null and tune.budget",
            fit.budget,
        )
    log.info(
        "tune: up to %s trials%s on %s, %s trial(s) at a time, %d training rows",
        tune.trials or "unlimited",
        f" within {tune.budget:g} minutes" if tune.budget else "",
        tune.metric,
        tune.jobs,
        len(train_set),
    )
    study = run_search(train_set, validation_set, tune, fit_raw, task)
    table = trial_table(study, tune)
    counts = table["state"].value_counts().to_dict()
    log.info("tune: %d trials: %s", len(table), ", ".join(f"{n} {s}" for s, n in counts.items()))
    if not (table["state"] == "complete").any():
        first = table["error"].iloc[0] if len(table) else "no trial ran"
        raise RuntimeError(f"tune: no trial completed ({first})")
    return table


def best_parameters(trials: pd.DataFrame, parameters: dict[str, Any], task: dict[str, Any]) -> dict:
    """The best complete trial's values as a fit group (what ``tune-apply`` writes)."""
    tune = parse("tune", parameters, task)
    done = trials[trials["state"] == "complete"]
    pick = (
        done[tune.metric].idxmin() if tune.direction == "minimize" else done[tune.metric].idxmax()
    )
    row = done.loc[pick]
    log.info("tune: best trial %d, %s %.4f", row["trial"], tune.metric, row[tune.metric])
    return {
        "trial": int(row["trial"]),
        "objective": tune.metric,
        "value": float(row[tune.metric]),
        "weights_sha256": row["weights_sha256"],
        "fit": with_point({}, json.loads(row["point"])),
    }


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


_COLOURS = {"complete": "tab:blue", "pruned": "tab:orange", "failed": "tab:red"}


def plot_search_history(
    trials: pd.DataFrame, parameters: dict[str, Any], task: dict[str, Any]
) -> Figure:
    """The score of each trial (pruned ones at their last validation) and the best so far."""
    tune = parse("tune", parameters, task)
    metric = tune.metric
    fig = _new_figure(6, 4)
    ax = fig.add_subplot()
    for state, rows in trials.groupby("state"):
        ax.scatter(rows["trial"], rows[metric], label=state, color=_COLOURS.get(state), s=18)
    done = trials[trials["state"] == "complete"].set_index("trial")[metric]
    best = (
        (done.cummin() if tune.direction == "minimize" else done.cummax())
        .reindex(trials["trial"])
        .ffill()
    )
    # held to half a trial past the last one, so that a last-trial best shows as a step
    x = [*best.index.tolist(), best.index[-1] + 0.5]
    y = [*best.tolist(), best.iloc[-1]]
    ax.step(x, y, where="post", color="black", label="best so far")
    ax.set(xlabel="trial", ylabel=f"{metric} (validation)", title="Search history")
    ax.legend(fontsize=8)
    return fig


def plot_parameters(
    trials: pd.DataFrame, parameters: dict[str, Any], task: dict[str, Any]
) -> Figure:
    """One panel per searched parameter: each trial's score against its value."""
    tune = parse("tune", parameters, task)
    keys = list(tune.space)
    cols = min(3, len(keys))
    rows_n = int(np.ceil(len(keys) / cols))
    fig = _new_figure(3.6 * cols, 3 * rows_n)
    for n, key in enumerate(keys, start=1):
        ax = fig.add_subplot(rows_n, cols, n)
        entry = tune.space[key]
        values = trials[key]
        numeric = pd.api.types.is_numeric_dtype(values) and not hasattr(entry, "choices")
        x = values if numeric else values.astype(str)
        for state, idx in trials.groupby("state").groups.items():
            ax.scatter(x.loc[idx], trials.loc[idx, tune.metric], s=14, color=_COLOURS.get(state))
        if numeric and getattr(entry, "log", False):
            ax.set_xscale("log")
        ax.set(xlabel=key.removeprefix("fit."), ylabel=tune.metric)
    fig.suptitle("Score against each searched parameter (blue complete, orange pruned)")
    return fig
