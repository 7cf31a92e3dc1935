"""Tests of the split node."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reprotrain.params import ParameterError
from reprotrain.pipelines.split.nodes import split_table
from tests.conftest import load_params, load_task

PARAMS = load_params("split")
TASK = load_task()  # labels negative (0) and positive (1), seed 42


def table(n: int = 1000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "label": (rng.random(n) < 0.3).astype(np.int64),
            "group": rng.integers(0, n // 4, n),
        }
    )


def test_disjoint_cover_sizes_and_stratification():
    t = table()
    train, val, test, report = split_table(t, PARAMS, TASK)
    ids = [set(x["id"]) for x in (train, val, test)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert set().union(*ids) == set(t["id"])
    assert (len(train), len(val), len(test)) == (800, 100, 100)
    for part in (train, val, test):  # class share within one row of the whole
        expected = t["label"].mean() * len(part)
        assert abs(part["label"].sum() - expected) <= 1
    assert report["train"]["rows"] == 800


def test_seeded():
    a = split_table(table(), PARAMS, TASK)[0]["id"].tolist()
    b = split_table(table(), PARAMS, TASK)[0]["id"].tolist()
    c = split_table(table(), PARAMS, {**TASK, "seed": 7})[0]["id"].tolist()
    assert a == b
    assert a != c


def test_groups_never_straddle_splits():
    train, val, test, _ = split_table(table(), {**PARAMS, "group_column": "group"}, TASK)
    groups = [set(x["group"]) for x in (train, val, test)]
    assert not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])


def test_unknown_group_column_is_named():
    with pytest.raises(ValueError, match="split.group_column 'user'"):
        split_table(table(), {**PARAMS, "group_column": "user"}, TASK)


def test_fractions_must_sum_to_one():
    with pytest.raises(ParameterError, match="must be 1.0, got 1.1"):
        split_table(table(), {**PARAMS, "train": 0.9}, TASK)


def test_too_few_rows_fails_clearly():
    with pytest.raises(ValueError, match="are empty"):
        split_table(rare_class(2, 1), PARAMS, TASK)


def rare_class(n: int, rare: int) -> pd.DataFrame:
    """``n`` rows of class 0 and ``rare`` rows of class 1."""
    return pd.DataFrame(
        {"id": np.arange(n), "label": np.r_[np.zeros(n - rare), np.ones(rare)].astype(np.int64)}
    )


@pytest.mark.parametrize("rare", [3, 4, 7])
def test_a_rare_class_reaches_every_split(rare, caplog):
    train, val, test, report = split_table(rare_class(2000, rare), PARAMS, TASK)
    for part in (train, val, test):
        assert (part["label"] == 1).sum() >= 1
    assert (train["label"] == 1).sum() >= (test["label"] == 1).sum()
    assert not any("missing_classes" in r for r in report.values())
    assert "has no row of class" not in caplog.text


@pytest.mark.parametrize(
    ("rare", "where", "missing"),
    [(1, "train", ["validation", "test"]), (2, "train,test", ["validation"])],
)
def test_a_class_too_rare_for_every_split_is_reported(rare, where, missing, caplog):
    parts = split_table(rare_class(2000, rare), PARAMS, TASK)
    holding = ",".join(
        n
        for n, part in zip(("train", "validation", "test"), parts[:3], strict=True)
        if (part["label"] == 1).any()
    )
    assert holding == where  # the one row trains the model; a second one is tested
    report = parts[3]
    assert [n for n in report if "missing_classes" in report[n]] == missing
    assert all(report[n]["missing_classes"] == ["positive"] for n in missing)
    assert f"the {missing[-1]} split has no row of class(es) ['positive']" in caplog.text


def test_report_names_the_classes():
    task = {"name": "t", "raw_file": "t.csv", "labels": ["ham", "spam"], "seed": 42}
    report = split_table(table(), PARAMS, task)[3]
    assert set(report["train"]["labels"]) == {"ham", "spam"}
    assert sum(report["test"]["labels"].values()) == report["test"]["rows"]
