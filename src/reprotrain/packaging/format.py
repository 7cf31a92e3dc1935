"""The package format: its version and file names, defined once for the writer, the loader
and ``ModelPackageDataset``."""

from __future__ import annotations

FORMAT_VERSION = 1
PACKAGE_FILE = "package.json"
METRICS_FILE = "metrics.json"
LINEAGE_FILE = "lineage.json"
CARD_FILE = "README.md"
WEIGHTS_FILE = "model.safetensors"
ONNX_FILE = "model.onnx"
ONNX_INPUT = "features"
ONNX_OUTPUT = "logits"
MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = 1
