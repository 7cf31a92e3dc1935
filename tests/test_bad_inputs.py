"""Bad inputs, damaged files and failing saves: each fails clearly and loses nothing.

One good tiny run per task (``train``, then ``predict``) is made once per test session
(``trained`` in tests/conftest.py) and copied into each case's scratch project. A case then
breaks exactly one thing and runs only the affected step through the project's ``kedro run``
command, in-process (``kedro_in_process``: the same click command, so the exit status and the
one-paragraph error are the real ones; tests/test_cli_errors.py runs a few as subprocesses).
Every failing case asserts that

- the exit status is non-zero,
- the log names what is at fault (the file, column, key or value: ``expect`` below),
- every file under ``data/`` except the one broken on purpose is byte-for-byte what the
  good run left, and no file (a temporary one, say) was added.

The cases (step run → what the log says):

======================================  =========  ===========================================
case                                    step       error (fragments asserted)
======================================  =========  ===========================================
clean/missing_column                    clean      raw table is missing the configured
                                                   column(s) ['text'] + movie_reviews.csv
clean/misnamed_column                   clean      ... column(s) ['sentiment']; it has [...
                                                   'Sentiment' ...] + movie_reviews.csv
clean/semicolon_separated               clean      ... it has ['id;sentiment;text'] (the file
                                                   reads as one column: is it ';'-separated?
                                                   ... new-task ...) + file
clean/missing_raw_file                  clean      one paragraph: the raw data file ... does
                                                   not exist + `make data`
clean/empty_file                        clean      No columns to parse from file + file
clean/header_only                       clean      raw table has no rows + file
clean/all_labels_missing                clean      no usable rows left after cleaning
                                                   (removed: {'missing_label': 3 ...}) + file
clean/single_class                      clean      only one class ['positive'] is left + file
clean/non_utf8                          clean      'utf-8' codec can't decode byte 0xe9 + file
clean/duplicated_ids                    clean      column 'id' must hold unique ids;
                                                   repeated: [7] + file
clean/wrong_dtype                       clean      column 'sentiment' must be numeric but has
                                                   1 non-numeric value(s), e.g. ['great']
params/typo                             clean      unknown key 'clean.lable_column' (allowed
                                                   keys: ...) in parameters_clean.yml
params/task_typo                        clean      unknown key 'task.lables' (allowed keys:
                                                   ...) in globals.yml
params/shared_key_in_step_file          split      parameters_split.yml (or --params) sets
                                                   'split.seed': ...
                                                   set once in globals.yml under 'task'
params/out_of_range                     split      'split.train': Input should be less than 1
                                                   (got 1.5) in parameters_split.yml
params/bad_value                        fit        'fit.trainer.accelerator': Input should be
                                                   'auto', 'cpu', ... (got 'tpu')
convert/unseen_label                    convert    labels ['neutral'] are not in the
                                                   configured label list + clean_table.parquet
convert/missing_label_column            convert    cleaned table lacks column(s) ['label']
                                                   + clean_table.parquet
split/too_few_rows                      split      split(s) ['validation', 'test'] are empty:
                                                   2 rows are too few + model_input.parquet
fit/unseen_label                        fit        the training set has label ids [7] beyond
                                                   the 2 configured labels + train.parquet
fit/missing_pretrained_model            fit        model checkpoint '/nonexistent/tiny-bert'
                                                   is neither a local folder nor a hub model
                                                   available offline
fit/truncated_resume_checkpoint         fit        cannot resume from .../last.ckpt: the
                                                   checkpoint is truncated or corrupt
evaluate/corrupt_weights                evaluate   model folder .../trained_model is corrupt:
                                                   model.safetensors
evaluate/missing_weights                evaluate   model folder .../trained_model has no
                                                   model.safetensors
evaluate/unseen_label                   evaluate   test_set column 'label' holds class ids
                                                   [5] the model never saw + test.parquet
package/corrupt_metrics                 package    metrics: Failed while loading data ...
                                                   metrics.json ... Expecting property name
predict/missing_column                  predict    lacks the column(s) ['text'] +
                                                   reviews_predict_input.csv
predict/missing_text                    predict    column 'text' has missing text (rows [1]
predict/non_utf8                        predict    'utf-8' codec can't decode + file
predict/truncated_package_file          predict    file 'model.safetensors' was changed
predict/tampered_package_file           predict    file 'config.json' was changed
predict/missing_manifest                predict    has no manifest.json
predict/unlisted_package_file           predict    file(s) ['extra.pkl'] are not in
                                                   manifest.json
save/path_under_a_file                  clean      clean_report: Failed while saving ...
                                                   .../clean_report.json/clean_report.json ...
                                                   [Errno 17] File exists
save/target_is_a_folder                 predict    .../predictions.csv is a folder
save/read_only_folder (non-root only)   clean      Permission denied + data/08_reporting/...
penguins/clean_all_missing_feature      clean      numeric column 'body_mass_g' has no
                                                   values: all 150 are missing + penguins.csv
penguins/clean_infinite_everywhere      clean      no usable rows left after cleaning
                                                   (... 'infinite_feature': 150 ...)
penguins/clean_wrong_dtype              clean      column 'body_mass_g' must be numeric ...
                                                   e.g. ['heavy']
penguins/predict_infinite_feature       predict    column 'bill_length_mm' holds infinite
                                                   values (rows [2])
penguins/predict_wrong_dtype            predict    column 'body_mass_g' must be numeric
======================================  =========  ===========================================

Accepted on purpose (exit 0, the report explains what was done):

- very long texts are kept whole by clean and truncated to ``max_length`` by convert;
- some rows with an infinite feature are dropped and counted (``removed.infinite_feature``);
  missing numbers are kept and imputed (``missing_features: keep``, penguins).

Covered elsewhere, at node level: tests/pipelines/clean/test_nodes.py (the clean cases),
tests/pipelines/package/test_package.py (manifest tampering, a failed self-check keeps the old
package), tests/test_crash_resume.py
(SIGKILL mid-training, then resume), tests/datasets/test_atomic.py (a save failing midway).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import pytest
import yaml

from tests.conftest import PENGUINS_PREDICT, REVIEWS_PREDICT, flat, hashes, kedro_in_process

pytestmark = pytest.mark.slow

REVIEWS_RAW = "data/01_raw/movie_reviews.csv"
PENGUINS_RAW = "data/01_raw/penguins.csv"
TASK_OF = {"base": "reviews", "penguins": "penguins"}


# ------------------------------------------------------------------------------ breaking things
def write_bytes(rel: str, content: bytes) -> Callable:
    def breaker(project) -> list[str]:
        project.path(rel).write_bytes(content)
        return [rel]

    return breaker


def edit_csv(rel: str, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable:
    def breaker(project) -> list[str]:
        edit(pd.read_csv(project.path(rel))).to_csv(project.path(rel), index=False)
        return [rel]

    return breaker


def edit_parquet(rel: str, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable:
    def breaker(project) -> list[str]:
        edit(pd.read_parquet(project.path(rel))).to_parquet(project.path(rel))
        return [rel]

    return breaker


def set_params(step: str, override: dict) -> Callable:
    def breaker(project) -> list[str]:
        project.write_params(step, override)
        return []

    return breaker


def set_task(override: dict) -> Callable:
    def breaker(project) -> list[str]:
        project.write_task(override)
        return []

    return breaker


def set_cell(column: str, row: int, value) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.astype({column: object})
        frame.loc[row, column] = value
        return frame

    return edit


def truncate(rel: str, keep: int = 100) -> Callable:
    def breaker(project) -> list[str]:
        path = project.path(rel)
        path.write_bytes(path.read_bytes()[:keep])
        return [rel]

    return breaker


def remove(rel: str) -> Callable:
    def breaker(project) -> list[str]:
        project.path(rel).unlink()
        return [rel]

    return breaker


def tamper_config(project) -> list[str]:
    rel = "data/06_models/reviews/package/config.json"
    config = json.loads(project.path(rel).read_text())
    config["id2label"] = {"0": "positive", "1": "negative"}  # swapped labels: a silent lie
    project.path(rel).write_text(json.dumps(config))
    return [rel]


def add_pickle(project) -> list[str]:
    rel = "data/06_models/reviews/package/extra.pkl"
    project.path(rel).write_bytes(b"\x80\x04\x95\x00")  # the start of a pickle
    return [rel]


def catalog_override(name: str, filepath: str) -> Callable:
    def breaker(project) -> list[str]:
        base = yaml.safe_load(project.path("conf/base/catalog.yml").read_text())[name]
        entry = {**base, "filepath": filepath}
        project.path("conf/local/catalog.yml").write_text(yaml.safe_dump({name: entry}))
        return []

    return breaker


def predictions_become_a_folder(project) -> list[str]:
    rel = "data/07_model_output/reviews/predictions.csv"
    project.path(rel).unlink()
    project.path(rel).mkdir()
    return [rel]


def read_only_reporting(project) -> list[str]:
    os.chmod(project.path("data/08_reporting/reviews"), 0o555)
    return []


def too_few_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.groupby("label").head(1)


def header_only(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.iloc[:0]


@dataclass(frozen=True)
class Case:
    """Break something (returns the broken paths), run ``step`` of ``env``, expect ``expect``."""

    breaks: Callable
    step: str
    expect: tuple[str, ...]
    env: str = "base"
    params: str | None = None


M = "data/06_models/reviews"
PKG = f"{M}/package"
CASES: dict[str, Case] = {
    # ------------------------------------------------------------------------------- clean
    "clean/missing_column": Case(
        edit_csv(REVIEWS_RAW, lambda f: f.drop(columns="text")),
        "clean",
        ("raw table is missing the configured column(s) ['text']", "movie_reviews.csv"),
    ),
    "clean/misnamed_column": Case(
        edit_csv(REVIEWS_RAW, lambda f: f.rename(columns={"sentiment": "Sentiment"})),
        "clean",
        (
            "missing the configured column(s) ['sentiment']; it has ['id', 'Sentiment', 'text']",
            "movie_reviews.csv",
        ),
    ),
    "clean/semicolon_separated": Case(
        lambda project: (
            pd.read_csv(project.path(REVIEWS_RAW)).to_csv(
                project.path(REVIEWS_RAW), sep=";", index=False
            ),
            [REVIEWS_RAW],
        )[1],
        "clean",
        (
            "it has ['id;sentiment;text'] (the file reads as one column: is it ';'-separated?",
            "new-task",
            "movie_reviews.csv",
        ),
    ),
    "clean/missing_raw_file": Case(
        lambda project: (project.path(REVIEWS_RAW).unlink(), [REVIEWS_RAW])[1],
        "clean",
        ("error: the raw data file data/01_raw/movie_reviews.csv does not exist", "make data"),
    ),
    "clean/empty_file": Case(
        write_bytes(REVIEWS_RAW, b""),
        "clean",
        ("No columns to parse from file", "movie_reviews.csv"),
    ),
    "clean/header_only": Case(
        edit_csv(REVIEWS_RAW, header_only), "clean", ("raw table has no rows", "movie_reviews.csv")
    ),
    "clean/all_labels_missing": Case(
        write_bytes(REVIEWS_RAW, b"id,sentiment,text\n1,,good\n2,,bad\n3,,dull\n"),
        "clean",
        ("no usable rows left after cleaning (removed: {'missing_label': 3", "movie_reviews.csv"),
    ),
    "clean/single_class": Case(
        edit_csv(REVIEWS_RAW, lambda f: f.assign(sentiment=f["sentiment"].abs())),
        "clean",
        ("only one class ['positive'] is left after cleaning", "movie_reviews.csv"),
    ),
    "clean/non_utf8": Case(
        write_bytes(REVIEWS_RAW, "id,sentiment,text\n1,2.0,caf\xe9\n".encode("latin-1")),
        "clean",
        ("'utf-8' codec can't decode byte 0xe9", "movie_reviews.csv"),
    ),
    "clean/duplicated_ids": Case(
        edit_csv(REVIEWS_RAW, set_cell("id", 3, 7)),
        "clean",
        ("column 'id' must hold unique ids; repeated: [7]", "movie_reviews.csv"),
    ),
    "clean/wrong_dtype": Case(
        edit_csv(REVIEWS_RAW, set_cell("sentiment", 5, "great")),
        "clean",
        (
            "column 'sentiment' must be numeric but has 1 non-numeric value(s), e.g. ['great']",
            "movie_reviews.csv",
        ),
    ),
    # -------------------------------------------------------------------------- parameters
    "params/typo": Case(
        set_params("clean", {"lable_column": "sentiment"}),
        "clean",
        (
            "invalid parameters in parameters_clean.yml",
            "unknown key 'clean.lable_column'",
            "allowed keys: categorical_columns, date_columns, drop_duplicates",
        ),
    ),
    "params/task_typo": Case(
        set_task({"lables": ["negative", "positive"]}),
        "clean",
        (
            "invalid parameters in globals.yml",
            "unknown key 'task.lables'",
            "allowed keys: labels, max_length, model_checkpoint, name, raw_file, seed, type",
        ),
    ),
    "params/shared_key_in_step_file": Case(
        set_params("split", {"seed": 7}),
        "split",
        (
            "parameters_split.yml (or --params) sets 'split.seed'",
            "set once in globals.yml under 'task'",
        ),
    ),
    "params/out_of_range": Case(
        set_params("split", {"train": 1.5}),
        "split",
        (
            "invalid parameters in parameters_split.yml",
            "'split.train': Input should be less than 1 (got 1.5)",
        ),
    ),
    "params/bad_value": Case(
        set_params("fit", {"trainer": {"accelerator": "tpu"}}),
        "fit",
        (
            "'fit.trainer.accelerator': Input should be 'auto', 'cpu', 'gpu', 'cuda' or 'mps' "
            "(got 'tpu')",
        ),
    ),
    # ---------------------------------------------------------------------- convert, split
    "convert/unseen_label": Case(
        edit_parquet(
            "data/02_intermediate/reviews/clean_table.parquet", set_cell("label", 0, "neutral")
        ),
        "convert",
        (
            "labels ['neutral'] are not in the configured label list ['negative', 'positive']",
            "clean_table.parquet",
        ),
    ),
    "convert/missing_label_column": Case(
        edit_parquet(
            "data/02_intermediate/reviews/clean_table.parquet",
            lambda f: f.rename(columns={"label": "labels"}),
        ),
        "convert",
        ("cleaned table lacks column(s) ['label']", "clean_table.parquet"),
    ),
    "split/too_few_rows": Case(
        edit_parquet("data/04_feature/reviews/model_input.parquet", too_few_rows),
        "split",
        ("split(s) ['validation', 'test'] are empty: 2 rows are too few", "model_input.parquet"),
    ),
    # ---------------------------------------------------------------------------------- fit
    "fit/unseen_label": Case(
        edit_parquet("data/05_model_input/reviews/train.parquet", set_cell("label", 0, 7)),
        "fit",
        ("the training set has label ids [7] beyond the 2 configured labels", "train.parquet"),
    ),
    "fit/missing_pretrained_model": Case(
        set_task({"model_checkpoint": "/nonexistent/tiny-bert"}),
        "fit",
        (
            "model checkpoint '/nonexistent/tiny-bert' is neither a local folder nor a hub model "
            "available offline",
        ),
    ),
    "fit/truncated_resume_checkpoint": Case(
        truncate(f"{M}/checkpoints/last.ckpt", 2000),
        "fit",
        ("cannot resume from", "checkpoints/last.ckpt: the checkpoint is truncated or corrupt"),
        params="fit.resume=true",
    ),
    # ----------------------------------------------------------------------------- evaluate
    "evaluate/corrupt_weights": Case(
        truncate(f"{M}/trained_model/model.safetensors", 50),
        "evaluate",
        ("trained_model is corrupt: model.safetensors",),
    ),
    "evaluate/missing_weights": Case(
        remove(f"{M}/trained_model/model.safetensors"),
        "evaluate",
        ("trained_model has no model.safetensors",),
    ),
    "evaluate/unseen_label": Case(
        edit_parquet("data/05_model_input/reviews/test.parquet", set_cell("label", 0, 5)),
        "evaluate",
        ("test_set column 'label' holds class ids [5] the model never saw", "test.parquet"),
    ),
    # ------------------------------------------------------------------------------ package
    "package/corrupt_metrics": Case(
        write_bytes("data/08_reporting/reviews/metrics.json", b'{"accuracy": 0.5,'),
        "package",
        (
            "metrics: Failed while loading data",
            "metrics.json",
            "Expecting property name enclosed in double quotes",
        ),
    ),
    # ------------------------------------------------------------------------------ predict
    "predict/missing_column": Case(
        edit_csv(REVIEWS_PREDICT, lambda f: f.rename(columns={"text": "review"})),
        "predict",
        ("lacks the column(s) ['text'] the model needs", "reviews_predict_input.csv"),
    ),
    "predict/missing_text": Case(
        edit_csv(REVIEWS_PREDICT, set_cell("text", 1, None)),
        "predict",
        ("column 'text' has missing text (rows [1]", "reviews_predict_input.csv"),
    ),
    "predict/non_utf8": Case(
        write_bytes(REVIEWS_PREDICT, "id,text\n1,caf\xe9\n".encode("latin-1")),
        "predict",
        ("'utf-8' codec can't decode byte 0xe9", "reviews_predict_input.csv"),
    ),
    "predict/truncated_package_file": Case(
        truncate(f"{PKG}/model.safetensors", 1000),
        "predict",
        ("file 'model.safetensors' was changed", "package"),
    ),
    "predict/tampered_package_file": Case(
        tamper_config, "predict", ("file 'config.json' was changed", "package")
    ),
    "predict/missing_manifest": Case(
        remove(f"{PKG}/manifest.json"), "predict", ("has no manifest.json", "package")
    ),
    "predict/unlisted_package_file": Case(
        add_pickle, "predict", ("file(s) ['extra.pkl'] are not in manifest.json",)
    ),
    # -------------------------------------------------------------------------------- saving
    "save/path_under_a_file": Case(
        catalog_override(
            "clean_report", "data/08_reporting/reviews/clean_report.json/clean_report.json"
        ),
        "clean",
        ("clean_report: Failed while saving", "clean_report.json/clean_report.json", "File exists"),
    ),
    "save/target_is_a_folder": Case(
        predictions_become_a_folder,
        "predict",
        ("data/07_model_output/reviews/predictions.csv is a folder",),
    ),
    "save/read_only_folder": Case(
        read_only_reporting,
        "clean",
        ("Permission denied", "data/08_reporting/reviews"),
    ),
    # ----------------------------------------------------------------- penguins (tabular)
    "penguins/clean_all_missing_feature": Case(
        edit_csv(PENGUINS_RAW, lambda f: f.assign(body_mass_g=None)),
        "clean",
        ("numeric column 'body_mass_g' has no values: all 150 are missing", "penguins.csv"),
        env="penguins",
    ),
    "penguins/clean_infinite_everywhere": Case(
        edit_csv(PENGUINS_RAW, lambda f: f.assign(flipper_length_mm=float("inf"))),
        "clean",
        ("no usable rows left after cleaning", "'infinite_feature': 150", "penguins.csv"),
        env="penguins",
    ),
    "penguins/clean_wrong_dtype": Case(
        edit_csv(PENGUINS_RAW, set_cell("body_mass_g", 4, "heavy")),
        "clean",
        (
            "column 'body_mass_g' must be numeric but has 1 non-numeric value(s), e.g. ['heavy']",
            "penguins.csv",
        ),
        env="penguins",
    ),
    "penguins/predict_infinite_feature": Case(
        edit_csv(PENGUINS_PREDICT, set_cell("bill_length_mm", 2, float("inf"))),
        "predict",
        ("column 'bill_length_mm' holds infinite values (rows [2])", "penguins_predict_input.csv"),
        env="penguins",
    ),
    "penguins/predict_wrong_dtype": Case(
        edit_csv(PENGUINS_PREDICT, set_cell("body_mass_g", 0, "heavy")),
        "predict",
        ("column 'body_mass_g' must be numeric", "penguins_predict_input.csv"),
        env="penguins",
    ),
}

NEEDS_NON_ROOT = {"save/read_only_folder"}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_fails_clearly_and_keeps_outputs(trained, name):
    if name in NEEDS_NON_ROOT and os.geteuid() == 0:
        pytest.skip("root ignores file permissions")
    case = CASES[name]
    scratch_project = trained(case.env)
    before = hashes(scratch_project.root)
    broken = case.breaks(scratch_project)

    args = [f"--pipelines={case.step}"]
    args += [f"--env={case.env}"] if case.env != "base" else []
    args += ["--params", case.params] if case.params else []
    try:
        done = kedro_in_process(scratch_project.root, "run", *args)
    finally:
        os.chmod(scratch_project.path(f"data/08_reporting/{TASK_OF[case.env]}"), 0o755)

    log = flat(done.stdout + done.stderr)
    assert done.returncode != 0, log[-3000:]
    # one short paragraph, no page of traceback (reprotrain.cli); --verbose keeps it
    assert "Traceback (most recent call last)" not in done.stdout + done.stderr, log[-3000:]
    for fragment in case.expect:
        assert fragment in log or fragment.replace(" ", "") in log.replace(" ", ""), (
            f"{fragment!r} not in the log:\n{log[-4000:]}"
        )
    after = hashes(scratch_project.root)
    for rel in broken:
        before.pop(rel, None)
        after.pop(rel, None)
    assert after == before, {
        "changed": sorted(k for k in before if after.get(k) != before[k]),
        "added": sorted(set(after) - set(before)),
    }


# ----------------------------------------------------------------------- accepted on purpose
def test_very_long_text_is_kept_and_truncated(trained):
    scratch_project = trained()
    raw = pd.read_csv(scratch_project.path(REVIEWS_RAW))
    raw.loc[0, "text"] = " ".join(["good"] * 50_000)
    raw.to_csv(scratch_project.path(REVIEWS_RAW), index=False)
    for step in ("clean", "convert"):
        done = kedro_in_process(scratch_project.root, "run", f"--pipelines={step}")
        assert done.returncode == 0, flat(done.stdout + done.stderr)[-3000:]
    clean = pd.read_parquet(
        scratch_project.path("data/02_intermediate/reviews/clean_table.parquet")
    )
    assert clean["text"].str.len().max() == len(raw.loc[0, "text"])
    ids = pd.read_parquet(scratch_project.path("data/04_feature/reviews/model_input.parquet"))
    assert ids["input_ids"].map(len).max() == 32  # the scratch project's max_length


def test_some_infinite_features_are_dropped_and_reported(trained):
    scratch_project = trained("penguins")
    raw = pd.read_csv(scratch_project.path(PENGUINS_RAW))
    raw.loc[[5, 9], "flipper_length_mm"] = [float("inf"), float("-inf")]
    raw.to_csv(scratch_project.path(PENGUINS_RAW), index=False)
    done = kedro_in_process(scratch_project.root, "run", "--pipelines=clean", "--env=penguins")
    assert done.returncode == 0, flat(done.stdout + done.stderr)[-3000:]
    report = json.loads(
        scratch_project.path("data/08_reporting/penguins/clean_report.json").read_text()
    )
    assert report["removed"]["infinite_feature"] == 2
    assert report["rows_out"] + sum(report["removed"].values()) == report["rows_in"] == 150
