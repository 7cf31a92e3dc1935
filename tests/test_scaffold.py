"""``python -m reprotrain new-task``: inference on small tables, refusals, files, end to end."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from reprotrain import scaffold
from reprotrain.params import parse
from reprotrain.scaffold import ScaffoldError, infer_plan
from reprotrain.settings import load_parameters
from tests.conftest import NEGATIVE, NEUTRAL, POSITIVE, PROJECT_ROOT, make_penguins

BASE_TASK = {"model_checkpoint": "some/checkpoint", "max_length": 48}
RAW = "data/01_raw/table.csv"
WORDS = {"spam": POSITIVE, "ham": NEGATIVE, "promo": ["very", "and", "acting"]}


def messages(n: int = 60, seed: int = 0) -> pd.DataFrame:
    """A text table with other column names than the default task: msg_id, message, kind."""
    rng = np.random.default_rng(seed)
    kinds = np.array(list(WORDS))[np.arange(n) % 3]
    return pd.DataFrame(
        {
            "msg_id": np.arange(1000, 1000 + n),
            "message": [
                " ".join([*rng.choice(NEUTRAL, 4), *rng.choice(WORDS[k], 2), f"w{i}"])
                for i, k in enumerate(kinds)
            ],
            "channel": rng.choice(["sms", "mail"], n),
            "kind": kinds,
        }
    )


def birds(n: int = 150) -> pd.DataFrame:
    """make_penguins with renamed columns, out-of-order categories, missing values, an id."""
    frame = make_penguins(n).rename(
        columns={"species": "kind", "island": "site", "bill_length_mm": "bill", "sex": "sex_"}
    )
    frame["site"] = frame["site"].map({"Biscoe": "west", "Dream": "east", "Torgersen": "central"})
    frame["sex_"] = frame["sex_"].map({"female": "F", "male": "M"})
    frame.insert(0, "bird_id", [f"B{i:04d}" for i in range(n)])
    return frame


def plan_of(frame: pd.DataFrame, label: str, **kwargs) -> scaffold.Plan:
    return infer_plan(frame, label=label, raw_file=RAW, base_task=BASE_TASK, **kwargs)


def roles(plan: scaffold.Plan) -> dict[str, str]:
    return {r.column: r.role for r in plan.roles}


# ---------------------------------------------------------------------------------- inference
def test_text_task_with_renamed_columns_and_string_labels():
    plan = plan_of(messages(), "kind")
    assert (plan.kind, plan.task_type, plan.text_column, plan.id_column) == (
        "text",
        "classification",
        "message",
        "msg_id",
    )
    assert plan.labels == ["ham", "promo", "spam"]  # sorted, not in order of appearance
    assert roles(plan) == {
        "kind": "label",
        "msg_id": "id",
        "message": "text",
        "channel": "ignored",
    }
    assert "text task reads its text column only" in plan.roles[-1].reason
    assert (plan.numeric_columns, plan.categories, plan.missing_features) == ([], {}, "drop")
    assert (plan.name, plan.env, plan.model_checkpoint, plan.max_length) == (
        "table",
        "table",
        "some/checkpoint",
        48,
    )


def test_tabular_task_with_categoricals_missing_values_and_an_id():
    frame = birds()
    frame["ring_name"] = [f"bird-{i}" for i in range(len(frame))]  # names: ignored
    frame["row"] = range(len(frame))  # a second unique column: not a second id
    frame["owner_id"] = np.arange(len(frame)) % 7  # an id-like name that repeats: no feature
    plan = plan_of(frame, "kind")
    assert (plan.kind, plan.task_type, plan.id_column) == ("tabular", "classification", "bird_id")
    assert plan.labels == ["Adelie", "Chinstrap", "Gentoo"]
    assert plan.numeric_columns == [
        "bill",
        "bill_depth_mm",
        "flipper_length_mm",
        "body_mass_g",
        "year",
    ]
    assert plan.categories == {"site": ["central", "east", "west"], "sex_": ["F", "M"]}
    assert plan.missing == {"bill": 1, "body_mass_g": 1, "sex_": 1}
    assert plan.missing_features == "keep"
    r = {x.column: x for x in plan.roles}
    assert r["ring_name"].role == "ignored" and "names or codes" in r["ring_name"].reason
    assert r["row"].role == "ignored" and "'bird_id' is the id" in r["row"].reason
    assert r["owner_id"].role == "ignored" and "identifier" in r["owner_id"].reason


def test_a_class_named_NA_is_a_class_and_NA_features_are_missing(tmp_path):
    """Read as the catalog reads raw_table: labels literally, NA in a feature is missing."""
    frame = birds(60)
    frame["kind"] = frame["kind"].replace({"Chinstrap": "NA"})
    frame["bill"] = frame["bill"].astype(object)
    frame.loc[5, "bill"] = "NA"
    frame.loc[7, "bill"] = "?"  # the UCI repository's marker
    frame.loc[6, "site"] = "null"
    path = tmp_path / "birds.csv"
    frame.to_csv(path, index=False)
    plan = plan_of(scaffold.read_table(path), "kind")
    assert plan.labels == ["Adelie", "Gentoo", "NA"]
    assert "bill" in plan.numeric_columns
    assert plan.categories["site"] == ["central", "east", "west"]
    assert plan.missing["bill"] == 3 and plan.missing["site"] == 1
    n = int((frame["kind"] == "NA").sum())
    assert f"label value(s) 'NA' ({n} rows) read as class(es), as written; if they mark a" in (
        " ".join(plan.notes)
    )


def test_complete_rows_drop_and_an_integer_sequence_is_an_id():
    frame = birds().dropna().drop(columns="bird_id").reset_index(drop=True)
    frame.insert(0, "n", range(1, len(frame) + 1))
    plan = plan_of(frame, "kind")
    assert (plan.id_column, plan.missing, plan.missing_features) == ("n", {}, "drop")


def test_numeric_label_with_many_values_is_a_regression():
    plan = plan_of(birds(), "body_mass_g")
    assert (plan.task_type, plan.labels) == ("regression", None)
    assert "kind" in plan.categories and "body_mass_g" not in plan.numeric_columns
    assert plan.labelled_rows == len(birds()) - 1  # one mass is missing
    forced = plan_of(birds(), "year", task_type="regression")
    assert (forced.task_type, forced.type_reason) == ("regression", "set with --type")


def test_numeric_label_with_few_whole_values_is_classification_sorted_by_value():
    frame = birds()
    frame["grade"] = np.array([2, 10, 1])[np.arange(len(frame)) % 3]
    plan = plan_of(frame, "grade")
    assert (plan.task_type, plan.labels) == ("classification", ["1", "2", "10"])


WHEN = pd.date_range("2015-01-01 06:15:30", periods=60, freq="37h")  # days past the 12th


@pytest.mark.parametrize(
    "fmt",
    [
        "%Y-%m-%d",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y/%m/%d",
        "%Y/%m/%d %H:%M",
        "%d.%m.%Y",
        "%d.%m.%Y %H:%M:%S",
        "%d/%m/%Y",
        "%m/%d/%Y",
        "%m/%d/%Y %H:%M",
    ],
)
def test_a_column_of_dates_in_each_format_family_is_a_date_column(fmt):
    frame = birds(60).assign(seen=WHEN.strftime(fmt))
    frame.loc[3, "seen"] = "NA"  # a missing date counts for the missing-values policy
    plan = plan_of(frame, "kind")
    role = next(r for r in plan.roles if r.column == "seen")
    assert (role.role, role.reason, plan.date_columns) == (
        "date",
        f"dates, format {fmt}",
        {"seen": fmt},
    )
    assert plan.missing["seen"] == 1 and plan.missing_features == "keep"
    hour = ["seen.hour"] if "%H" in fmt else []
    assert (
        plan.date_parts["seen"]
        == [f"seen.{p}" for p in ("time", "month", "day_of_week", "day_of_year")] + hour
    )
    assert not [n for n in plan.notes if "month/day/year" in n]


def test_day_first_wins_where_month_first_reads_too_and_a_note_says_how_to_change_it():
    frame = birds(60).assign(
        seen=pd.date_range("2015-01-01", periods=60, freq="W").strftime("%m/%d/%Y")
    )
    frame["seen"] = [f"{m}/{1 + i % 12:02d}/2015" for i, m in enumerate(frame["seen"].str[:2])]
    plan = plan_of(frame, "kind")
    assert plan.date_columns == {"seen": "%d/%m/%Y"}
    (note,) = [n for n in plan.notes if "'seen'" in n]
    assert (
        "day first was chosen" in note and "'%m/%d/%Y'" in note and "parameters_convert.yml" in note
    )


@pytest.mark.parametrize(
    "values",
    [
        [f"B{i:04d}" for i in range(60)],  # codes
        [f"2015-01-{1 + i % 28:02d}" if i else "soon" for i in range(60)],  # one is no date
        [f"{2000 + i % 20}" for i in range(60)],  # years: numbers
        [f"2015-{13 + i % 5}-{1 + i:02d}" for i in range(60)],  # no month 13 to 17
        [f"ring {i}-{i % 12}-{i % 28} of the north colony" for i in range(60)],  # text
    ],
)
def test_codes_numbers_and_text_are_not_dates(values):
    plan = plan_of(birds(60).assign(tag=values), "kind")
    assert roles(plan)["tag"] != "date" and plan.date_columns == {}


def test_a_text_task_ignores_its_date_columns():
    plan = plan_of(messages().assign(sent=WHEN.strftime("%Y-%m-%d")), "kind")
    role = next(r for r in plan.roles if r.column == "sent")
    assert role.role == "ignored" and role.reason.startswith("dates, format %Y-%m-%d; a text task")
    assert plan.date_columns == {}


def test_two_text_like_columns_are_refused_unless_text_is_given():
    frame = messages()
    frame["subject"] = frame["message"].str.upper() + " again"
    with pytest.raises(
        ScaffoldError, match="two text-like columns, 'message' and 'subject': pass --text"
    ):
        plan_of(frame, "kind")
    plan = plan_of(frame, "kind", text="subject")
    assert plan.text_column == "subject" and roles(plan)["message"] == "ignored"


@pytest.mark.parametrize(
    ("change", "kwargs", "message"),
    [
        (None, {"label": "category"}, r"no column 'category' \(--label\).*msg_id, message"),
        (None, {"label": "kind", "text": "body"}, r"no column 'body' \(--text\)"),
        ("one_class", {"label": "kind"}, r"one value only \('spam'\)"),
        ("no_features", {"label": "kind"}, "no usable feature column"),
        (None, {"label": "message", "task_type": "regression"}, "is not numeric"),
        (None, {"label": "msg_id", "task_type": "classification", "text": "kind"}, None),
        (None, {"label": "kind", "id_column": "channel"}, "cannot be the id"),
    ],
)
def test_ambiguous_cases_are_refused(change, kwargs, message):
    frame = messages()
    if change == "one_class":
        frame["kind"] = "spam"
    if change == "no_features":
        frame = frame[["msg_id", "kind"]]
    label = kwargs.pop("label")
    if message is None:  # a label with as many classes as rows, passed with --type: allowed
        plan_of(frame, label, **kwargs)
        return
    with pytest.raises(ScaffoldError, match=message):
        plan_of(frame, label, **kwargs)


def test_a_label_with_a_value_per_row_asks_whether_it_is_the_label():
    frame = messages()
    frame["code"] = [f"c{i}" for i in range(len(frame))]
    with pytest.raises(ScaffoldError, match="is it the label"):
        plan_of(frame, "code")


EXPORT = {"sep": ";", "decimal": ",", "encoding": "cp1252"}  # Excel's on a European Windows


def exported(frame: pd.DataFrame, path: Path, **kwargs) -> None:
    """``frame`` written as a spreadsheet or database export would (no index)."""
    frame.to_csv(path, index=False, **kwargs)


def notes(n: int = 40) -> pd.DataFrame:
    """Text with quotes, separators and a line break in it, numbers with fractions, é."""
    frame = birds(n)[["bird_id", "bill", "kind"]].copy()
    frame["kind"] = frame["kind"].replace({"Gentoo": "Gentoo é"})
    frame["note"] = [
        ['said "hi", then left', '"quoted" start', "a; b | c", "two\nlines", "plain"][i % 5]
        for i in range(n)
    ]
    return frame


@pytest.mark.parametrize(
    ("export", "options"),
    [
        ({}, {}),  # quoted fields with commas and a line break: pandas' defaults
        ({"encoding": "utf-8-sig"}, {}),  # a BOM is UTF-8
        (EXPORT, EXPORT),
        ({"sep": "\t"}, {"sep": "\t"}),
        ({"sep": "|", "encoding": "latin-1"}, {"sep": "|", "encoding": "cp1252"}),
    ],
)
def test_read_options_read_the_export_back_as_written(tmp_path, export, options):
    frame = notes()
    exported(frame, tmp_path / "t.csv", **export)
    assert scaffold.read_options(tmp_path / "t.csv") == options
    pd.testing.assert_frame_equal(scaffold.read_table(tmp_path / "t.csv"), frame)


@pytest.mark.parametrize(
    ("export", "options"),
    [({}, {"thousands": ","}), ({"sep": ";"}, {"sep": ";", "decimal": ",", "thousands": "."})],
)
def test_numbers_with_grouped_thousands_are_numbers(tmp_path, export, options):
    frame = birds(40)[["bird_id", "body_mass_g", "kind"]].dropna()
    written = frame.assign(body_mass_g=frame["body_mass_g"].map("{:,.1f}".format))
    if options.get("decimal") == ",":  # 4,512.5 -> 4.512,5
        swap = str.maketrans(",.", ".,")
        written["body_mass_g"] = written["body_mass_g"].str.translate(swap)
    exported(written, tmp_path / "t.csv", **export)
    assert scaffold.read_options(tmp_path / "t.csv") == options
    read = scaffold.read_table(tmp_path / "t.csv")
    np.testing.assert_allclose(read["body_mass_g"], frame["body_mass_g"].round(1))


def test_quotes_are_text_where_they_would_join_the_lines_of_a_tab_separated_export(tmp_path):
    frame = notes().assign(note=lambda f: f["note"].str.replace("\n", " "))
    frame.loc[3, "note"] = '"stray opening quote'  # a quoting reader runs on to the next '"'
    path = tmp_path / "t.tsv"
    path.write_text(
        "\n".join("\t".join(map(str, row)) for row in [frame.columns, *frame.to_numpy()]) + "\n"
    )
    assert len(pd.read_csv(path, sep="\t")) < len(frame)  # pandas' defaults lose rows
    assert scaffold.read_options(path) == {"sep": "\t", "quoting": csv.QUOTE_NONE}
    pd.testing.assert_frame_equal(scaffold.read_table(path), frame)


@pytest.mark.parametrize(("content", "message"), [("", "is empty"), ("a,b\n", "has no rows")])
def test_an_empty_file_is_refused(tmp_path, content, message):
    (tmp_path / "t.csv").write_text(content)
    with pytest.raises(ScaffoldError, match=message):
        scaffold.read_table(tmp_path / "t.csv")


def test_names_are_sanitised_or_refused():
    assert scaffold.sanitise_name("My Tickets (2024)") == "My_Tickets_2024"
    assert scaffold.sanitise_name("__") == "task"
    with pytest.raises(ScaffoldError, match="not a valid name"):
        scaffold.check_name("my tickets", "task name")


def test_yaml_scalars_read_back_as_written_by_kedro_too(tmp_path):
    from kedro.config import OmegaConfigLoader

    labels = ["yes", "No", "1", "1e5", "null", "DESC:def", "a b", "x'y", "é"]
    data = {"task": {"labels": labels, "tolerance": 1e-5, "none": None, "flag": True}}
    text = scaffold.to_yaml(data)
    assert yaml.safe_load(text) == data
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "parameters.yml").write_text(text)
    assert (
        OmegaConfigLoader(str(tmp_path), base_env="base", default_run_env="base")["parameters"]
        == data
    )


# --------------------------------------------------------------------------------- the command
@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A bare project root: the real conf/base and conf/penguins, an empty data/01_raw."""
    root = tmp_path / "project"
    for env in ("base", "penguins"):
        shutil.copytree(PROJECT_ROOT / "conf" / env, root / "conf" / env)
    (root / "data" / "01_raw").mkdir(parents=True)
    monkeypatch.chdir(root)
    return root


