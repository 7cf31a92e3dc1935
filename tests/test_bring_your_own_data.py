"""The README's "Bring your own data" recipe, followed literally: configuration only, no code."""

from __future__ import annotations

import re
import textwrap

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import PROJECT_ROOT

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


def recipe_blocks() -> list[str]:
    """The YAML blocks of the README's "Bring your own data" section, in order."""
    text = (PROJECT_ROOT / "README.md").read_text()
    section = text[text.index("## Bring your own data") :]
    section = section[: section.index("\n## ", 1)]
    return [textwrap.dedent(b) for b in re.findall(r"```yaml\n(.*?)```", section, re.S)]


def test_readme_recipe_trains_on_a_csv_with_other_column_names(scratch_project):
    root = scratch_project.root
    tickets().to_csv(root / "data/01_raw/tickets.csv", index=False)
    globals_block, clean_block = recipe_blocks()
    # Step 1 of the README: globals.yml (the tiny test checkpoint in place of the real one)
    task = yaml.safe_load(globals_block)["task"]
    tiny = yaml.safe_load((root / "conf/base/globals.yml").read_text())["task"]
    task.update(model_checkpoint=tiny["model_checkpoint"], max_length=tiny["max_length"])
    (root / "conf/base/globals.yml").write_text(yaml.safe_dump({"task": task}))
    # Step 2: parameters_clean.yml, exactly as the README shows it
    (root / "conf/base/parameters_clean.yml").write_text(clean_block)
    # Step 3: kedro run --pipeline=train
    scratch_project.run("train")
    metrics = (root / "data/08_reporting/tickets/metrics.json").read_text()
    assert '"billing"' in metrics and '"other"' in metrics
    package = root / "data/06_models/tickets/package"
    config = yaml.safe_load((package / "config.json").read_text())
    assert config["id2label"] == {"0": "billing", "1": "bug", "2": "other"}
    assert (root / "data/06_models/tickets/best.ckpt").is_file()
    assert not (root / "data/06_models/reviews").exists()
