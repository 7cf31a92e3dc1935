"""``AtomicMatplotlibDataset``: a figure saved atomically (its own module: it imports pyplot)."""

from __future__ import annotations

from kedro.io.core import DatasetError
from kedro_datasets.matplotlib import MatplotlibDataset

from reprotrain.datasets.atomic import AtomicSaveMixin


class AtomicMatplotlibDataset(AtomicSaveMixin, MatplotlibDataset):
    """``matplotlib.MatplotlibDataset`` whose saves of one figure are atomic.

    A list or dict of figures, which the parent writes as a folder, is not supported: the
    project saves one figure per dataset.

    Example catalog entry (YAML API):

    .. code-block:: yaml

        confusion_matrix_plot:
          type: reprotrain.datasets.AtomicMatplotlibDataset
          filepath: data/08_reporting/reviews/confusion_matrix.png
          save_args:
            dpi: 120
    """

    def save(self, data: object) -> None:
        """Save one figure atomically.

        Raises:
            DatasetError: ``data`` is a list or dict of figures, or the save failed.
        """
        if isinstance(data, list | dict):
            raise DatasetError(
                f"{type(self).__name__} saves one figure, got a {type(data).__name__}"
            )
        super().save(data)
