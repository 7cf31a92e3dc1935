"""Property-based tests of split: disjoint, covering, stratified within one row per class."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from reprotrain.params import SplitParams
from reprotrain.pipelines.split.nodes import assign_splits

fractions = st.tuples(st.integers(1, 8), st.integers(0, 3), st.integers(1, 3)).map(
    lambda t: (t[0] / sum(t), t[1] / sum(t), t[2] / sum(t))
)


@settings(max_examples=200, deadline=None)
@given(
    labels=st.lists(st.integers(0, 3), min_size=1, max_size=300),
    fr=fractions,
    seed=st.integers(0, 2**16),
)
def test_assignment_partitions_rows_and_stratifies(labels, fr, seed):
    p = SplitParams(train=fr[0], validation=fr[1], test=1 - fr[0] - fr[1])
    y = np.array(labels)
    which = assign_splits(y, None, p, seed)
    assert which.shape == y.shape and set(np.unique(which)) <= {0, 1, 2}  # each row in one split
    fractions = (p.train, p.validation, p.test)
    for c in np.unique(y):
        n_c = (y == c).sum()
        counts = [((which == s) & (y == c)).sum() for s in range(3)]
        if all(f * n_c >= 1 for f in fractions):  # proportional, within one row
            assert all(abs(k - f * n_c) < 1 + 1e-9 for k, f in zip(counts, fractions, strict=True))
        if n_c >= 3:  # a rare class still reaches every split
            assert all(k >= 1 for k, f in zip(counts, fractions, strict=True) if f > 0)


@settings(max_examples=100, deadline=None)
@given(
    groups=st.lists(st.integers(0, 20), min_size=2, max_size=200),
    seed=st.integers(0, 1000),
)
def test_groups_never_straddle(groups, seed):
    g = np.array(groups)
    y = g % 2
    which = assign_splits(y, g, SplitParams(), seed)
    per_group = pd.Series(which).groupby(g).nunique()
    assert (per_group == 1).all()
