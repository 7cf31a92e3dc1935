"""Atomic versions of the kedro-datasets types the catalog writes: temporary file, then rename.

kedro-datasets writes a file in place: a crash midway leaves a truncated file where a good one
stood. Only local paths are written atomically (``reprotrain.atomic.writing``); for a remote
protocol (``s3://`` ...) the parent's save runs unchanged, since an object store replaces an
object in one request anyway.
"""

from __future__ import annotations

import os
from pathlib import PurePosixPath
from typing import Any

from kedro.io.core import DatasetError, get_filepath_str
from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import CSVDataset, ParquetDataset
from kedro_datasets.yaml import YAMLDataset

from reprotrain.atomic import writing


class AtomicSaveMixin:
    """Make a file dataset's ``save`` atomic: write to a temporary sibling, then rename.

    Mix it in before a kedro-datasets class whose ``save`` writes one file at
    ``self._get_save_path()`` (``CSVDataset``, ``ParquetDataset``, ``JSONDataset``,
    ``MatplotlibDataset`` with a single figure): while the parent saves, ``_get_save_path``
    returns the temporary path beside the target.

    Example:

    .. code-block:: python

        class AtomicCSVDataset(AtomicSaveMixin, CSVDataset):
            '''``pandas.CSVDataset``, saved atomically.'''
    """

    _protocol: str
    _atomic_tmp: PurePosixPath | None = None

    def _get_save_path(self) -> PurePosixPath:
        if self._atomic_tmp is not None:
            return self._atomic_tmp
        return super()._get_save_path()  # type: ignore[misc]

    def _local_target(self) -> str | None:
        """The local file a save replaces; ``None`` for a remote protocol (saved in place).

        Raises:
            DatasetError: The target is a folder.
        """
        if self._protocol != "file":
            return None
        target = get_filepath_str(self._get_save_path(), self._protocol)
        if os.path.isdir(target):
            raise DatasetError(f"cannot save {type(self).__name__}: {target} is a folder")
        return target

    def save(self, data: Any) -> None:
        """Save through the parent class into a temporary file, then rename it.

        Raises:
            DatasetError: The target is a folder, or the parent's save failed (the
                temporary file is removed, the previous file is left unchanged).
        """
        target_str = self._local_target()
        if target_str is None:
            super().save(data)  # type: ignore[misc]
            return
        target = self._get_save_path()
        try:
            with writing(target_str, suffix=target.suffix) as tmp:
                self._atomic_tmp = target.with_name(tmp.name)
                super().save(data)  # type: ignore[misc]
        finally:
            self._atomic_tmp = None
            self._invalidate_cache()  # type: ignore[attr-defined]


class AtomicCSVDataset(AtomicSaveMixin, CSVDataset):
    """``pandas.CSVDataset`` whose saves are atomic (temporary file, then rename).

    Example catalog entry (YAML API):

    .. code-block:: yaml

        test_predictions:
          type: reprotrain.datasets.AtomicCSVDataset
          filepath: data/07_model_output/reviews/test_predictions.csv

    Example (Python API):

    .. code-block:: pycon

        >>> import pandas as pd
        >>> from reprotrain.datasets import AtomicCSVDataset
        >>> ds = AtomicCSVDataset(filepath=tmp_path / "table.csv")
        >>> ds.save(pd.DataFrame({"a": [1, 2]}))
        >>> ds.load()["a"].tolist()
        [1, 2]
    """


class AtomicParquetDataset(AtomicSaveMixin, ParquetDataset):
    """``pandas.ParquetDataset`` whose saves are atomic (temporary file, then rename).

    Example catalog entry (YAML API):

    .. code-block:: yaml

        clean_table:
          type: reprotrain.datasets.AtomicParquetDataset
          filepath: data/02_intermediate/reviews/clean_table.parquet

    Python API: as ``AtomicCSVDataset``.
    """


class AtomicJSONDataset(AtomicSaveMixin, JSONDataset):
    """``json.JSONDataset`` whose saves are atomic (temporary file, then rename).

    Example catalog entry (YAML API):

    .. code-block:: yaml

        metrics:
          type: reprotrain.datasets.AtomicJSONDataset
          filepath: data/08_reporting/reviews/metrics.json
          save_args:
            indent: 2

    Python API: as ``AtomicCSVDataset``.
    """


class AtomicYAMLDataset(AtomicSaveMixin, YAMLDataset):
    """``yaml.YAMLDataset`` whose saves are atomic (temporary file, then rename).

    Example catalog entry (YAML API):

    .. code-block:: yaml

        tune_best_params:
          type: reprotrain.datasets.AtomicYAMLDataset
          filepath: data/08_reporting/reviews/tune/best_params.yml
          save_args:
            sort_keys: false
    """
