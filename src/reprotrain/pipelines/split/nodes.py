"""Split: train / validation / test, stratified by label, seeded, optionally grouped."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from reprotrain.params import SPLITS, SplitParams, parse

log = logging.getLogger(__name__)


# Which split a small stratum fills first: training sees the class, then test measures it.
_FILL_ORDER = (0, 2, 1)


def _allocate(n: int, p: SplitParams) -> np.ndarray:
    """Split sizes for ``n`` items in proportion to the fractions (largest remainder).

    Every split with a non-zero fraction gets at least one item when ``n`` allows it (a rare
    class then still reaches validation and test); with fewer items than such splits, they
    go to train first, then test.
    """
    fractions = np.array([p.train, p.validation, p.test])
    exact = fractions * n
    sizes = np.floor(exact).astype(int)
    sizes[np.argsort(-(exact - sizes), kind="stable")[: n - sizes.sum()]] += 1
    wanted = [i for i in _FILL_ORDER if fractions[i] > 0]
    if n < len(wanted):
        sizes[:] = 0
        sizes[wanted[:n]] = 1
        return sizes
    for i in wanted:
        if sizes[i] == 0:
            sizes[int(np.argmax(sizes))] -= 1
            sizes[i] = 1
    return sizes


def assign_splits(
    labels: np.ndarray, groups: np.ndarray | None, p: SplitParams, seed: int
) -> np.ndarray:
    """Return the split index (0 train, 1 validation, 2 test) of every row.

    Rows are shuffled with the seed; within each stratum (a label, or everything when not
    stratified) units are dealt to the splits in proportion. A unit is a row, or all rows of
    one group when a group column is set, so a group never straddles two splits.
    """
    rng = np.random.default_rng(seed)
    if groups is None:
        units = np.arange(len(labels))
    else:
        _, units = np.unique(groups, return_inverse=True)
    n_units = units.max() + 1 if len(units) else 0
    # The label of a unit is the most frequent label among its rows.
    unit_label = np.zeros(n_units, dtype=np.int64)
    if p.stratify:
        codes = pd.factorize(pd.Series(labels))[0]
        table = pd.crosstab(units, codes)
        unit_label = table.to_numpy().argmax(axis=1)
    unit_split = np.empty(n_units, dtype=np.int8)
    for stratum in np.unique(unit_label):
        members = rng.permutation(np.flatnonzero(unit_label == stratum))
        bounds = np.cumsum(_allocate(len(members), p))
        unit_split[members] = np.searchsorted(bounds, np.arange(len(members)), side="right")
    return unit_split[units]


def _warn_missing_classes(report: dict, p: SplitParams) -> None:
    """Warn (and record in the report) when a class is absent from a split that should hold it.

    Its scores on that split would be silently missing: a class with no test row cannot lower
    the test macro-F1.
    """
    seen = {c for part in report.values() for c in part["labels"]}
    for name, part in report.items():
        absent = sorted(seen - set(part["labels"]))
        if absent and getattr(p, name) > 0:
            part["missing_classes"] = absent
            log.warning(
                "split: the %s split has no row of class(es) %s: too few rows of them to place "
                "one in every split, so %s cannot measure them. Add rows of these classes, or "
                "merge or drop them in task.labels.",
                name,
                absent,
                "training" if name == "train" else f"the {name} scores",
            )


def split_table(
    table: pd.DataFrame, parameters: dict[str, Any], task: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """Split the converted table into train, validation and test sets.

    Args:
        table: Output of ``convert_table``, with a ``label`` column.
        parameters: The ``split`` parameter group.
        task: The ``task`` parameter group (seed and labels).

    Returns:
        The train, validation and test tables, and a report of sizes and label counts (by
        class name when ``task`` gives the labels).
    """
    t = parse("task", task)
    p = parse("split", parameters, t)
    if p.group_column is not None and p.group_column not in table.columns:
        raise ValueError(
            f"split.group_column '{p.group_column}' is not a column of the table "
            f"(columns: {list(table.columns)})"
        )
    groups = table[p.group_column].to_numpy() if p.group_column else None
    labels = table["label"].to_numpy()
    classes = np.issubdtype(labels.dtype, np.integer)
    if not classes:
        # Regression targets: stratify on quartiles so each split sees the whole range.
        labels = pd.qcut(labels, q=min(4, len(labels)), labels=False, duplicates="drop")
    which = assign_splits(labels, groups, p, t.seed)
    parts = [table[which == i].reset_index(drop=True) for i in range(3)]
    names = dict(enumerate(t.labels or []))  # the class name where the task gives it, else the id
    report = {}
    for name, part in zip(SPLITS, parts, strict=True):
        counts = part["label"].value_counts().sort_index().items() if classes else []
        by_class = {names.get(int(k), str(k)): int(v) for k, v in counts}
        report[name] = {"rows": len(part), "labels": by_class}
    if classes and p.stratify:
        _warn_missing_classes(report, p)
    empty = [name for name, part in zip(SPLITS, parts, strict=True) if part.empty]
    if empty and not (empty == ["validation"] and p.validation == 0):
        raise ValueError(f"split(s) {empty} are empty: {len(table)} rows are too few for {p}")
    log.info("split: %s", {k: v["rows"] for k, v in report.items()})
    return parts[0], parts[1], parts[2], report
