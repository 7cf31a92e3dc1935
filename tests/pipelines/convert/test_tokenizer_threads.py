"""Convert lets the fast tokenizer use its threads, and turns them off again afterwards."""

from __future__ import annotations

import os

import pytest
from transformers import AutoTokenizer

from reprotrain.pipelines.convert.nodes import convert_table, tokenizer_parallelism
from tests.conftest import make_reviews


@pytest.mark.parametrize("before", ["false", "true", None])
def test_parallelism_is_on_inside_and_restored_after(monkeypatch, before):
    if before is None:
        monkeypatch.delenv("TOKENIZERS_PARALLELISM", raising=False)
    else:
        monkeypatch.setenv("TOKENIZERS_PARALLELISM", before)
    with tokenizer_parallelism():
        assert os.environ["TOKENIZERS_PARALLELISM"] == "true"
    # unset before: "false" after, so a loader that forks later neither deadlocks nor warns
    assert os.environ["TOKENIZERS_PARALLELISM"] == (before or "false")


def test_threaded_convert_gives_the_single_threaded_ids(monkeypatch, tiny_tokenizer_dir):
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    raw = make_reviews(500, seed=2)
    cleaned = raw.assign(label=(raw["sentiment"] > 0).map({True: "positive", False: "negative"}))
    params = {
        "tokenizer": str(tiny_tokenizer_dir),
        "max_length": 16,
        "labels": ["negative", "positive"],
        "batch_size": 128,
    }
    out = convert_table(cleaned[["id", "text", "label"]], params)
    assert os.environ["TOKENIZERS_PARALLELISM"] == "false"
    tok = AutoTokenizer.from_pretrained(str(tiny_tokenizer_dir))
    expected = tok(cleaned["text"].tolist(), truncation=True, max_length=16)["input_ids"]
    assert [list(map(int, x)) for x in out["input_ids"]] == expected
