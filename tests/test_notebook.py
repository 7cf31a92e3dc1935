"""notebooks/explore.ipynb runs top to bottom on a trained scratch project."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, ScratchProject

NOTEBOOK = PROJECT_ROOT / "notebooks" / "explore.ipynb"


def kernel_python(name: str = "python3") -> str:
    """The interpreter that kernel ``name`` starts, resolved as jupyter_client resolves it."""
    from jupyter_client.kernelspec import KernelSpecManager

    command = KernelSpecManager().get_kernel_spec(name).argv[0]
    # jupyter_client runs a bare `python` as the interpreter it runs in.
    plain = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info)}
    return sys.executable if command in plain else command


@pytest.fixture
def venv_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Kernel ``python3``, made to start this interpreter (the venv's ipykernel).

    The venv's own kernelspec does that already; only where another ``python3`` kernel takes
    precedence (a user-level one) does a temporary kernelspec on JUPYTER_PATH override it.
    """
    if Path(kernel_python()).resolve() != Path(sys.executable).resolve():
        spec = tmp_path / "jupyter" / "kernels" / "python3"
        spec.mkdir(parents=True)
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        (spec / "kernel.json").write_text(
            json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"})
        )
        monkeypatch.setenv("JUPYTER_PATH", str(spec.parents[1]))
    assert Path(kernel_python()).resolve() == Path(sys.executable).resolve()
    return "python3"


def test_notebook_is_committed_without_outputs() -> None:
    import nbformat

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, cell.source[:80]


@pytest.mark.slow
def test_notebook_runs_top_to_bottom(
    trained: Callable[..., ScratchProject], venv_kernel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nbformat
    from nbclient import NotebookClient

    scratch_project = trained()  # the session's good train run (tests/conftest.py)
    assert scratch_project.path("data/06_models/reviews/package/manifest.json").exists()

    # The notebook runs from a notebooks/ folder outside the repo, told where the project is.
    workdir = scratch_project.path("notebooks")
    workdir.mkdir()
    shutil.copy(NOTEBOOK, workdir)
    monkeypatch.setenv("REPROTRAIN_PROJECT", str(scratch_project.root))
    notebook = nbformat.read(workdir / NOTEBOOK.name, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name=venv_kernel,
        timeout=300,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error

    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    text = "\n".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)
    assert str(scratch_project.root) in text  # the parameter cell resolved the project
    assert "package and evaluate agree on" in text
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(figures) >= 4  # class balance, token lengths, training curves, confusion matrix
