"""Package: the dataset (atomic, verified save; manifest-checked load), MLP/ONNX and transformer packages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.io.core import DatasetError

from reprotrain import packaging
from reprotrain.datasets import ModelPackageDataset
from reprotrain.packaging import (
    ONNX_FILE,
    ManifestError,
    PackageInputError,
    PackageVerificationError,
    TabularPackage,
    load_package,
    onnx_outputs,
    verify_manifest,
)
from reprotrain.pipelines.package.nodes import build_package
from tests.conftest import make_task
from tests.factories import (
    CATEGORIES,
    NUMERIC,
    PENGUIN_LABELS,
    REVIEW_LABELS,
    draft_for,
    mlp_artifact,
    penguin_features,
    run_isolated,
    tiny_bert,
    tiny_mlp,
    token_table,
)


@pytest.fixture
def table() -> pd.DataFrame:
    return penguin_features(30)


@pytest.fixture
def saved_mlp(mlp_package: Path) -> Path:
    """A copy of the session's tiny MLP package (``tiny_mlp(penguin_features(30))``)."""
    return mlp_package


def test_mlp_package_files_and_roundtrip(
    saved_mlp: Path, mlp_package_template: Path, table: pd.DataFrame
):
    names = sorted(p.name for p in saved_mlp.iterdir())
    assert names == [
        "README.md",
        "lineage.json",
        "manifest.json",
        "metrics.json",
        ONNX_FILE,
        "model.safetensors",
        "package.json",
    ]
    manifest = json.loads((saved_mlp / "manifest.json").read_text())
    assert sorted(manifest["files"]) == sorted(set(names) - {"manifest.json"})
    assert not any(
        p.suffix in (".pkl", ".pickle", ".pt", ".bin", ".ckpt") for p in saved_mlp.iterdir()
    )
    info = json.loads((saved_mlp / "package.json").read_text())
    assert info["preprocessing"]["categories"]["island"] == ["Biscoe", "Dream", "Torgersen"]
    assert len(info["preprocessing"]["scaling"]["mean"]) == 9
    saved_in = mlp_package_template.parent  # where the save ran: no temporary folder left
    assert [p.name for p in saved_in.iterdir()] == ["package"]
    loaded = ModelPackageDataset(filepath=str(saved_mlp)).load()
    assert isinstance(loaded, TabularPackage)
    draft = draft_for(tiny_mlp(table), table)
    expected = draft.package.predict(draft.sample)
    pd.testing.assert_frame_equal(loaded.predict(draft.sample), expected, atol=1e-6)


def test_categoricals_out_of_alphabetical_order_survive_the_round_trip(tmp_path: Path):
    """package.json is written with sorted keys; the feature order must not depend on it."""
    table = penguin_features(30)
    one_hot = {c: [f for f in table.columns if f.startswith(f"{c}=")] for c in ("sex", "island")}
    table = table[[*NUMERIC, *one_hot["sex"], *one_hot["island"], "label"]]
    categories = {"sex": CATEGORIES["sex"], "island": CATEGORIES["island"]}
    folder = tmp_path / "package"
    draft = draft_for(tiny_mlp(table), table, categories=categories)
    ModelPackageDataset(filepath=str(folder)).save(draft)
    loaded = load_package(folder)
    assert list(loaded.categories) == ["sex", "island"]
    pd.testing.assert_frame_equal(
        loaded.predict(draft.sample), draft.package.predict(draft.sample), atol=1e-6
    )


def test_onnx_export_matches_the_project_for_any_batch_size(saved_mlp: Path, table: pd.DataFrame):
    package = load_package(saved_mlp)
    rows = draft_for(tiny_mlp(table), table, rows=30).sample
    for n in (1, 30):
        logits = onnx_outputs(saved_mlp / ONNX_FILE, package.features(rows.head(n)))
        np.testing.assert_allclose(logits, package.outputs(rows.head(n)), atol=1e-5)


def test_tabular_predict_names_a_missing_column(saved_mlp: Path, table: pd.DataFrame):
    rows = draft_for(tiny_mlp(table), table).sample.drop(columns="island")
    with pytest.raises(PackageInputError, match=r"\['island'\]"):
        load_package(saved_mlp).predict(rows)


