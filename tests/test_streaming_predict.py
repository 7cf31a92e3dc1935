"""Predict streams its input: chunks read, predicted and written one at a time, atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from kedro.io.core import DatasetError
from kedro_datasets.pandas import CSVDataset

from reprotrain.datasets import AtomicCSVDataset, StreamingCSVDataset
from reprotrain.packaging import PackageInputError, in_memory_package
from reprotrain.pipelines.predict.nodes import predict_table
from tests.conftest import PROJECT_ROOT, make_penguins, make_reviews
from tests.factories import REVIEW_LABELS, tiny_bert
from tests.pipelines.predict.test_predict import _penguin_package


def _catalog(name: str, path: Path, **load_args) -> CSVDataset:
    """The real catalog entry ``name`` (its type and arguments) at ``path``."""
    entry = yaml.safe_load((PROJECT_ROOT / "conf/base/catalog.yml").read_text())[name]
    cls = StreamingCSVDataset if entry["type"].endswith("StreamingCSVDataset") else CSVDataset
    args = {**entry.get("load_args", {}), **load_args}
    return cls(filepath=str(path), load_args=args or None)


@pytest.fixture(scope="module")
def text_package(tiny_tokenizer_dir):
    return in_memory_package(
        tiny_bert(REVIEW_LABELS),
        task="classification",
        labels=REVIEW_LABELS,
        tokenizer=str(tiny_tokenizer_dir),
        max_length=32,
    )


def _predict_file(package, src: Path, out: Path, chunksize: int | None, **params) -> bytes:
    """The catalog's path: read ``src`` (in chunks), predict, save ``out``; its bytes."""
    data = _catalog("predict_input", src, **({"chunksize": chunksize} if chunksize else {}))
    if chunksize is None:  # the whole table at once, as before streaming
        data._load_args.pop("chunksize", None)
    _catalog("predictions", out).save(predict_table(package, data.load(), params))
    return out.read_bytes()


def test_catalog_reads_predict_input_in_chunks_and_streams_predictions():
    entry = yaml.safe_load((PROJECT_ROOT / "conf/base/catalog.yml").read_text())
    assert entry["predict_input"]["load_args"]["chunksize"] >= 10_000
    assert entry["predictions"]["type"] == "reprotrain.datasets.StreamingCSVDataset"


def test_one_chunk_gives_exactly_the_whole_table_output(text_package, tmp_path):
    make_reviews(90, seed=4)[["id", "text"]].to_csv(tmp_path / "in.csv", index=False)
    whole = _predict_file(text_package, tmp_path / "in.csv", tmp_path / "a.csv", None)
    streamed = _predict_file(text_package, tmp_path / "in.csv", tmp_path / "b.csv", 50_000)
    assert streamed == whole
    assert len(pd.read_csv(tmp_path / "b.csv")) == 90


def test_many_chunks_give_the_same_rows_labels_and_scores(text_package, tmp_path):
    rows = make_reviews(90, seed=4)[["id", "text"]]
    rows.to_csv(tmp_path / "in.csv", index=False)
    _predict_file(text_package, tmp_path / "in.csv", tmp_path / "a.csv", None, batch_size=8)
    _predict_file(text_package, tmp_path / "in.csv", tmp_path / "b.csv", 13, batch_size=8)
    whole, streamed = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")
    pd.testing.assert_frame_equal(streamed.drop(columns="score"), whole.drop(columns="score"))
    # other batches: padding changes the float summation order, not the prediction
    np.testing.assert_allclose(streamed["score"], whole["score"], rtol=0, atol=1e-6)


def test_tabular_chunks_give_the_same_rows_labels_and_scores(tmp_path):
    make_penguins(40).drop(columns="species").to_csv(tmp_path / "in.csv", index=False)
    _predict_file(_penguin_package(), tmp_path / "in.csv", tmp_path / "a.csv", None)
    _predict_file(_penguin_package(), tmp_path / "in.csv", tmp_path / "b.csv", 7)
    whole, streamed = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")
    pd.testing.assert_frame_equal(streamed.drop(columns="score"), whole.drop(columns="score"))
    np.testing.assert_allclose(streamed["score"], whole["score"], rtol=0, atol=1e-6)


def test_a_bad_first_chunk_fails_in_the_node_and_writes_nothing(tmp_path):
    make_penguins(20).drop(columns=["species", "body_mass_g"]).to_csv(
        tmp_path / "in.csv", index=False
    )
    reader = _catalog("predict_input", tmp_path / "in.csv", chunksize=5).load()
    with pytest.raises(PackageInputError, match=r"\['body_mass_g'\]"):
        predict_table(_penguin_package(), reader, {})


def test_a_failure_midway_keeps_the_previous_file_and_no_temporary(tmp_path):
    out = tmp_path / "out.csv"
    out.write_text("previous\n")

    def chunks():
        yield pd.DataFrame({"a": [1]})
        raise RuntimeError("disk full")

    with pytest.raises(DatasetError, match="disk full"):
        StreamingCSVDataset(filepath=str(out)).save(chunks())
    assert out.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_chunks_with_other_columns_are_refused(tmp_path):
    out = tmp_path / "out.csv"
    with pytest.raises(DatasetError, match=r"a chunk has the columns \['b'\]"):
        StreamingCSVDataset(filepath=str(out)).save(
            iter([pd.DataFrame({"a": [1]}), pd.DataFrame({"b": [2]})])
        )
    assert not out.exists()


def test_a_dataframe_saves_as_the_atomic_csv_does(tmp_path):
    frame = pd.DataFrame({"a": [1.5, 2.0], "b": ["x", "y"]})
    StreamingCSVDataset(filepath=str(tmp_path / "s.csv")).save(frame)
    AtomicCSVDataset(filepath=str(tmp_path / "a.csv")).save(frame)
    assert (tmp_path / "s.csv").read_bytes() == (tmp_path / "a.csv").read_bytes()


def test_progress_lines_of_later_chunks_name_their_rows(text_package, tmp_path, caplog):
    make_reviews(80, seed=1)[["id", "text"]].to_csv(tmp_path / "in.csv", index=False)
    reader = _catalog("predict_input", tmp_path / "in.csv", chunksize=40).load()
    params = {"batch_size": 4, "log_every_s": 0}
    with caplog.at_level("INFO", logger="reprotrain"):
        _catalog("predictions", tmp_path / "out.csv").save(
            predict_table(text_package, reader, params)
        )
    lines = [r.getMessage() for r in caplog.records if " rows/s, about " in r.getMessage()]
    assert [line.split(" rows (")[0] for line in lines] == [
        "predict: 32 of 40",  # the first chunk logs as a whole table does
        "predict, rows 41-80: 32 of 40",
    ]
    assert caplog.records[-1].getMessage() == "predict: 80 rows"
