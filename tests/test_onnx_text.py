"""The optional ONNX text model: written beside the Hugging Face files, verified, loaded."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reprotrain.datasets import ModelPackageDataset
from reprotrain.packaging import PackageError, load_package
from reprotrain.packaging.manifest import ManifestError, verify_manifest
from reprotrain.packaging.onnx_text import FILES
from reprotrain.pipelines.predict.nodes import predict_table
from tests.factories import draft_for, tiny_bert, token_table

TEXTS = [
    "good film",
    "the plot was very dull and boring and flat and the acting was weak",
    "awful acting",
    "a great and moving story",
    "lovely",
    "tedious weak clumsy film",
]


def _save(folder: Path, tokenizer_dir: Path, precision: str | None) -> Path:
    table = token_table(tokenizer_dir, TEXTS, [1, 0, 0, 1, 1, 0])
    draft = draft_for(tiny_bert(), table, tokenizer_dir)
    if precision:
        draft.info["onnx"] = {"file": FILES[precision], "precision": precision}
    ModelPackageDataset(filepath=str(folder)).save(dataclasses.replace(draft, onnx=precision))
    return folder


@pytest.fixture(scope="module")
def onnx_package(tmp_path_factory, tiny_tokenizer_dir) -> Path:
    return _save(tmp_path_factory.mktemp("onnx") / "pkg", tiny_tokenizer_dir, "fp32")


def test_onnx_package_predicts_as_torch_and_is_in_the_manifest(onnx_package):
    manifest = json.loads((onnx_package / "manifest.json").read_text())
    assert FILES["fp32"] in manifest["files"]
    torch_preds = load_package(onnx_package).predict(TEXTS, batch_size=4)
    onnx_pkg = load_package(onnx_package, backend="onnx")
    assert onnx_pkg.backend == "onnx"
    for batch_size in (1, 4, 64):  # a batch of one, a ragged last batch, everything at once
        preds = onnx_pkg.predict(TEXTS, batch_size=batch_size)
        assert preds["label"].tolist() == torch_preds["label"].tolist()
        np.testing.assert_allclose(preds["score"], torch_preds["score"], atol=1e-5)


def test_changed_onnx_file_fails_the_manifest(onnx_package, tmp_path):
    import shutil

    copy = tmp_path / "pkg"
    shutil.copytree(onnx_package, copy)
    with open(copy / FILES["fp32"], "ab") as f:
        f.write(b"\0")
    with pytest.raises(ManifestError, match="model.onnx"):
        verify_manifest(copy)


def test_int8_package_keeps_only_the_quantised_file(tmp_path, tiny_tokenizer_dir):
    folder = _save(tmp_path / "pkg", tiny_tokenizer_dir, "int8")
    assert sorted(p.name for p in (folder / "onnx").iterdir()) == ["model_quantized.onnx"]
    preds = load_package(folder, backend="onnx").predict(TEXTS)
    assert preds["score"].between(0.5, 1).all()


def test_onnx_backend_without_onnx_says_what_to_set(tmp_path, tiny_tokenizer_dir):
    folder = _save(tmp_path / "pkg", tiny_tokenizer_dir, None)
    with pytest.raises(PackageError, match="package.onnx: fp32 or int8"):
        load_package(folder, backend="onnx")


def test_predict_node_runs_the_onnx_backend(onnx_package):
    rows = pd.DataFrame({"id": range(len(TEXTS)), "text": TEXTS})
    package = load_package(onnx_package)
    torch_out = predict_table(package, rows, {"batch_size": 4})
    onnx_out = predict_table(package, rows, {"batch_size": 4, "backend": "onnx"})
    assert onnx_out["predicted_label"].tolist() == torch_out["predicted_label"].tolist()
    np.testing.assert_allclose(onnx_out["score"], torch_out["score"], atol=1e-5)
