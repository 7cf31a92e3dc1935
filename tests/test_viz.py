"""Kedro-Viz in a real browser: scripts/viz_check.sh builds, serves and checks the graph."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (/usr/bin/chromium)")
def test_viz_site_draws_every_node_of_the_train_pipeline(tmp_path: Path) -> None:
    screenshot = tmp_path / "viz.png"
    result = subprocess.run(
        [str(PROJECT_ROOT / "scripts" / "viz_check.sh"), str(screenshot)],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "OK: all" in result.stderr
    for layer in ("raw", "intermediate", "feature", "model_input", "models", "reporting"):
        assert layer in result.stderr.split("layers shown:")[1].splitlines()[0]
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