def env_files(root: Path, env: str) -> dict[str, str]:
    folder = root / "conf" / env
    return {p.name: p.read_text() for p in sorted(folder.iterdir())}


def test_main_writes_a_complete_env_that_kedro_loads_and_validates(project, capsys):
    birds().to_csv(project / "data/01_raw/birds.csv", index=False)
    assert scaffold.main(["data/01_raw/birds.csv", "--label", "kind"]) == 0
    out = capsys.readouterr().out
    assert "task         birds (from the file name); env conf/birds/" in out
    assert "'site': central, east, west (3 distinct short values; sorted)" in out
    assert "missing_features: keep" in out and "kedro run --pipelines=train --env=birds" in out
    files = env_files(project, "birds")
    assert sorted(files) == [
        "globals.yml",
        "parameters_clean.yml",
        "parameters_convert.yml",
        "parameters_fit.yml",
        "parameters_package.yml",
        "parameters_predict.yml",
    ]
    assert all(t.startswith("# Written by `reprotrain new-task`") for t in files.values())
    penguins_fit = (project / "conf/penguins/parameters_fit.yml").read_text()
    assert files["parameters_fit.yml"].split("\n", 1)[1] == penguins_fit  # byte for byte
    # as `kedro run --env=birds` loads it, every group validates
    conf = project / "conf"
    task = load_parameters("task", conf, "birds")
    assert task == {
        "name": "birds",
        "raw_file": "data/01_raw/birds.csv",
        "type": "classification",
        "labels": ["Adelie", "Chinstrap", "Gentoo"],
        "model_checkpoint": None,
        "max_length": 64,
        "seed": 42,
    }
    for step in ("clean", "convert", "fit", "package", "predict"):
        parse(step, load_parameters(step, conf, "birds"), task)
    clean = load_parameters("clean", conf, "birds")
    assert clean["id_column"] == "bird_id" and clean["categorical_columns"] == ["site", "sex_"]
    assert clean["drop_duplicates"] is False  # identical rows of a table are observations
    convert = load_parameters("convert", conf, "birds")
    assert list(convert["categories"]) == clean["categorical_columns"]
    package = load_parameters("package", conf, "birds")
    assert package["describes"] == package["name"] == "birds"
    assert package["intended_use"].startswith("Classifies a row into Adelie, Chinstrap, Gentoo")
    assert package["limitations"].startswith("Trained on 150 rows of data/01_raw/birds.csv;")
    assert load_parameters("predict", conf, "birds") == {
        "text_column": None,
        "batch_size": 256,
        "log_every_s": 30,
        "backend": "torch",
    }
    assert not [p for p in conf.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_a_text_env_takes_the_checkpoint_from_conf_base(project, capsys):
    messages().to_csv(project / "data/01_raw/inbox.csv", index=False)
    assert scaffold.main(["data/01_raw/inbox.csv", "--label", "kind", "--env", "mail"]) == 0
    assert "'message': long, mostly distinct strings" in capsys.readouterr().out
    conf = project / "conf"
    base = yaml.safe_load((conf / "base/globals.yml").read_text())["task"]
    task = load_parameters("task", conf, "mail")
    assert (task["name"], task["model_checkpoint"], task["max_length"]) == (
        "inbox",
        base["model_checkpoint"],
        base["max_length"],
    )
    assert "parameters_fit.yml" not in env_files(project, "mail")  # conf/base's transformer
    assert load_parameters("convert", conf, "mail")["batch_size"] == 1000
    assert load_parameters("predict", conf, "mail") == {
        "text_column": "message",
        "batch_size": 32,
        "log_every_s": 30,
        "backend": "torch",
    }
    assert load_parameters("package", conf, "mail")["intended_use"] == (
        "Classifies the text column 'message' into ham, promo, spam."
    )
    assert scaffold.main(["data/01_raw/inbox.csv", "--label", "kind", "--env", "mail2"]) == 0
    assert "conf/mail/ names task 'inbox' too" in capsys.readouterr().out  # same data folders


def test_a_regression_env_trains_with_mse(project):
    birds().to_parquet(project / "data/01_raw/mass.parquet")
    assert scaffold.main(["data/01_raw/mass.parquet", "--label", "body_mass_g"]) == 0
    files = env_files(project, "mass")
    assert "loss: mse" in files["parameters_fit.yml"]
    assert "pandas.ParquetDataset" in files["catalog.yml"]
    fit = load_parameters("fit", project / "conf", "mass")
    task = load_parameters("task", project / "conf", "mass")
    assert (fit["loss"], task["type"], fit["model"]["family"]) == ("mse", "regression", "mlp")
    parse("fit", fit, task)


def test_refusals_exit_2_and_write_nothing(project, capsys):
    messages().to_csv(project / "data/01_raw/inbox.csv", index=False)
    before = sorted(p.name for p in (project / "conf").iterdir())
    assert scaffold.main(["data/01_raw/inbox.csv", "--label", "category"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("new-task: no column 'category'") and err.count("\n") == 1
    assert scaffold.main(["data/01_raw/nothing.csv", "--label", "kind"]) == 2
    assert scaffold.main(["data/01_raw/inbox.csv", "--label", "kind", "--env", "base"]) == 2
    assert sorted(p.name for p in (project / "conf").iterdir()) == before


def test_an_existing_env_is_refused_unless_forced(project, capsys):
    messages().to_csv(project / "data/01_raw/inbox.csv", index=False)
    (project / "conf/inbox").mkdir()
    (project / "conf/inbox/stale.yml").write_text("x: 1\n")
    assert scaffold.main(["data/01_raw/inbox.csv", "--label", "kind"]) == 2
    assert "conf/inbox/ exists already" in capsys.readouterr().err
    assert os.listdir(project / "conf/inbox") == ["stale.yml"]
    assert scaffold.main(["data/01_raw/inbox.csv", "--label", "kind", "--force"]) == 0
    assert "stale.yml" not in os.listdir(project / "conf/inbox")  # replaced as a whole


def test_a_failed_write_leaves_no_half_written_env(project, monkeypatch):
    messages().to_csv(project / "data/01_raw/inbox.csv", index=False)
    calls = []

    def fail(self, text, encoding=None):
        calls.append(self.name)
        if len(calls) == 3:
            raise OSError("disk full")
        return Path.write_bytes(self, text.encode())

    monkeypatch.setattr(Path, "write_text", fail)
    with pytest.raises(OSError, match="disk full"):
        scaffold.main(["data/01_raw/inbox.csv", "--label", "kind"])
    assert sorted(p.name for p in (project / "conf").iterdir()) == ["base", "penguins"]


def test_outside_a_project_it_says_where_to_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert scaffold.main(["t.csv", "--label", "y"]) == 2
    assert "no conf/base" in capsys.readouterr().err


def test_python_m_reprotrain_new_task_dispatches_without_torch(project):
    messages().to_csv(project / "data/01_raw/inbox.csv", index=False)
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}
    command = [sys.executable, "-X", "importtime", "-m", "reprotrain", "new-task"]
    done = subprocess.run(
        [*command, "data/01_raw/inbox.csv", "--label", "kind"],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("new-task: data/01_raw/inbox.csv: 60 rows, 4 columns\n")
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert not {"torch", "transformers", "lightning"} & imported
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "reprotrain",
            "new-task",
            "data/01_raw/inbox.csv",
            "--label",
            "kind",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert again.returncode == 2 and again.stdout == ""
    assert again.stderr == (
        "new-task: conf/inbox/ exists already: replace it (--force) or choose another --env?\n"
    )


# --------------------------------------------------------------------------------- end to end
def package_info(root: Path, name: str) -> dict:
    folder = root / "data/06_models" / name / "package"
    assert (folder / "manifest.json").is_file()
    return json.loads((folder / "package.json").read_text())


@pytest.mark.slow
def test_scaffolded_envs_train_and_package_with_no_edits(scratch_project, capsys):
    root = scratch_project.root
    messages(120).to_csv(root / "data/01_raw/inbox.csv", index=False)
    birds().to_csv(root / "data/01_raw/birds.csv", index=False)
    assert scaffold.main(["data/01_raw/inbox.csv", "--label", "kind"]) == 0
    assert scaffold.main(["data/01_raw/birds.csv", "--label", "kind", "--name", "flock"]) == 0
    capsys.readouterr()

    scratch_project.run("train", env="inbox")
    info = package_info(root, "inbox")
    assert (info["task"], info["labels"]) == ("classification", ["ham", "promo", "spam"])

    scratch_project.run("train", env="flock")  # the env defaults to the task name
    info = package_info(root, "flock")
    assert (info["task"], info["labels"]) == ("classification", ["Adelie", "Chinstrap", "Gentoo"])
    assert info["preprocessing"]["categories"] == {
        "site": ["central", "east", "west"],
        "sex_": ["F", "M"],
    }
    card = (root / "data/06_models/flock/package/README.md").read_text()
    assert "Classifies a row into Adelie, Chinstrap, Gentoo" in card


@pytest.mark.slow
def test_a_scaffolded_parquet_regression_trains_and_packages(scratch_project):
    root = scratch_project.root
    birds().to_parquet(root / "data/01_raw/mass.parquet")
    assert scaffold.main(["data/01_raw/mass.parquet", "--label", "body_mass_g"]) == 0
    scratch_project.run("train", env="mass")
    metrics = json.loads((root / "data/08_reporting/mass/metrics.json").read_text())
    assert "mse" in metrics and set(metrics["baselines"]) == {"ridge", "gradient_boosting", "mean"}
    info = package_info(root, "mass")
    assert (info["task"], info["labels"]) == ("regression", None)


def test_an_export_is_read_by_the_catalog_as_new_task_read_it(scratch_project, capsys):
    root = scratch_project.root
    frame = birds().assign(kind=lambda f: f["kind"].replace({"Gentoo": "Gentoo é"}))
    exported(frame, root / "data/01_raw/birds.csv", **EXPORT)
    assert scaffold.main(["data/01_raw/birds.csv", "--label", "kind"]) == 0
    assert "file         ';'-separated, decimal comma, cp1252" in capsys.readouterr().out
    assert set(load_parameters("task", root / "conf", "birds")["labels"]) == set(frame["kind"])
    scratch_project.run("clean", env="birds")
    clean = pd.read_parquet(root / "data/02_intermediate/birds/clean_table.parquet")
    assert len(clean) == len(frame)  # every row kept: the labels and numbers read as written
    pd.testing.assert_series_equal(clean["bill"], frame["bill"], check_index=False)


@pytest.mark.slow
def test_an_exported_table_trains_and_predicts_new_rows_from_the_same_export(scratch_project):
    root = scratch_project.root
    exported(birds(), root / "data/01_raw/birds.csv", **EXPORT)
    assert scaffold.main(["data/01_raw/birds.csv", "--label", "kind"]) == 0
    scratch_project.write_params("fit", {"trainer": {"max_epochs": 2, "min_steps": 0}}, "birds")
    scratch_project.run("train", env="birds")
    new_rows = birds(30).drop(columns="kind")
    exported(new_rows, root / "data/01_raw/birds_predict_input.csv", **EXPORT)
    scratch_project.run("predict", env="birds")
    out = pd.read_csv(root / "data/07_model_output/birds/predictions.csv")
    assert out["bird_id"].tolist() == new_rows["bird_id"].tolist()
    assert out["predicted_label"].isin(["Adelie", "Chinstrap", "Gentoo"]).all()


def seasons(n: int = 240, seed: int = 0) -> pd.DataFrame:
    """A table whose label is the season of its date (written 31.12.2015) and a noise number."""
    rng = np.random.default_rng(seed)
    days = pd.Timestamp("2014-01-01") + pd.to_timedelta(rng.permutation(730)[:n], unit="D")
    season = np.array(["winter", "spring", "summer", "autumn"])[(days.month.to_numpy() % 12) // 3]
    return pd.DataFrame(
        {"day": days.strftime("%d.%m.%Y"), "noise": rng.normal(size=n).round(3), "season": season}
    )


@pytest.mark.slow
def test_a_date_column_trains_packages_and_predicts_from_raw_dates(scratch_project, capsys):
    from reprotrain.packaging import load_package

    root = scratch_project.root
    seasons().to_csv(root / "data/01_raw/seasons.csv", index=False)
    assert scaffold.main(["data/01_raw/seasons.csv", "--label", "season"]) == 0
    out = capsys.readouterr().out
    assert (
        "date         'day': dates, format %d.%m.%Y -> .time, .month, .day_of_week, .day_of_year"
        in out
    )
    scratch_project.write_params("fit", {"trainer": {"max_epochs": 2, "min_steps": 0}}, "seasons")
    scratch_project.run("train", env="seasons")  # package verification included

    folder = root / "data/06_models/seasons/package"
    info = package_info(root, "seasons")
    assert info["preprocessing"]["date_columns"] == {"day": "%d.%m.%Y"}
    names = ["noise", "day.time", "day.month", "day.day_of_week", "day.day_of_year"]
    assert info["architecture"]["feature_names"] == names
    assert "`day` read with format `%d.%m.%Y`" in (folder / "README.md").read_text()
    package = load_package(folder)
    rows = pd.DataFrame({"day": ["15.01.2016", "15.07.2016", "NA"], "noise": [0.0, 0.0, 0.0]})
    preds = package.predict(rows)
    assert len(preds) == 3 and preds["label"].isin(["autumn", "spring", "summer", "winter"]).all()
    x = package.features(rows)
    assert x[0, 1:].tolist() == pytest.approx([2016 + 14 / 366, 1, 4, 15], abs=1e-3)
    assert np.isnan(x[2, 1:]).all()  # a missing date: imputed inside the model
    with pytest.raises(Exception, match=r"date column 'day'.*'%d.%m.%Y'.*2016-01-15"):
        package.predict(rows.assign(day=["2016-01-15", "15.07.2016", "NA"]))

    new_rows = seasons(40, seed=1).drop(columns="season")
    new_rows.loc[0, "day"] = "NA"
    new_rows.to_csv(root / "data/01_raw/seasons_predict_input.csv", index=False)
    scratch_project.run("predict", env="seasons")
    out = pd.read_csv(root / "data/07_model_output/seasons/predictions.csv", keep_default_na=False)
    assert out["day"].tolist() == new_rows["day"].tolist()
    assert out["predicted_label"].isin(["autumn", "spring", "summer", "winter"]).all()


def test_identical_rows_of_a_table_stay_and_repeated_texts_go(scratch_project, capsys):
    """Two passengers of the same class, age and sex are two rows; a repeated text is a leak."""
    root = scratch_project.root
    table = birds(40)[["site", "sex_", "kind"]].dropna()
    exported(pd.concat([table] * 3), root / "data/01_raw/crowd.csv")
    assert scaffold.main(["data/01_raw/crowd.csv", "--label", "kind"]) == 0
    inbox = messages(60)
    exported(
        pd.concat([inbox, inbox.assign(msg_id=inbox["msg_id"] + 100)]),
        root / "data/01_raw/inbox.csv",
    )
    assert scaffold.main(["data/01_raw/inbox.csv", "--label", "kind"]) == 0
    capsys.readouterr()
    for env in ("crowd", "inbox"):
        scratch_project.run("clean", env=env)
    crowd = json.loads((root / "data/08_reporting/crowd/clean_report.json").read_text())
    assert crowd["rows_out"] == crowd["rows_in"] == 3 * len(table)
    texts = json.loads((root / "data/08_reporting/inbox/clean_report.json").read_text())
    assert texts["removed"]["duplicate"] == len(inbox)


def test_a_feature_with_a_reserved_name_is_ignored_and_says_so():
    frame = birds(60).rename(columns={"site": "group"})
    plan = plan_of(frame, "kind")
    assert "group" not in plan.categories
    assert roles(plan)["group"] == "ignored"
    reason = next(r.reason for r in plan.roles if r.column == "group")
    assert "its name is one the pipeline reserves: rename the column" in reason


def test_numeric_labels_with_NA_are_named_as_clean_reads_them(scratch_project, capsys):
    """R writes a missing class code as NA: the labels are then the codes as written."""
    root = scratch_project.root
    frame = birds(60)[["bill", "body_mass_g", "kind"]]
    frame["kind"] = frame["kind"].map({"Adelie": "1", "Chinstrap": "2", "Gentoo": "10"})
    frame.loc[4, "kind"] = "NA"
    exported(frame, root / "data/01_raw/codes.csv")
    assert scaffold.main(["data/01_raw/codes.csv", "--label", "kind"]) == 0
    out = capsys.readouterr().out
    assert "labels       1, 2, 10, NA (4 distinct values, sorted by value)" in out
    assert "label value(s) 'NA' (1 row) read as class(es)" in out
    scratch_project.run("clean", env="codes")
    report = json.loads((root / "data/08_reporting/codes/clean_report.json").read_text())
    assert report["rows_out"] == len(frame)  # every label is one of task.labels
