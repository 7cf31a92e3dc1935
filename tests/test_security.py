"""Security: no pickle in what users receive, verified manifests, no network, secrets in local.

The run-time tests inspect the session's good run of the tiny default task (``trained`` in
tests/conftest.py), trained in-process through a real ``KedroSession`` with every socket
connection refused.
"""

from __future__ import annotations

import ast
import socket
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from reprotrain.packaging import ManifestError
from tests.conftest import PROJECT_ROOT, network_refused

MODELS = "data/06_models/reviews"
PICKLE_SUFFIXES = {".pkl", ".pickle", ".pt", ".pth", ".bin", ".joblib", ".ckpt", ".npy", ".npz"}


# --------------------------------------------------------------------------------- network off
@pytest.fixture
def no_network() -> Iterator[list[str]]:
    """Make every socket connection fail; returns the list of attempts (host, port)."""
    with network_refused() as attempts:
        yield attempts


def test_the_network_guard_works(no_network):
    with pytest.raises(OSError, match="network access is disabled"):
        socket.create_connection(("pypi.org", 443), timeout=1)
    with pytest.raises(OSError, match="network access is disabled"):
        socket.socket().connect(("127.0.0.1", 9))
    assert len(no_network) == 2


@pytest.mark.slow
def test_train_and_predict_run_without_any_network(trained, trained_runs):
    """The session's good run (tests/conftest.py) trains and predicts with the network off."""
    project = trained()
    predictions = pd.read_csv(project.path("data/07_model_output/reviews/predictions.csv"))
    assert len(predictions) == 20 and predictions["score"].between(0, 1).all()
    assert trained_runs.network["base"] == [], f"the run tried the network: {trained_runs.network}"


# ------------------------------------------------------------------------------------ no pickle
def pickled(path: Path) -> str | None:
    """Why ``path`` would be unpickled by a loader, or ``None``."""
    if path.suffix in PICKLE_SUFFIXES:
        return f"pickle-style suffix {path.suffix}"
    head = path.read_bytes()[:2]
    if len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5:  # PROTO opcode
        return "starts with a pickle PROTO opcode"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            if any(n.endswith(".pkl") for n in z.namelist()):
                return "a zip holding a .pkl (torch.save format)"
    return None


@pytest.mark.slow
def test_package_and_trained_model_hold_no_pickle(trained):
    scratch_project = trained()
    for folder in ("package", "trained_model"):
        files = [p for p in scratch_project.path(f"{MODELS}/{folder}").rglob("*") if p.is_file()]
        assert any(p.name == "model.safetensors" for p in files)
        found = {p.name: why for p in files if (why := pickled(p))}
        assert found == {}, f"{folder} holds pickle: {found}"


@pytest.mark.slow
def test_checkpoints_load_with_weights_only(trained):
    scratch_project = trained()
    checkpoints = sorted(scratch_project.path("data").rglob("*.ckpt"))
    names = {p.name for p in checkpoints}
    assert {"last.ckpt", "best.ckpt"} <= names, checkpoints
    for path in checkpoints:
        state = torch.load(path, map_location="cpu", weights_only=True)
        assert state["state_dict"], path


def torch_load_calls(tree: ast.AST):
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "load"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "torch"
        ):
            yield node


def test_project_code_never_unpickles():
    """Every ``torch.load`` passes ``weights_only=True``; nothing imports pickle or joblib."""
    loads = 0
    for path in sorted((PROJECT_ROOT / "src").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for call in torch_load_calls(tree):
            loads += 1
            kw = {k.arg: k.value for k in call.keywords}
            weights_only = kw.get("weights_only")
            assert isinstance(weights_only, ast.Constant) and weights_only.value is True, (
                f"{path}:{call.lineno}: torch.load without weights_only=True"
            )
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not {"pickle", "cloudpickle", "dill", "joblib"} & {
                n.split(".")[0] for n in names
            }, f"{path}:{node.lineno} imports a pickle library"
        text = path.read_text()
        if "trainer.fit(" in text or ".fit(system" in text:
            assert "weights_only=True" in text, f"{path}: trainer.fit without weights_only=True"
    assert loads >= 1  # the scan sees the project's checkpoint loading


# ------------------------------------------------------------------------------- manifests
def test_catalog_never_turns_manifest_verification_off():
    for catalog in PROJECT_ROOT.glob("conf/*/catalog*.yml"):
        for name, entry in yaml.safe_load(catalog.read_text()).items():
            if entry.get("type", "").endswith("ModelPackageDataset"):
                assert entry.get("load_args", {}).get("verify", True) is True, name


@pytest.mark.slow
def test_predict_verifies_the_manifest_before_loading(trained, monkeypatch):
    """A changed file stops predict before any model code reads it."""
    scratch_project = trained()
    weights = scratch_project.path(f"{MODELS}/package/model.safetensors")
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit in the last weight
    weights.write_bytes(bytes(data))

    import transformers

    def must_not_load(*args, **kwargs):
        raise AssertionError("the model was loaded before the manifest was checked")

    monkeypatch.setattr(
        transformers.AutoModelForSequenceClassification, "from_pretrained", must_not_load
    )
    with pytest.raises(Exception, match="'model.safetensors' was changed") as info:
        scratch_project.run("predict")
    chain, error = [], info.value
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    assert any(isinstance(e, ManifestError) for e in chain), chain


# --------------------------------------------------------------------------------- secrets
def test_secrets_live_only_in_git_ignored_conf_local():
    done = subprocess.run(
        ["git", "check-ignore", "-q", "conf/local/credentials.yml"], cwd=PROJECT_ROOT
    )
    assert done.returncode == 0, "conf/local/credentials.yml is not git-ignored"
    tracked = subprocess.run(
        ["git", "ls-files", "conf"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert not [
        f
        for f in tracked
        if "credential" in f or f.startswith("conf/local/") and not f.endswith(".gitkeep")
    ]
