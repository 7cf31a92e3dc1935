"""Atomic saves: a save that fails midway leaves the previous file byte-identical, no temp file."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from kedro.io.core import DatasetError
from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import CSVDataset

from reprotrain.datasets import (
    AtomicCSVDataset,
    AtomicJSONDataset,
    AtomicMatplotlibDataset,
    AtomicParquetDataset,
)
from tests.conftest import PROJECT_ROOT


class Explodes:
    """A value whose serialisation fails: ``str`` (CSV) and ``json`` both raise."""

    def __str__(self) -> str:
        raise RuntimeError("serialisation failed midway")

    __repr__ = __str__


def big_frame_failing_at_the_end() -> pd.DataFrame:
    """A one-column frame pandas writes in several chunks; the last row cannot be written."""
    values: list[object] = [f"row {i}" for i in range(250_000)]
    values[-1] = Explodes()
    return pd.DataFrame({"text": values})


def figure():
    from matplotlib.figure import Figure

    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    return fig


def failing_figure():
    from matplotlib.artist import Artist

    class Broken(Artist):
        def draw(self, renderer) -> None:
            raise RuntimeError("cannot render")

    fig = figure()
    fig.add_artist(Broken())
    return fig


GOOD_AND_BAD = {
    "csv": (AtomicCSVDataset, "t.csv", pd.DataFrame({"a": [1, 2]}), big_frame_failing_at_the_end),
    "parquet": (
        AtomicParquetDataset,
        "t.parquet",
        pd.DataFrame({"a": [1, 2]}),
        lambda: pd.DataFrame({"a": [1, Explodes()]}),
    ),
    "json": (
        AtomicJSONDataset,
        "t.json",
        {"rows": 2},
        lambda: {"first": list(range(100_000)), "last": Explodes()},
    ),
    "matplotlib": (AtomicMatplotlibDataset, "t.png", figure(), failing_figure),
}


@pytest.mark.parametrize("kind", sorted(GOOD_AND_BAD))
def test_failed_save_keeps_the_previous_file_and_leaves_no_temp(tmp_path: Path, kind: str):
    cls, name, good, bad = GOOD_AND_BAD[kind]
    ds = cls(filepath=str(tmp_path / name))
    ds.save(good)
    before = (tmp_path / name).read_bytes()
    with pytest.raises(DatasetError, match=name):
        ds.save(bad())
    assert (tmp_path / name).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_in_place_saves_would_have_left_a_half_written_file(tmp_path: Path):
    """The control: kedro-datasets' own classes truncate the old file on the same failures."""
    csv = CSVDataset(filepath=str(tmp_path / "t.csv"))
    csv.save(pd.DataFrame({"a": [1, 2]}))
    with pytest.raises(DatasetError):
        csv.save(big_frame_failing_at_the_end())
    assert (tmp_path / "t.csv").read_text().startswith("text\nrow 0\n")  # half a new file

    js = JSONDataset(filepath=str(tmp_path / "t.json"))
    js.save({"rows": 2})
    with pytest.raises(DatasetError):
        js.save({"first": list(range(100_000)), "last": Explodes()})
    with pytest.raises(json.JSONDecodeError):
        json.loads((tmp_path / "t.json").read_text())


@pytest.mark.parametrize("kind", sorted(GOOD_AND_BAD))
def test_round_trip_and_save_args_kept(tmp_path: Path, kind: str):
    cls, name, good, _ = GOOD_AND_BAD[kind]
    ds = cls(filepath=str(tmp_path / "sub" / name))
    ds.save(good)
    assert ds.exists()
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == [name]
    if kind in ("csv", "parquet"):
        pd.testing.assert_frame_equal(ds.load(), good)
    elif kind == "json":
        assert ds.load() == good


def test_json_save_args_reach_the_file(tmp_path: Path):
    AtomicJSONDataset(
        filepath=str(tmp_path / "m.json"), save_args={"indent": 2, "sort_keys": True}
    ).save({"b": 1, "a": 2})
    assert (tmp_path / "m.json").read_text() == '{\n  "a": 2,\n  "b": 1\n}'


def test_a_folder_at_the_target_is_named(tmp_path: Path):
    (tmp_path / "t.csv").mkdir()
    with pytest.raises(DatasetError, match=r"t\.csv is a folder"):
        AtomicCSVDataset(filepath=str(tmp_path / "t.csv")).save(pd.DataFrame({"a": [1]}))


def test_every_written_catalog_entry_saves_atomically():
    """Each persisted dataset the pipelines write is an atomic type (raw inputs are only read)."""
    atomic = {
        "reprotrain.datasets.AtomicCSVDataset",
        "reprotrain.datasets.AtomicParquetDataset",
        "reprotrain.datasets.AtomicJSONDataset",
        "reprotrain.datasets.AtomicYAMLDataset",
        "reprotrain.datasets.AtomicMatplotlibDataset",
        "reprotrain.datasets.StreamingCSVDataset",  # chunks into one temporary file, renamed
        "reprotrain.datasets.SafetensorsModelDataset",  # folder swap (replace_dir)
        "reprotrain.datasets.ModelPackageDataset",  # folder swap after self-verification
    }
    read_only = {"raw_table", "predict_input"}
    for catalog in sorted(PROJECT_ROOT.glob("conf/*/catalog*.yml")):
        for name, entry in yaml.safe_load(catalog.read_text()).items():
            if name in read_only or "filepath" not in entry:
                continue
            assert entry["type"] in atomic, f"{catalog.name}: {name} writes in place"


def test_writing_replaces_on_success_and_keeps_the_target_on_failure(tmp_path):
    from reprotrain.atomic import writing

    target = tmp_path / "best.ckpt"
    target.write_bytes(b"old")
    crashed = tmp_path / ".best.ckpt.tmp-999999999-deadbeef"  # a killed writer's leftover
    crashed.write_bytes(b"partial")
    with pytest.raises(OSError, match="disk full"):
        with writing(target) as tmp:
            tmp.write_bytes(b"half")
            raise OSError(28, "disk full")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.ckpt"]
    with writing(target) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.ckpt"]
