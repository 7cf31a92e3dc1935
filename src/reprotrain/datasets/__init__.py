"""Custom Kedro datasets, only where kedro-datasets has none."""

from reprotrain.datasets.model_dataset import ModelArtifact, SafetensorsModelDataset
from reprotrain.datasets.package_dataset import ModelPackageDataset

__all__ = ["ModelArtifact", "ModelPackageDataset", "SafetensorsModelDataset"]
