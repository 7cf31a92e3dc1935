"""Custom Kedro datasets, only where kedro-datasets has none, and atomic kedro-datasets types."""

from __future__ import annotations

from typing import Any

from reprotrain.artifact import ModelArtifact
from reprotrain.datasets.atomic import (
    AtomicCSVDataset,
    AtomicJSONDataset,
    AtomicParquetDataset,
    AtomicSaveMixin,
    AtomicYAMLDataset,
)
from reprotrain.datasets.model_dataset import SafetensorsModelDataset
from reprotrain.datasets.package_dataset import ModelPackageDataset
from reprotrain.datasets.streaming import StreamingCSVDataset

__all__ = [
    "AtomicCSVDataset",
    "AtomicJSONDataset",
    "AtomicMatplotlibDataset",
    "AtomicParquetDataset",
    "AtomicSaveMixin",
    "AtomicYAMLDataset",
    "ModelArtifact",
    "ModelPackageDataset",
    "SafetensorsModelDataset",
    "StreamingCSVDataset",
]


def __getattr__(name: str) -> Any:
    """Import ``AtomicMatplotlibDataset`` on first use: it imports matplotlib's pyplot."""
    if name == "AtomicMatplotlibDataset":
        from reprotrain.datasets.atomic_matplotlib import AtomicMatplotlibDataset

        return AtomicMatplotlibDataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
