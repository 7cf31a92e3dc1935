"""Issue #17 (package part): label order, manifest guards, crash leftovers and the swap.

Each test builds the on-disk state a user, an attacker or a crash would leave (a reordered
``task.labels``, a doctored manifest, leftover temporary folders) and runs the real code on it:
a real ``KedroSession`` on a tiny penguins MLP trained once per session, or ``load_package``
and the datasets on tiny packages.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from reprotrain.datasets import (
    AtomicCSVDataset,
    ModelArtifact,
    ModelPackageDataset,
    SafetensorsModelDataset,
)
from reprotrain.models import to_artifact
from reprotrain.packaging import (
    ManifestError,
    PackageError,
    load_package,
    sha256_file,
    write_manifest,
)
from reprotrain.pipelines.package.nodes import build_package
from tests.conftest import TINY_BERT, make_task
from tests.factories import (
    REVIEW_LABELS,
    draft_for,
    penguin_features,
    tiny_bert,
    tiny_mlp,
    token_table,
)

SWAPPED = ["Gentoo", "Chinstrap", "Adelie"]  # Adelie and Gentoo trade places


def dead_pid() -> int:
    """The id of a process that has just exited (what a crashed writer leaves behind)."""
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


def tree_hashes(folder: Path) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file()}


def edit_json(path: Path, edit) -> None:
    """Rewrite a package's JSON file and re-sign the manifest (as a careless rebuild would)."""
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    write_manifest(path.parent)


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture
def penguins(trained):
    """A scratch project holding the session's good penguins run (tiny settings, conftest.py)."""
    return trained("penguins")


@pytest.fixture
def package(mlp_package: Path) -> Path:
    """A fresh copy of the session's tiny MLP package, in ``tmp_path/models/package``."""
    return mlp_package


@pytest.fixture(scope="module")
def bert_cache(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer_dir: Path) -> Path:
    """A tiny BERT text-classification package (labels negative, positive)."""
    table = token_table(tiny_tokenizer_dir, ["good film", "dull and flat", "lovely"], [1, 0, 1])
    folder = tmp_path_factory.mktemp("bert_package") / "package"
    ModelPackageDataset(filepath=str(folder)).save(
        draft_for(tiny_bert(), table, tiny_tokenizer_dir, rows=3)
    )
    return folder


@pytest.fixture
def bert_package(tmp_path: Path, bert_cache: Path) -> Path:
    folder = tmp_path / "bert_package"
    shutil.copytree(bert_cache, folder)
    return folder


# --------------------------------------------------------------------- 1. label order travels
@pytest.mark.slow
def test_reordered_labels_are_refused_by_fit_evaluate_package_and_load(penguins):
    model = "data/06_models/penguins/trained_model"
    folder = penguins.path("data/06_models/penguins/package")
    assert json.loads(penguins.path(f"{model}/spec.json").read_text())["labels"] == [
        "Adelie",
        "Chinstrap",
        "Gentoo",
    ]
    before = tree_hashes(folder)
    penguins.write_task({"labels": SWAPPED}, env="penguins")

    # fit on data converted with the old order: refused before any training
    with pytest.raises(ValueError, match="converted data's label ids") as fit_error:
        penguins.run("fit", env="penguins")
    assert "['Adelie', 'Chinstrap', 'Gentoo']" in str(fit_error.value)
    # evaluate and package: the trained model records its own order
    for step in ("evaluate", "package"):
        with pytest.raises(ValueError, match="trained on labels") as err:
            penguins.run(step, env="penguins")
        message = str(err.value)
        assert "output 0: trained as 'Adelie', configured as 'Gentoo'" in message
        assert model in message
        assert "Retrain (fit)" in message and "globals.yml" in message
    assert tree_hashes(folder) == before  # the package was not replaced

    # a package whose package.json disagrees with the MLP's recorded labels
    edit_json(folder / "package.json", lambda info: {**info, "labels": SWAPPED})
    with pytest.raises(PackageError, match=r"lists labels \['Gentoo', 'Chinstrap', 'Adelie'\]"):
        load_package(folder)


def test_package_node_refuses_labels_that_differ_from_config_json(tiny_tokenizer_dir: Path):
    table = token_table(tiny_tokenizer_dir, ["good film", "dull"], [1, 0])
    reordered = list(reversed(REVIEW_LABELS))
    with pytest.raises(PackageError, match="output 0: trained as 'negative', configured as"):
        build_package(
            to_artifact(tiny_bert()),
            table,
            {"accuracy": 1.0},
            {"test": {"rows": 2}},
            {"verify_rows": 2},
            {"model": {"family": "transformer", "config": TINY_BERT}},
            {},
            make_task(reordered, model_checkpoint=str(tiny_tokenizer_dir), max_length=16),
        )


