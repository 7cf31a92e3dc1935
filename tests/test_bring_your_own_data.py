"""The README's "Bring your own data" recipe, followed literally: configuration only, no code."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.slow

WORDS = {
    "billing": ["invoice", "charge", "refund"],
    "bug": ["crash", "error", "broken"],
    "other": ["hello", "thanks", "question"],
}


def tickets(n: int = 180) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    categories = list(WORDS)
    rows = []
    for i in range(n):
        category = categories[i % 3]
        words = [*rng.choice(WORDS[category], 2), *rng.choice(["the", "my", "a", "is"], 3)]
        rows.append(
            {"ticket_id": 1000 + i, "body": " ".join(rng.permutation(words)), "category": category}
        )
    return pd.DataFrame(rows)


def test_readme_recipe_trains_on_a_csv_with_other_column_names(scratch_project):
    root = scratch_project.root
    tickets().to_csv(root / "data/01_raw/tickets.csv", index=False)
    # Step 1 of the README: globals.yml
    path = root / "conf/base/globals.yml"
    g = yaml.safe_load(path.read_text())
    g.update(
        task_name="tickets", raw_file="data/01_raw/tickets.csv", labels=["billing", "bug", "other"]
    )
    path.write_text(yaml.safe_dump(g))
    # Step 2: parameters_clean.yml, exactly as the README shows it
    (root / "conf/base/parameters_clean.yml").write_text(
        """
clean:
  task: ${globals:task}
  label_column: category
  labels: ${globals:labels}
  label_from_score: null      # labels are names already, not a numeric score
  text_column: body
  id_column: ticket_id
  drop_duplicates: true
"""
    )
    # Step 3: kedro run --pipeline=train
    scratch_project.run("train")
    metrics = (root / "data/08_reporting/tickets/metrics.json").read_text()
    assert '"billing"' in metrics and '"other"' in metrics
    package = root / "data/06_models/tickets/package"
    config = yaml.safe_load((package / "config.json").read_text())
    assert config["id2label"] == {"0": "billing", "1": "bug", "2": "other"}
