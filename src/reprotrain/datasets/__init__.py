"""Custom Kedro datasets, only where kedro-datasets has none."""

from reprotrain.datasets.model_dataset import ModelArtifact, SafetensorsModelDataset

__all__ = ["ModelArtifact", "SafetensorsModelDataset"]