def test_load_package_refuses_package_json_labels_unlike_config_json(bert_package: Path):
    id2label = json.loads((bert_package / "config.json").read_text())["id2label"]
    assert id2label == {"0": "negative", "1": "positive"}
    edit_json(bert_package / "package.json", lambda i: {**i, "labels": ["positive", "negative"]})
    with pytest.raises(PackageError, match="config.json id2label") as err:
        load_package(bert_package)
    assert "['positive', 'negative']" in str(err.value)


# --------------------------------------------------------------------- 2. manifest guards
@pytest.mark.parametrize("where", ["absolute", "dotdot"])
def test_manifest_entries_outside_the_folder_are_refused(package: Path, where: str):
    outside = package.parent / "outside.txt"
    outside.write_text("a file beside the package\n")
    name = str(outside) if where == "absolute" else "../outside.txt"
    manifest = json.loads((package / "manifest.json").read_text())
    manifest["files"][name] = {"sha256": sha256_file(outside), "bytes": outside.stat().st_size}
    (package / "manifest.json").write_text(json.dumps(manifest))
    expected = "is an absolute path" if where == "absolute" else "holds '..'"
    with pytest.raises(ManifestError, match=expected) as err:
        load_package(package)
    assert "manifest.json" in str(err.value) and name in str(err.value)


def _list_in_manifest(package: Path, name: str, like: str) -> None:
    """Add ``name`` to the manifest with the entry of file ``like`` (by hand: a doctored one)."""
    manifest = json.loads((package / "manifest.json").read_text())
    manifest["files"][name] = manifest["files"][like]
    (package / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("kind", ["file outside", "file inside", "folder outside"])
def test_symbolic_links_in_a_package_are_refused(package: Path, kind: str):
    card = package / "README.md"
    if kind == "file outside":  # same bytes as the card, so the manifest's hash matches
        copy = package.parent / "card-elsewhere.md"
        shutil.copy(card, copy)
        card.unlink()
        card.symlink_to(copy)
        name = "README.md"
    elif kind == "file inside":
        (package / "card.md").symlink_to("README.md")
        _list_in_manifest(package, "card.md", like="README.md")
        name = "card.md"
    else:
        shutil.copy(card, package.parent / "README.md")
        (package / "docs").symlink_to(package.parent)
        _list_in_manifest(package, "docs/README.md", like="README.md")
        name = "docs"
    with pytest.raises(ManifestError, match=f"'{name}' is a symbolic link"):
        load_package(package)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ('{"files": []}', "expected an object with a 'files' object"),
        ('{"files": {"README.md": "0123"}}', "the entry of 'README.md' must be an object"),
        ('{"files": {"README.md": {"sha256": 1, "bytes": "2"}}}', "'sha256' (text)"),
        ("not json", "is not valid JSON"),
    ],
)
def test_malformed_manifest_is_named(package: Path, content: str, says: str):
    (package / "manifest.json").write_text(content)
    with pytest.raises(ManifestError) as err:
        load_package(package)
    assert says in str(err.value) and str(package / "manifest.json") in str(err.value)


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda info: "not json", "is not valid JSON"),
        (lambda info: [], "must hold a JSON object, not list"),
        (lambda info: {k: v for k, v in info.items() if k != "family"}, "unknown model family"),
        (lambda info: {k: v for k, v in info.items() if k != "labels"}, "key 'labels'"),
        (lambda info: {**info, "preprocessing": {}}, "'preprocessing.numeric_columns'"),
        (
            lambda info: {
                **info,
                "preprocessing": {**info["preprocessing"], "date_columns": ["d"]},
            },
            "'preprocessing.date_columns' must map each column to its format",
        ),
    ],
)
def test_malformed_package_json_is_named(package: Path, edit, says: str):
    info = json.loads((package / "package.json").read_text())
    changed = edit(info)
    text = changed if isinstance(changed, str) else json.dumps(changed)
    (package / "package.json").write_text(text)
    write_manifest(package)
    with pytest.raises(PackageError) as err:
        load_package(package)
    assert says in str(err.value) and "package.json" in str(err.value)