@pytest.mark.parametrize(
    ("tamper", "named"),
    [
        (lambda f: (f / "package.json").write_text("{}"), "'package.json' was changed"),
        (
            lambda f: (f / "model.safetensors").unlink(),
            "'model.safetensors' listed in the manifest is missing",
        ),
        (
            lambda f: (f / "extra.pkl").write_bytes(b"x"),
            r"\['extra.pkl'\] are not in manifest.json",
        ),
        (lambda f: (f / "manifest.json").unlink(), "has no manifest.json"),
    ],
)
def test_manifest_tampering_is_detected(saved_mlp: Path, tamper, named: str):
    tamper(saved_mlp)
    with pytest.raises(ManifestError, match=named):
        verify_manifest(saved_mlp)
    with pytest.raises(ManifestError, match=named):
        load_package(saved_mlp)
    with pytest.raises(DatasetError, match=named):
        ModelPackageDataset(filepath=str(saved_mlp)).load()


def test_changed_weights_byte_is_detected(saved_mlp: Path):
    weights = saved_mlp / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ManifestError, match="'model.safetensors' was changed"):
        load_package(saved_mlp)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_self_check_fails_on_a_broken_reload_and_keeps_the_old_package(
    saved_mlp: Path, table: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
):
    before = _snapshot(saved_mlp)
    real_load = packaging.load_package

    def broken_load(folder, **kwargs):  # the reloaded weights are not what was trained
        package = real_load(folder, **kwargs)
        for tensor in package.model.net.parameters():
            tensor.data.add_(0.5)
        return package

    monkeypatch.setattr(packaging.build, "load_package", broken_load)
    new = draft_for(tiny_mlp(table, seed=1), table)
    with pytest.raises(DatasetError, match="differs from the in-memory model|predicts label"):
        ModelPackageDataset(filepath=str(saved_mlp)).save(new)
    assert _snapshot(saved_mlp) == before
    assert not [p for p in saved_mlp.parent.iterdir() if p.name.startswith(".")]


def test_compare_predictions_tolerance():
    a = pd.DataFrame({"label": ["x", "y"], "score": [0.9, 0.8]})
    packaging.compare_predictions(a, a.assign(score=[0.9, 0.8 + 5e-6]), 1e-5)
    with pytest.raises(PackageVerificationError, match="row 1 differs"):
        packaging.compare_predictions(a, a.assign(score=[0.9, 0.81]), 1e-5)
    with pytest.raises(PackageVerificationError, match="predicts label 'x' for sample row 1"):
        packaging.compare_predictions(a, a.assign(label=["x", "x"]), 1e-5)


def test_a_failed_write_keeps_the_old_package(saved_mlp: Path, table: pd.DataFrame):
    before = _snapshot(saved_mlp)

    class FailingDraft(type(draft_for(tiny_mlp(table), table))):
        def write(self, folder: Path) -> None:
            (Path(folder) / "half.json").write_text("{")
            raise OSError("disk full")

    draft = draft_for(tiny_mlp(table), table)
    failing = FailingDraft(**{k: getattr(draft, k) for k in draft.__dataclass_fields__})
    with pytest.raises(DatasetError, match="disk full"):
        ModelPackageDataset(filepath=str(saved_mlp)).save(failing)
    assert _snapshot(saved_mlp) == before


