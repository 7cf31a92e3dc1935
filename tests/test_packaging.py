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


def penguin_package():
    """The tiny penguins MLP, wrapped in the package API."""
    return in_memory_package(
        tiny_mlp(penguin_features()),
        task="classification",
        labels=PENGUIN_LABELS,
        numeric_columns=NUMERIC,
        categories=CATEGORIES,
    )


def test_to_predictions_softmax_label_and_score():
    out = to_predictions(np.array([[0.0, 0.0], [2.0, 0.0]], dtype=np.float32), ["n", "p"])
    assert out["label"].tolist() == ["n", "n"]
    assert out["score"].tolist() == pytest.approx([0.5, 1 / (1 + np.exp(-2))])
    regression = to_predictions(np.array([[1.5], [-2.0]], dtype=np.float32), None)
    assert regression["prediction"].tolist() == [1.5, -2.0]


def test_tabular_package_accepts_dicts_and_frames(caplog):
    package = penguin_package()
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
    package = penguin_package()
    rows = pd.DataFrame({c: [40.0, 41.0, 42.0] for c in NUMERIC})
    rows[["island", "sex"]] = ["Dream", "male"]
    rows.loc[2, "flipper_length_mm"] = -np.inf
    with pytest.raises(
        PackageInputError, match=r"column 'flipper_length_mm' holds infinite values \(rows \[2\]\)"
    ):
        package.predict(rows)


def test_text_package_takes_the_users_column_name_and_falls_back_to_text(tiny_tokenizer_dir):
    package = in_memory_package(
        tiny_bert(),
        task="classification",
        labels=["negative", "positive"],
        tokenizer=str(tiny_tokenizer_dir),
        max_length=16,
        text_column="message",
    )
    by_name = package.predict(pd.DataFrame({"message": ["good", "dull"], "id": [1, 2]}))
    by_old_name = package.predict(pd.DataFrame({"text": ["good", "dull"]}))
    pd.testing.assert_frame_equal(by_name, by_old_name)
    with pytest.raises(PackageInputError, match=r"lacks the column\(s\) \['message'\]"):
        package.predict(pd.DataFrame({"body": ["good"]}))


def test_mostly_missing_rows_are_warned_about(caplog):
    package = penguin_package()
    rows = pd.DataFrame({c: [40.0, None] for c in NUMERIC})
    rows.loc[1, "bill_length_mm"] = 40.0  # row 1: three of four numbers missing
    rows[["island", "sex"]] = ["Dream", "male"]
    with caplog.at_level("WARNING", logger="reprotrain"):
        package.predict(rows)
    assert "1 row(s) have more than half of their numeric columns" in caplog.text
    assert "(rows [1])" in caplog.text


def test_lineage_names_configuration_that_is_not_committed(tmp_path, monkeypatch):
    import subprocess

    from reprotrain.packaging import git_commit

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "conf" / "base").mkdir(parents=True)
    (tmp_path / "conf" / "local").mkdir()
    (tmp_path / "conf" / "base" / "globals.yml").write_text("task: {}\n")
    (tmp_path / ".gitignore").write_text("conf/local/**\n")
    git("init", "-q")
    git("add", "-A")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init")
    monkeypatch.chdir(tmp_path)
    assert git_commit()["dirty"] is False
    (tmp_path / "conf" / "mine").mkdir()
    (tmp_path / "conf" / "mine" / "globals.yml").write_text("task: {}\n")
    (tmp_path / "conf" / "local" / "parameters_fit.yml").write_text("fit: {}\n")
    found = git_commit()
    assert found["dirty"] is True
    assert found["conf_changes"] == [
        "!! conf/local/parameters_fit.yml",
        "?? conf/mine/globals.yml",
    ]
