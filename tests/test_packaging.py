"""The package API on its own: inputs it accepts, regression outputs, missing text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reprotrain.inference import to_predictions
from reprotrain.packaging import PackageError, PackageInputError, in_memory_package
from tests.factories import (
    CATEGORIES,
    NUMERIC,
    PENGUIN_LABELS,
    penguin_features,
    tiny_bert,
    tiny_mlp,
)


def test_to_predictions_softmax_label_and_score():
    out = to_predictions(np.array([[0.0, 0.0], [2.0, 0.0]], dtype=np.float32), ["n", "p"])
    assert out["label"].tolist() == ["n", "n"]
    assert out["score"].tolist() == pytest.approx([0.5, 1 / (1 + np.exp(-2))])
    regression = to_predictions(np.array([[1.5], [-2.0]], dtype=np.float32), None)
    assert regression["prediction"].tolist() == [1.5, -2.0]


def test_tabular_package_accepts_dicts_and_frames(caplog):
    package = in_memory_package(
        tiny_mlp(penguin_features()),
        task="classification",
        labels=PENGUIN_LABELS,
        numeric_columns=NUMERIC,
        categories=CATEGORIES,
    )
    row = {
        "bill_length_mm": 40.0,
        "bill_depth_mm": 18.0,
        "flipper_length_mm": 190.0,
        "body_mass_g": None,
        "island": "Dream",
        "sex": "unknown-value",
    }
    with caplog.at_level("WARNING", logger="reprotrain.features"):
        from_dicts = package.predict([row])
    assert "column 'sex': 1 row(s) hold value(s) outside its categories" in caplog.text
    assert "['unknown-value']" in caplog.text
    from_frame = package.predict(pd.DataFrame([row]))
    pd.testing.assert_frame_equal(from_dicts, from_frame)
    features = package.features([row])[0]
    assert np.isnan(features[3])
    assert features[4:].tolist() == [0, 1, 0, 0, 0]  # Dream; an unknown sex is all zeros


def test_tabular_package_rejects_a_mismatched_preprocessing():
    with pytest.raises(PackageError, match="expects"):
        in_memory_package(
            tiny_mlp(penguin_features()),
            task="classification",
            labels=PENGUIN_LABELS,
            numeric_columns=NUMERIC[:2],
            categories=CATEGORIES,
        )


def test_text_package_needs_a_tokenizer_and_text(tiny_tokenizer_dir):
    with pytest.raises(PackageError, match="tokenizer"):
        in_memory_package(tiny_bert(), task="classification", labels=["negative", "positive"])
    package = in_memory_package(
        tiny_bert(),
        task="classification",
        labels=["negative", "positive"],
        tokenizer=str(tiny_tokenizer_dir),
        max_length=16,
    )
    assert len(package.predict("a  good\n film")) == 1
    with pytest.raises(PackageInputError, match="missing text"):
        package.predict(pd.DataFrame({"text": ["good", None]}))
    other = package.predict(pd.DataFrame({"review": ["good"]}), text_column="review")
    assert other["label"].iloc[0] in ("negative", "positive")


def test_tabular_package_rejects_infinite_values():
    package = in_memory_package(
        tiny_mlp(penguin_features()),
        task="classification",
        labels=PENGUIN_LABELS,
        numeric_columns=NUMERIC,
        categories=CATEGORIES,
    )
    rows = pd.DataFrame({c: [40.0, 41.0, 42.0] for c in NUMERIC})
    rows[["island", "sex"]] = ["Dream", "male"]
    rows.loc[2, "flipper_length_mm"] = -np.inf
    with pytest.raises(
        PackageInputError, match=r"column 'flipper_length_mm' holds infinite values \(rows \[2\]\)"
    ):
        package.predict(rows)