def test_build_package_node_writes_card_and_lineage(
    tmp_path: Path, table: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)
    Path("raw.csv").write_text("a,b\n1,2\n")
    metrics = {"accuracy": 0.9, "f1_macro": 0.85, "n_test": 30}
    draft = build_package(
        mlp_artifact(table),
        table,
        metrics,
        {"train": {"rows": 100}, "test": {"rows": 30}},
        {
            "name": "penguin-test",
            "intended_use": "Testing.",
            "limitations": "Tiny.",
            "lineage_files": ["raw.csv", "missing.parquet"],
            "verify_rows": 8,
        },
        {"model": {"family": "mlp"}},
        {
            "numeric_columns": [
                "bill_length_mm",
                "bill_depth_mm",
                "flipper_length_mm",
                "body_mass_g",
            ],
            "categories": {"island": ["Biscoe", "Dream", "Torgersen"], "sex": ["female", "male"]},
        },
        make_task(PENGUIN_LABELS, seed=7),
    )
    assert len(draft.sample) == 8
    assert draft.lineage["seed"] == 7
    assert draft.lineage["data"]["missing.parquet"] is None
    assert len(draft.lineage["data"]["raw.csv"]["sha256"]) == 64
    assert set(draft.lineage["libraries"]) >= {"torch", "python", "onnxruntime"}
    for section in (
        "# penguin-test",
        "## Intended use",
        "Testing.",
        "## Limitations",
        "## Test metrics",
        "| accuracy | 0.9000 |",
        "## Parameters",
        "## Lineage",
        "| train | 100 |",
    ):
        assert section in draft.card
    ModelPackageDataset(filepath="pkg").save(draft)
    assert (tmp_path / "pkg" / "README.md").read_text() == draft.card


@pytest.fixture
def saved_bert(tmp_path: Path, tiny_tokenizer_dir: Path) -> tuple[Path, list[str]]:
    texts = [
        "good film",
        "the plot was very dull and boring and flat",
        "awful acting",
        "a great and moving story",
        "lovely",
        "tedious weak clumsy film",
    ]
    table = token_table(tiny_tokenizer_dir, texts, [1, 0, 0, 1, 1, 0])
    folder = tmp_path / "bert_package"
    ModelPackageDataset(filepath=str(folder)).save(
        draft_for(tiny_bert(), table, tiny_tokenizer_dir)
    )
    return folder, texts


def test_transformer_package_layout(saved_bert):
    folder, texts = saved_bert
    config = json.loads((folder / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert {
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "README.md",
        "lineage.json",
        "manifest.json",
    } <= set(os.listdir(folder))
    preds = load_package(folder).predict(texts)
    assert set(preds["label"]) <= set(REVIEW_LABELS)
    with pytest.raises(PackageInputError, match=r"lacks the column\(s\) \['text'\]"):
        load_package(folder).predict(pd.DataFrame({"review": texts}))


@pytest.mark.slow
def test_transformers_pipeline_without_reprotrain_agrees(saved_bert, tmp_path: Path):
    folder, texts = saved_bert
    code = f"""
import json
from transformers import pipeline
classify = pipeline("text-classification", model={str(folder)!r}, device="cpu")
out = classify({texts!r}, truncation=True)
print(json.dumps(out))
"""
    theirs = json.loads(run_isolated(code, tmp_path).strip().splitlines()[-1])
    ours = load_package(folder).predict(texts)
    assert [r["label"] for r in theirs] == ours["label"].tolist()
    np.testing.assert_allclose([r["score"] for r in theirs], ours["score"], atol=1e-5)


def test_load_package_imports_neither_kedro_nor_lightning(saved_mlp, saved_bert, table, tmp_path):
    """An application that only predicts does not pay for (or depend on) the project's stack."""
    bert, texts = saved_bert
    rows = tmp_path / "rows.csv"
    draft_for(tiny_mlp(table), table).sample.to_csv(rows, index=False)
    code = f"""
import json, sys
import pandas as pd
from reprotrain.packaging import load_package
load_package({str(saved_mlp)!r}).predict(pd.read_csv({str(rows)!r}))
load_package({str(bert)!r}).predict({texts!r})
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in
      ("kedro", "kedro_datasets", "lightning", "pytorch_lightning", "lightning_fabric"))))
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_mlp_package_without_the_onnx_extra_says_which_to_install(monkeypatch, table, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as if not installed
    with pytest.raises(DatasetError, match=r"pip install 'reprotrain\[onnx\]'"):
        ModelPackageDataset(filepath=str(tmp_path / "package")).save(
            draft_for(tiny_mlp(table), table)
        )
    assert not (tmp_path / "package").exists()


def test_the_onnx_export_does_not_depend_on_where_the_project_is(mlp_package: Path):
    """No absolute source path (the exporter's stack traces) in model.onnx: same bytes anywhere."""
    import reprotrain

    source = str(Path(reprotrain.__file__).parent).encode()
    assert source not in (mlp_package / "model.onnx").read_bytes()
