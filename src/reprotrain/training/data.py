"""Training data loading: seeded, resumable, length-grouped batches (rows and padding:
``reprotrain.batches``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from torch.utils.data import DataLoader

from reprotrain.batches import Collator, TableDataset


@dataclass(eq=False)
class GroupedBatchSampler:
    """Seeded, epoch-aware batches; optionally grouped by length, optionally sharded by rank.

    With ``group_by_length``, shuffled indices are cut into mega-batches of 50 batches, each
    sorted by length, so a batch holds texts of similar length and pads little. Batches are
    then shuffled. ``batch_size`` is the per-device size. Under data parallelism, training
    (``shuffle=True``) cuts the same global batches of ``batch_size * world_size`` rows as one
    process would, and each rank takes an equal slice of each, so the global batches, and the
    averaged gradients, do not depend on the number of devices (a last global batch that does
    not split evenly loses its remainder). Evaluation (``shuffle=False``) gives each rank every
    ``world_size``-th row, so every row is evaluated exactly once.
    """

    lengths: np.ndarray
    batch_size: int
    _: KW_ONLY
    shuffle: bool
    group_by_length: bool
    seed: int = 0
    rank: int = 0
    world_size: int = 1
    epoch: int = field(default=0, init=False)
    _skip: tuple[int, int] | None = field(default=None, init=False)  # (epoch, batches done)

    def __post_init__(self) -> None:
        self.lengths = np.asarray(self.lengths)

    def set_epoch(self, epoch: int) -> None:
        """Use a different (still seeded) order for each epoch."""
        self.epoch = epoch

    def resume_at(self, epoch: int, batches_done: int) -> None:
        """Continue epoch ``epoch`` after its first ``batches_done`` batches (a resumed run)."""
        self.epoch = epoch
        # a complete epoch (an end-of-epoch checkpoint): the next one starts at its beginning
        self._skip = (epoch, batches_done) if 0 < batches_done < len(self) else None

    def _global_batches(self) -> list[np.ndarray]:
        n = len(self.lengths)
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        if self.group_by_length:
            mega = self.batch_size * self.world_size * (50 if self.shuffle else n)
            chunks = [order[i : i + mega] for i in range(0, n, mega)]
            order = np.concatenate(
                [c[np.argsort(-self.lengths[c], kind="stable")] for c in chunks] or [order]
            )
        if not self.shuffle:  # evaluation: this rank's rows, batched
            order = order[self.rank :: self.world_size]
            return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        step = self.batch_size * self.world_size
        batches = [order[i : i + step] for i in range(0, n, step)]
        if self.group_by_length:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        if self.world_size > 1:
            sizes = [len(b) // self.world_size for b in batches]
            batches = [
                b[self.rank * k : (self.rank + 1) * k]
                for b, k in zip(batches, sizes, strict=True)
                if k
            ]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        # A generator: the order is drawn at the first batch, after Lightning's set_epoch.
        batches = self._global_batches()
        if self._skip is not None and self._skip[0] == self.epoch:
            batches = batches[self._skip[1] :]
        for i, batch in enumerate(batches):
            if i == len(batches) - 1:
                # The resumed epoch ends with its last batch (Lightning stops asking then), not
                # at the first: it may draw a batch from one iterator, then start another.
                self._skip = None
            yield batch.tolist()

    def __len__(self) -> int:
        n = len(self.lengths)
        if not self.shuffle:
            rows = len(range(self.rank, n, self.world_size))
            return (rows + self.batch_size - 1) // self.batch_size
        step = self.batch_size * self.world_size
        return n // step + (n % step >= self.world_size)


class ResumableLoader(DataLoader):
    """A training DataLoader that Lightning can resume mid-epoch.

    Lightning 2.x restores its loop counters from a mid-epoch checkpoint but restarts the
    loader at the epoch's first batch, unless the loader has ``state_dict`` /
    ``load_state_dict``: then it saves the loader's state in the checkpoint and hands it back
    on resume. The sampler then skips the batches trained on, of the same seeded order, so a
    resumed run sees what an uninterrupted one would.
    """

    progress: Callable[[], int] | None = None  # Lightning's count, set by the trainer

    def state_dict(self) -> dict[str, Any]:
        """The epoch and the number of its batches already trained on."""
        done = self.progress() if self.progress is not None else 0
        return {"epoch": self.batch_sampler.epoch, "batches_done": int(done)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue after the batches a checkpoint says were trained on."""
        self.batch_sampler.resume_at(int(state["epoch"]), int(state["batches_done"]))


def make_loader(
    table: pd.DataFrame,
    batch_size: int,
    *,
    train: bool,
    group_by_length: bool = True,
    pad_token_id: int = 0,
    regression: bool = False,
    seed: int = 0,
    num_workers: int = 0,
    rank: int = 0,
    world_size: int = 1,
) -> DataLoader:
    """A DataLoader over a converted table (shuffled and seeded when ``train``)."""
    dataset = TableDataset(table, regression=regression)
    sampler = GroupedBatchSampler(
        dataset.lengths,
        batch_size,
        shuffle=train,
        group_by_length=group_by_length and dataset.is_text,
        seed=seed,
        rank=rank,
        world_size=world_size,
    )
    return (ResumableLoader if train else DataLoader)(
        dataset,
        batch_sampler=sampler,
        collate_fn=Collator(pad_token_id),
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
    )
