"""Property-based tests of clean: whatever the table, no valid row is lost silently."""

from __future__ import annotations

import math

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reprotrain.pipelines.clean.nodes import DataError, clean_table
from tests.conftest import load_params, load_task

PARAMS = load_params("clean")
TASK = load_task()

texts = st.one_of(
    st.none(), st.sampled_from(["", "  ", "good", "bad  film", "good"]), st.text(max_size=12)
)
scores = st.one_of(st.none(), st.just(0.0), st.just(float("nan")), st.floats(-4, 4))
rows = st.lists(st.tuples(texts, scores), min_size=1, max_size=40)


def expected_kept(data: list[tuple]) -> list[tuple[str, str]]:
    """The rows a correct clean keeps, by the documented rules, in order."""
    kept, seen = [], set()
    for text, score in data:
        norm = " ".join(text.split()) if isinstance(text, str) else None
        if score is None or math.isnan(score) or score == 0 or not norm:
            continue
        row = (norm, "positive" if score > 0 else "negative")
        if row not in seen:
            seen.add(row)
            kept.append(row)
    return kept


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows)
def test_clean_keeps_exactly_the_valid_rows_and_accounts_for_the_rest(data):
    raw = pd.DataFrame(
        {"id": range(len(data)), "text": [t for t, _ in data], "sentiment": [s for _, s in data]}
    )
    want = expected_kept(data)
    if len({label for _, label in want}) < 2:  # nothing, or one class only: a clear error
        try:
            clean_table(raw, PARAMS, TASK)
        except DataError:
            return
        raise AssertionError("clean accepted a table without two classes")
    cleaned, report = clean_table(raw, PARAMS, TASK)
    got = list(zip(cleaned["text"], cleaned["label"], strict=True))
    assert got == want
    assert report["rows_out"] + sum(report["removed"].values()) == report["rows_in"] == len(raw)
