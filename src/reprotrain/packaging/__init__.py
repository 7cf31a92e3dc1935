"""Self-contained model packages: build, write, verify, load, predict.

A package is one folder that runs without this project:

- transformer: the ``save_pretrained`` layout (``config.json`` with ``id2label``,
  ``model.safetensors``, tokenizer files), loadable by plain
  ``transformers.pipeline("text-classification", model=folder)``;
- mlp: ``model.safetensors`` (weights and the scaling buffers), ``package.json`` (architecture
  and preprocessing: feature names, numeric columns, categories, scaling) and ``model.onnx``
  (raw features → logits, dynamic batch), runnable with onnxruntime alone;
- both: ``package.json``, ``metrics.json``, ``lineage.json`` (git commit, SHA-256 of the input
  data, library versions, seed), a model card ``README.md`` and ``manifest.json`` (SHA-256 of
  every file). Nothing is pickled.

Applications use ``load_package(folder).predict(rows)``:

.. code-block:: python

    from reprotrain.packaging import load_package

    package = load_package("data/06_models/reviews/package")   # checks manifest.json first
    package.predict(["a lovely, moving film", "dull and far too long"])
    #       label  label_id     score
    # 0  positive         1  0.981...
    # 1  negative         0  0.975...
"""

from __future__ import annotations

import importlib
from typing import Any

# The public API, imported on first use: the Kedro datasets read ``format`` and ``manifest``
# without paying for torch, and ``load_package`` without ``build``'s ONNX export.
_MODULES = {
    "build": ("PackageDraft", "example_rows", "in_memory_package", "package_info"),
    "card": ("render_card",),
    "format": ("FORMAT_VERSION", "MANIFEST_FILE", "ONNX_FILE", "PACKAGE_FILE"),
    "lineage": ("collect_lineage", "git_commit", "library_versions"),
    "manifest": ("ManifestError", "sha256_file", "verify_manifest", "write_manifest"),
    "onnx": ("export_onnx", "onnx_outputs"),
    "runtime": (
        "Package",
        "PackageError",
        "PackageInputError",
        "PackageVerificationError",
        "TabularPackage",
        "TextPackage",
        "compare_predictions",
        "load_package",
        "read_package_info",
    ),
}
_EXPORTS = {name: module for module, names in _MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    """``reprotrain.packaging.<name>``: the public name from its module, or a submodule."""
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    if name in _MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
