"""Convert: cleaned rows → model inputs (token ids for text, numeric columns for tables).

Nothing here is fitted on data: the tokenizer is pretrained and the category lists come from
parameters, so converting before splitting leaks no test statistics. Feature scaling is
fitted later, on the training split only (see ``reprotrain.models.mlp``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pyarrow as pa

from reprotrain.features import date_features, one_hot, parse_dates
from reprotrain.params import ConvertParams, ParameterError, TaskParams, parse

log = logging.getLogger(__name__)

TOKEN_IDS = pa.list_(pa.int32())  # one array of token ids per text


def _label_ids(labels: pd.Series, t: TaskParams) -> pd.Series:
    if t.type == "regression":
        return labels.astype("float32")
    names = list(t.labels or [])
    unknown = sorted(set(labels.dropna().astype(str)) - set(names))
    if unknown:
        raise ValueError(f"labels {unknown} are not in the configured label list {names}")
    return labels.astype(str).map({n: i for i, n in enumerate(names)}).astype("int64")


def _token_ids(texts: list[str], p: ConvertParams, t: TaskParams) -> pd.Series:
    """Tokenise in batched calls; return one int32 array per text (no padding)."""
    from transformers import AutoTokenizer

    from reprotrain.pretrained import resolve_checkpoint

    if t.model_checkpoint is None:
        raise ValueError("task.model_checkpoint must name a tokenizer for a text task")
    folder = resolve_checkpoint(t.model_checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(folder, use_fast=True)
    limit = _position_limit(folder, tokenizer)
    if limit is not None and t.max_length > limit:
        raise ParameterError(
            f"task.max_length is {t.max_length}, but model '{t.model_checkpoint}' reads at most "
            f"{limit} tokens: set task.max_length to {limit} or less in globals.yml"
        )
    chunks: list[pa.Array] = []
    start = time.perf_counter()
    with tokenizer_threads():
        for i in range(0, len(texts), p.batch_size):
            ids = tokenizer(
                texts[i : i + p.batch_size],
                truncation=True,
                max_length=t.max_length,
                return_attention_mask=False,
                return_token_type_ids=False,
            )["input_ids"]
            chunks.append(pa.array(ids, type=TOKEN_IDS))
            log.info(
                "convert: tokenised %d / %d texts", min(i + p.batch_size, len(texts)), len(texts)
            )
    log.info("convert: %d texts in %.1fs", len(texts), time.perf_counter() - start)
    return pa.chunked_array(chunks, type=TOKEN_IDS).to_pandas().rename("input_ids")


@contextlib.contextmanager
def tokenizer_threads() -> Iterator[None]:
    """Let the fast tokenizer use every core inside the block; ``false`` again after it.

    ``TOKENIZERS_PARALLELISM=false`` (exported by the Makefile) keeps batched calls on one
    thread. Nothing forks inside the block; after it the variable is ``false``, so a data
    loader that forks later (``num_workers > 0``) neither deadlocks nor warns.
    """
    os.environ["TOKENIZERS_PARALLELISM"] = "true"
    try:
        yield
    finally:
        os.environ["TOKENIZERS_PARALLELISM"] = "false"


def _position_limit(folder: str, tokenizer: Any) -> int | None:
    """The most tokens the model reads: the smaller of the tokenizer's and the config's limit.

    Tokenizers without a limit report a huge ``model_max_length``; RoBERTa-style configs count
    two extra positions, which the tokenizer's limit already leaves out.
    """
    from transformers import AutoConfig

    limits = [tokenizer.model_max_length] if tokenizer.model_max_length < 1_000_000 else []
    try:
        positions = getattr(AutoConfig.from_pretrained(folder), "max_position_embeddings", None)
    except (OSError, ValueError):  # a tokenizer-only folder: no config to read
        positions = None
    if isinstance(positions, int) and positions > 0:
        limits.append(positions)
    return min(limits) if limits else None


def _features(table: pd.DataFrame, p: ConvertParams) -> pd.DataFrame:
    """Numeric columns cast to float32 (NaN kept), then each date column's parts
    (``date_features``; missing: NaN), then categoricals one-hot (``one_hot``)."""
    cols = {c: pd.to_numeric(table[c], errors="raise").astype("float32") for c in p.numeric_columns}
    for c, fmt in p.date_columns.items():
        try:
            dates = parse_dates(table[c], c, fmt)
        except ValueError as err:
            raise ValueError(
                f"{err}: give the column clean's format in convert.date_columns "
                f"(parameters_convert.yml); the package reads new dates with it"
            ) from None
        cols.update(date_features(dates, c))
    for c, categories in p.categories.items():
        cols.update(one_hot(table[c], c, categories))
    return pd.DataFrame(cols, index=table.index)


def convert_table(
    cleaned: pd.DataFrame, parameters: dict[str, Any], task: dict[str, Any]
) -> pd.DataFrame:
    """Turn the cleaned table into model inputs.

    Args:
        cleaned: Output of ``clean_table``: ``text`` and/or feature columns and ``label``.
        parameters: The ``convert`` parameter group.
        task: The ``task`` parameter group (type, labels, tokenizer and max_length).

    Returns:
        A table with ``label`` (class index or float target), ``text`` and its ``input_ids``
        (text) or one float32 column per feature (tabular), and ``id`` / ``group`` when
        present. Classification: ``attrs["labels"]`` records which name each id stands for
        (kept in the parquet file), so fit and evaluate can refuse a later reorder.
    """
    t = parse("task", task)
    p = parse("convert", parameters, t)
    needed = ["label", *p.numeric_columns, *p.date_columns, *p.categories]
    missing = [c for c in needed if c not in cleaned.columns]
    if missing:
        raise ValueError(f"cleaned table lacks column(s) {missing} named in parameters_convert.yml")
    out = cleaned[[c for c in ("id", "group") if c in cleaned.columns]].copy()
    if "text" in cleaned.columns:
        out["text"] = cleaned["text"].astype(str)
        out["input_ids"] = _token_ids(out["text"].tolist(), p, t)
    else:
        out = pd.concat([out, _features(cleaned, p)], axis=1)
    out["label"] = _label_ids(cleaned["label"], t)
    if t.type == "classification":
        out.attrs["labels"] = list(t.labels or [])
    return out