class _Trap:
    """Unpickling this creates a marker file: proof that something unpickled it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


@pytest.mark.parametrize("safetensors_too", [True, False])
def test_a_listed_pytorch_model_bin_is_never_unpickled(
    bert_package: Path, tmp_path: Path, safetensors_too: bool
):
    marker = tmp_path / "unpickled"
    (bert_package / "pytorch_model.bin").write_bytes(pickle.dumps(_Trap(marker)))
    if not safetensors_too:
        (bert_package / "model.safetensors").unlink()
    write_manifest(bert_package)  # listed and hashed: the manifest check passes
    if safetensors_too:
        assert load_package(bert_package).predict(["good film"])["label"].iloc[0] in REVIEW_LABELS
    else:
        with pytest.raises(PackageError, match="has no model.safetensors"):
            load_package(bert_package)
    assert not marker.exists()


# -------------------------------------------------------- 3. crash leftovers and the swap
def _age(path: Path, seconds: float) -> None:
    when = time.time() - seconds
    os.utime(path, (when, when), follow_symlinks=False)


def test_atomic_save_removes_temp_files_of_crashed_writers_only(tmp_path: Path):
    target = tmp_path / "t.csv"
    dead, alive = dead_pid(), os.getppid()
    crashed = tmp_path / f".t.csv.tmp-{dead}-0123abcd.csv"
    running = tmp_path / f".t.csv.tmp-{alive}-4567cdef.csv"
    legacy_old = tmp_path / ".t.tmp-89abcdef.csv"  # the naming before pids, a day old
    legacy_new = tmp_path / ".t.tmp-01234567.csv"  # the same, written a minute ago
    for path in (crashed, running, legacy_old, legacy_new):
        path.write_text("half a tab")
    _age(legacy_old, 2 * 24 * 3600)
    _age(legacy_new, 60)

    AtomicCSVDataset(filepath=str(target)).save(pd.DataFrame({"a": [1, 2]}))

    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["t.csv", running.name, legacy_new.name]
    )


def test_package_save_removes_crashed_temp_folders(package: Path):
    parent = package.parent
    dead = dead_pid()
    crashed = parent / f".package.tmp-{dead}-0123abcd"  # kill -9 during a package save
    running = parent / f".package.tmp-{os.getppid()}-4567cdef"  # a concurrent save
    legacy = parent / ".package.k2j3h4l5"  # tempfile.mkdtemp's name before this fix
    for folder in (crashed, running, legacy):
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"half")
    _age(legacy, 2 * 24 * 3600)
    table = penguin_features(30)

    ModelPackageDataset(filepath=str(package)).save(draft_for(tiny_mlp(table, seed=1), table))

    assert sorted(p.name for p in parent.iterdir()) == sorted(["package", running.name])
    load_package(package)


def _crash_between_the_renames(target: Path) -> Path:
    """The state a crash between ``replace_dir``'s two renames leaves: no target, old aside."""
    dead = dead_pid()
    aside = target.with_name(f".{target.name}.old-{dead}-89abcdef")
    target.rename(aside)
    new = target.with_name(f".{target.name}.tmp-{dead}-fedcba98")
    new.mkdir()
    (new / "manifest.json").write_text("{")  # the new version, perhaps half-written
    return aside


def test_load_package_restores_the_previous_package_after_a_crashed_swap(package: Path):
    rows = draft_for(tiny_mlp(penguin_features(30)), penguin_features(30)).sample
    expected = load_package(package).predict(rows)
    aside = _crash_between_the_renames(package)

    restored = load_package(package)

    pd.testing.assert_frame_equal(restored.predict(rows), expected)
    assert package.is_dir() and not aside.exists()
    # the next save removes the crashed writer's half-written folder too
    table = penguin_features(30)
    ModelPackageDataset(filepath=str(package)).save(draft_for(tiny_mlp(table), table))
    assert sorted(p.name for p in package.parent.iterdir()) == ["package"]


def test_model_package_save_after_a_crashed_swap_replaces_the_restored_package(package: Path):
    _crash_between_the_renames(package)
    table = penguin_features(30)
    ModelPackageDataset(filepath=str(package)).save(draft_for(tiny_mlp(table, seed=3), table))
    assert sorted(p.name for p in package.parent.iterdir()) == ["package"]
    load_package(package)


def test_trained_model_folder_is_restored_after_a_crashed_swap(tmp_path: Path):
    import torch

    target = tmp_path / "trained_model"
    ds = SafetensorsModelDataset(filepath=str(target))
    ds.save(ModelArtifact({"family": "mlp"}, {"w": torch.arange(3.0)}))
    _crash_between_the_renames(target)

    loaded = ds.load()

    assert loaded.spec == {"family": "mlp"} and loaded.state_dict["w"].tolist() == [0, 1, 2]
    ds.save(ModelArtifact({"family": "mlp"}, {"w": torch.zeros(2)}))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trained_model"]


def test_a_failed_swap_puts_the_previous_folder_back(tmp_path: Path):
    from reprotrain.atomic import replace_dir

    target = tmp_path / "package"
    target.mkdir()
    (target / "weights").write_text("previous")
    with pytest.raises(FileNotFoundError):
        replace_dir(str(tmp_path / ".package.tmp-gone"), str(target))  # the rename fails
    assert (target / "weights").read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["package"]
