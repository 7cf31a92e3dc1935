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

The pieces: ``format`` (version, file names), ``manifest`` (SHA-256 of every file),
``runtime`` (predictors, ``load_package``, verification; imports neither Kedro nor
Lightning), ``build`` (``PackageDraft``, ``package.json``), ``card``, ``lineage``, ``onnx``.
"""

from __future__ import annotations

from reprotrain.packaging.build import (
    PackageDraft,
    example_rows,
    in_memory_package,
    package_info,
)
from reprotrain.packaging.card import render_card
from reprotrain.packaging.format import FORMAT_VERSION, MANIFEST_FILE, ONNX_FILE, PACKAGE_FILE
from reprotrain.packaging.lineage import collect_lineage, git_commit, library_versions
from reprotrain.packaging.manifest import (
    ManifestError,
    sha256_file,
    verify_manifest,
    write_manifest,
)
from reprotrain.packaging.onnx import export_onnx, onnx_outputs
from reprotrain.packaging.runtime import (
    Package,
    PackageError,
    PackageInputError,
    PackageVerificationError,
    TabularPackage,
    TextPackage,
    compare_predictions,
    load_package,
    read_package_info,
)

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "ONNX_FILE",
    "PACKAGE_FILE",
    "ManifestError",
    "Package",
    "PackageDraft",
    "PackageError",
    "PackageInputError",
    "PackageVerificationError",
    "TabularPackage",
    "TextPackage",
    "collect_lineage",
    "compare_predictions",
    "example_rows",
    "export_onnx",
    "git_commit",
    "in_memory_package",
    "library_versions",
    "load_package",
    "onnx_outputs",
    "package_info",
    "read_package_info",
    "render_card",
    "sha256_file",
    "verify_manifest",
    "write_manifest",
]
