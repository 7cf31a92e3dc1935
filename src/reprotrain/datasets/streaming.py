"""``StreamingCSVDataset``: a CSV written chunk by chunk from an iterable of tables, atomically.

Batch prediction returns its output as an iterable of tables, one per input chunk; writing them
one after the other keeps memory flat however long the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd
from kedro.io.core import DatasetError

from reprotrain.atomic import writing
from reprotrain.datasets.atomic import AtomicCSVDataset


class StreamingCSVDataset(AtomicCSVDataset):
    """``AtomicCSVDataset`` that also saves an iterable of DataFrames, one chunk at a time.

    The header is written once, from the first chunk; every chunk must have the same columns.
    Remote paths (``s3://`` ...) are written in one piece (the chunks concatenated).

    Example catalog entry (YAML API):

    .. code-block:: yaml

        predictions:
          type: reprotrain.datasets.StreamingCSVDataset
          filepath: data/07_model_output/reviews/predictions.csv

    Example (Python API):

    .. code-block:: pycon

        >>> import pandas as pd
        >>> from reprotrain.datasets import StreamingCSVDataset
        >>> ds = StreamingCSVDataset(filepath=tmp_path / "out.csv")
        >>> ds.save(pd.DataFrame({"a": [i]}) for i in range(3))
        >>> ds.load()["a"].tolist()
        [0, 1, 2]
    """

    def save(self, data: pd.DataFrame | Iterable[pd.DataFrame]) -> None:
        """Save a DataFrame, or the chunks of an iterable of DataFrames in order.

        Raises:
            DatasetError: A chunk is not a DataFrame or its columns differ from the first
                chunk's; or the target is a folder. The previous file is left unchanged.
        """
        if isinstance(data, pd.DataFrame):
            super().save(data)
            return
        target = self._local_target()
        if target is None:
            super().save(pd.concat(list(data), ignore_index=True))
            return
        args = {k: v for k, v in self._save_args.items() if k not in ("header", "mode")}
        header = self._save_args.get("header", True)
        columns: list[Any] | None = None
        try:
            with writing(target) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
                for chunk in data:
                    if not isinstance(chunk, pd.DataFrame):
                        raise DatasetError(
                            f"cannot save {target}: a chunk is a {type(chunk).__name__}, "
                            "not a DataFrame"
                        )
                    if columns is None:
                        columns = list(chunk.columns)
                    elif list(chunk.columns) != columns:
                        raise DatasetError(
                            f"cannot save {target}: a chunk has the columns "
                            f"{list(chunk.columns)}, the first chunk {columns}"
                        )
                    chunk.to_csv(f, header=header, **args)
                    header = False
        finally:
            self._invalidate_cache()
