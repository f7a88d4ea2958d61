"""load_table: schema of the real ARFFs, CSV reading, targets, every user error, missing values."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from farm.data.tabular import Column, load_table
from farm.infra.errors import DataError

GERMAN_NOMINAL = {
    "checking_status": ("<0", "0<=X<200", ">=200", "no checking"),
    "credit_history": ("no credits/all paid", "all paid", "existing paid", "delayed previously",
                       "critical/other existing credit"),
    "purpose": ("new car", "used car", "furniture/equipment", "radio/tv", "domestic appliance",
                "repairs", "education", "vacation", "retraining", "business", "other"),
    "savings_status": ("<100", "100<=X<500", "500<=X<1000", ">=1000", "no known savings"),
    "employment": ("unemployed", "<1", "1<=X<4", "4<=X<7", ">=7"),
    "personal_status": ("male div/sep", "female div/dep/mar", "male single", "male mar/wid",
                        "female single"),
    "other_parties": ("none", "co applicant", "guarantor"),
    "property_magnitude": ("real estate", "life insurance", "car", "no known property"),
    "other_payment_plans": ("bank", "stores", "none"),
    "housing": ("rent", "own", "for free"),
    "job": ("unemp/unskilled non res", "unskilled resident", "skilled",
            "high qualif/self emp/mgmt"),
    "own_telephone": ("none", "yes"),
    "foreign_worker": ("yes", "no"),
    "class": ("good", "bad"),
}
GERMAN_NUMERIC = ["duration", "credit_amount", "installment_commitment", "residence_since", "age",
                  "existing_credits", "num_dependents"]
DIABETES_COLUMNS = ["preg", "plas", "pres", "skin", "insu", "mass", "pedi", "age", "class"]


# ---------------------------------------------------------------- helpers


def assert_exact(left: pd.DataFrame, right: pd.DataFrame) -> None:
    """Frames equal in values (no float tolerance), dtypes, names and order."""
    pd.testing.assert_frame_equal(left, right, check_exact=True)



def german(shared_data: Path) -> Path:
    return shared_data / "german_credit" / "german_credit.arff"


def diabetes(shared_data: Path) -> Path:
    return shared_data / "diabetes" / "diabetes.arff"


def diabetes_csv(shared_data: Path, tmp_path: Path, edit=None, name="diabetes.csv") -> Path:
    """The diabetes frame written as CSV (cells as text), optionally edited first."""
    frame = load_table(diabetes(shared_data)).frame.astype(object)
    if edit is not None:
        edit(frame)
    out = tmp_path / name
    frame.to_csv(out, index=False)
    return out


def arff_with_rows(src: Path, tmp_path: Path, replace: dict[int, str], name="edited.arff") -> Path:
    """Copy an ARFF into tmp_path, replacing data rows (0-based, counted after @data)."""
    lines = src.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().lower() == "@data") + 1
    for row, text in replace.items():
        lines[start + row] = text
    out = tmp_path / name
    out.write_text("\n".join(lines) + "\n")
    return out


def data_rows(src: Path) -> list[str]:
    lines = src.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().lower() == "@data") + 1
    return [line for line in lines[start:] if line.strip() and not line.startswith("%")]


def raises_data_error(path, **kwargs) -> str:
    """Load, expect a DataError; return its message after checking it is one line naming path."""
    with pytest.raises(DataError) as info:
        load_table(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    assert str(path) in message, message
    assert info.value.where == str(path)
    return message


# ---------------------------------------------------------------- the real ARFFs


def test_german_credit_schema(shared_data):
    table = load_table(german(shared_data))
    assert table.frame.shape == (1000, 21)
    assert table.target == "class"
    assert table.dropped_rows == 0 and table.notes == ()
    assert table.path == str(german(shared_data))
    by_name = {c.name: c for c in table.columns}
    assert list(by_name) == list(table.frame.columns)
    assert sorted(table.nominal) == sorted(GERMAN_NOMINAL)
    assert len(table.nominal) == 14 and len(table.numeric) == 7  # 13 nominal features + class
    assert table.numeric == GERMAN_NUMERIC
    for name, categories in GERMAN_NOMINAL.items():
        assert by_name[name].kind == "nominal"
        assert by_name[name].categories == categories, name
        assert table.frame[name].map(type).eq(str).all()
        assert set(table.frame[name]) <= set(categories)
    for name in GERMAN_NUMERIC:
        assert by_name[name] == Column(name, "numeric", integer=True, decimals=0)
        assert table.frame[name].dtype == np.int64
    assert table.frame["credit_amount"].iloc[0] == 1169
    assert table.frame["age"].iloc[0] == 67
    assert table.frame["purpose"].iloc[0] == "radio/tv"
    assert Counter(table.labels) == {"good": 700, "bad": 300}


def test_diabetes_schema(shared_data):
    table = load_table(diabetes(shared_data))
    assert table.frame.shape == (768, 9)
    assert list(table.frame.columns) == DIABETES_COLUMNS
    assert table.target == "class"
    by_name = {c.name: c for c in table.columns}
    for name in ["preg", "plas", "pres", "skin", "insu", "age"]:
        assert by_name[name] == Column(name, "numeric", integer=True, decimals=0)
        assert table.frame[name].dtype == np.int64
    assert by_name["mass"] == Column("mass", "numeric", integer=False, decimals=1)
    assert by_name["pedi"] == Column("pedi", "numeric", integer=False, decimals=3)
    assert table.frame["mass"].dtype == np.float64 and table.frame["pedi"].dtype == np.float64
    assert by_name["class"].kind == "nominal"
    assert by_name["class"].categories == ("tested_negative", "tested_positive")
    assert table.frame.iloc[0]["mass"] == pytest.approx(33.6)
    assert table.frame.iloc[0]["pedi"] == pytest.approx(0.627)
    assert Counter(table.labels) == {"tested_negative": 500, "tested_positive": 268}


def test_diabetes_as_csv_has_the_same_schema(shared_data, tmp_path):
    original = load_table(diabetes(shared_data))
    path = diabetes_csv(shared_data, tmp_path)
    table = load_table(path)
    assert table.path == str(path)
    assert table.columns == original.columns
    assert [(c.kind, c.integer, c.decimals) for c in table.columns] == \
        [(c.kind, c.integer, c.decimals) for c in original.columns]
    assert_exact(table.frame, original.frame)


def test_german_as_csv_keeps_kinds(shared_data, tmp_path):
    original = load_table(german(shared_data))
    path = tmp_path / "german.csv"
    original.frame.to_csv(path, index=False)
    table = load_table(path)
    assert table.nominal == original.nominal
    assert table.numeric == original.numeric
    by_name = {c.name: c for c in table.columns}
    for col in original.columns:
        assert by_name[col.name].kind == col.kind
        assert by_name[col.name].integer == col.integer
        if col.kind == "nominal":
            # Without an ARFF header the categories are the values seen in the file.
            assert set(by_name[col.name].categories) == set(original.frame[col.name])
    assert_exact(table.frame, original.frame)


def test_target_defaults_to_last_column_and_can_be_named(shared_data, tmp_path):
    assert load_table(german(shared_data)).target == "class"
    table = load_table(german(shared_data), target="foreign_worker")
    assert table.target == "foreign_worker"
    assert Counter(table.labels) == Counter(table.frame["foreign_worker"])
    assert set(table.labels) == {"yes", "no"}
    # A numeric column named as target is treated as classes.
    csv = diabetes_csv(shared_data, tmp_path)
    by_preg = load_table(csv, target="preg")
    preg = {c.name: c for c in by_preg.columns}["preg"]
    assert preg.kind == "nominal"
    assert preg.categories[:3] == ("0", "1", "2")  # natural order, not text order
    assert by_preg.frame["preg"].iloc[0] == "6"


def test_tsv_is_read_with_tabs(shared_data, tmp_path):
    frame = load_table(diabetes(shared_data)).frame
    path = tmp_path / "diabetes.tsv"
    frame.to_csv(path, index=False, sep="\t")
    table = load_table(path)
    assert table.frame.shape == (768, 9)
    assert_exact(table.frame, frame)


# ---------------------------------------------------------------- bad inputs


def test_missing_path(tmp_path):
    message = raises_data_error(tmp_path / "nope.arff")
    assert "no such file" in message


def test_directory_is_not_a_table(tmp_path):
    message = raises_data_error(tmp_path)
    assert "not a file" in message


@pytest.mark.parametrize("name", ["table.json", "table.xlsx", "table"])
def test_unsupported_extension(tmp_path, name):
    path = tmp_path / name
    path.write_text("a,b\n1,2\n3,4\n")
    message = raises_data_error(path)
    assert "unsupported table format" in message
    assert ".arff" in message and ".csv" in message


def test_arff_bad_attribute_line(shared_data, tmp_path):
    text = diabetes(shared_data).read_text()
    path = tmp_path / "bad_attr.arff"
    path.write_text(text.replace("@attribute 'plas' numeric", "@attribute 'plas' numerc"))
    message = raises_data_error(path)
    assert "ARFF syntax error" in message
    assert "line 87" in message  # the corrupted @attribute line


def test_arff_row_with_too_many_values(shared_data, tmp_path):
    path = arff_with_rows(diabetes(shared_data), tmp_path,
                          {0: "6,148,72,35,0,33.6,0.627,50,tested_positive,7"})
    message = raises_data_error(path)
    assert "ARFF syntax error" in message
    assert "line 96" in message


def test_arff_value_outside_declared_categories(shared_data, tmp_path):
    path = arff_with_rows(diabetes(shared_data), tmp_path,
                          {2: "8,183,64,0,0,23.3,0.672,32,tested_maybe"})
    message = raises_data_error(path)
    assert "tested_maybe" in message


def test_arff_nominal_feature_outside_categories(shared_data, tmp_path):
    rows = data_rows(german(shared_data))
    path = arff_with_rows(german(shared_data), tmp_path,
                          {0: rows[0].replace("radio/tv", "spaceship", 1)})
    message = raises_data_error(path)
    assert "spaceship" in message


def test_unknown_target_lists_columns(shared_data, tmp_path):
    path = diabetes_csv(shared_data, tmp_path)
    message = raises_data_error(path, target="outcome")
    assert "'outcome'" in message
    for name in DIABETES_COLUMNS:
        assert name in message
    message = raises_data_error(german(shared_data), target="klass")
    assert "checking_status" in message and "..." in message  # 21 columns: shortened list


def test_text_in_numeric_csv_column(shared_data, tmp_path):
    def edit(frame):
        frame.loc[5, "plas"] = "abc"

    path = diabetes_csv(shared_data, tmp_path, edit)
    message = raises_data_error(path)
    assert "'plas'" in message
    assert "row 6" in message  # the 6th data row
    assert "'abc'" in message


def test_text_in_numeric_column_row_counts_dropped_rows(shared_data, tmp_path):
    def edit(frame):
        frame.loc[1, "pres"] = ""      # data row 2: missing, dropped by policy 'drop'
        frame.loc[5, "plas"] = "abc"   # data row 6 of the file

    path = diabetes_csv(shared_data, tmp_path, edit)
    message = raises_data_error(path, missing="drop")
    assert "data row 6 " in message


@pytest.mark.parametrize("name", ["empty.csv", "empty.arff"])
def test_empty_file(tmp_path, name):
    path = tmp_path / name
    path.write_text("")
    raises_data_error(path)


def test_csv_with_header_only(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("a,b,class\n")
    message = raises_data_error(path)
    assert "no data rows" in message


def test_single_class_target(shared_data, tmp_path):
    def edit(frame):
        frame["class"] = "tested_negative"

    path = diabetes_csv(shared_data, tmp_path, edit)
    message = raises_data_error(path)
    assert "single class" in message and "'class'" in message


def test_single_column_csv(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("a\n" + "\n".join(str(i) for i in range(20)) + "\n")
    message = raises_data_error(path)
    assert "2 columns" in message


def test_unknown_missing_policy(shared_data, tmp_path):
    path = diabetes_csv(shared_data, tmp_path)
    message = raises_data_error(path, missing="guess")
    assert "'guess'" in message
    for policy in ("drop", "impute", "error"):
        assert policy in message


# ---------------------------------------------------------------- missing values

# diabetes data rows 0, 2 and 4 get a missing cell: plas, mass and the target.
ARFF_MISSING = {
    0: "6,?,72,35,0,33.6,0.627,50,tested_positive",
    2: "8,183,64,0,0,?,0.672,32,tested_positive",
    4: "0,137,40,35,168,43.1,2.288,33,?",
}


def _missing_arff(shared_data, tmp_path) -> Path:
    rows = data_rows(diabetes(shared_data))
    assert rows[4] == "0,137,40,35,168,43.1,2.288,33,tested_positive"
    return arff_with_rows(diabetes(shared_data), tmp_path, ARFF_MISSING, "missing.arff")


def _missing_csv(shared_data, tmp_path) -> Path:
    def edit(frame):
        frame.loc[0, "plas"] = ""
        frame.loc[2, "mass"] = ""
        frame.loc[4, "class"] = ""

    return diabetes_csv(shared_data, tmp_path, edit, "missing.csv")


@pytest.fixture(params=["arff", "csv"])
def missing_table(request, shared_data, tmp_path) -> Path:
    return (_missing_arff if request.param == "arff" else _missing_csv)(shared_data, tmp_path)


def test_missing_drop(missing_table, shared_data):
    full = load_table(diabetes(shared_data)).frame
    table = load_table(missing_table, missing="drop")
    assert table.dropped_rows == 3
    assert len(table.frame) == 765
    assert any("dropped 3 of 768" in note for note in table.notes)
    expected = full.drop(index=[0, 2, 4]).reset_index(drop=True)
    assert_exact(table.frame, expected)
    assert {c.name: c for c in table.columns}["plas"].integer


def test_missing_impute(missing_table, shared_data):
    full = load_table(diabetes(shared_data)).frame
    table = load_table(missing_table, missing="impute")
    assert table.dropped_rows == 1  # only the row with a missing target
    assert len(table.frame) == 767
    assert any("imputed 3 missing cells" in note for note in table.notes)
    kept = full.drop(index=[4]).reset_index(drop=True)
    plas_median = np.median(full["plas"].drop(index=[0, 4]))
    mass_median = np.median(full["mass"].drop(index=[2, 4]))
    assert table.frame.loc[0, "plas"] == plas_median == 117
    assert table.frame.loc[2, "mass"] == pytest.approx(mass_median)
    # every other cell is untouched
    expected = kept.copy()
    expected.loc[0, "plas"] = 117
    expected.loc[2, "mass"] = mass_median
    assert_exact(table.frame, expected)


def test_missing_impute_nominal_gets_mode(shared_data, tmp_path):
    src = german(shared_data)
    rows = data_rows(src)
    assert ",radio/tv," in rows[0] and ",education," in rows[2]
    path = arff_with_rows(src, tmp_path, {0: rows[0].replace(",radio/tv,", ",?,", 1),
                                          2: rows[2].replace(",education,", ",?,", 1)})
    full = load_table(src).frame
    mode, _ = Counter(full["purpose"].drop(index=[0, 2])).most_common(1)[0]
    assert mode == "radio/tv"
    table = load_table(path, missing="impute")
    assert table.dropped_rows == 0 and len(table.frame) == 1000
    assert table.frame.loc[0, "purpose"] == mode
    assert table.frame.loc[2, "purpose"] == mode
    assert {c.name: c for c in table.columns}["purpose"].categories == GERMAN_NOMINAL["purpose"]
    dropped = load_table(path, missing="drop")
    assert dropped.dropped_rows == 2 and len(dropped.frame) == 998


def test_missing_impute_csv_nominal_gets_mode(tmp_path):
    rows = ["colour,size,label"]
    colours = ["red", "red", "red", "blue", "green", "", "blue", "red", "", "green", "red", "blue"]
    for i, colour in enumerate(colours):
        rows.append(f"{colour},{i},{'yes' if i % 2 else 'no'}")
    path = tmp_path / "colours.csv"
    path.write_text("\n".join(rows) + "\n")
    table = load_table(path, missing="impute")
    assert table.frame["colour"].tolist()[5] == "red"
    assert table.frame["colour"].tolist()[8] == "red"
    assert {c.name: c for c in table.columns}["colour"].categories == ("blue", "green", "red")


def test_impute_keeps_integer_column_integer(tmp_path):
    rows = ["a,b,y"] + [f"{i},{i % 3},{'p' if i % 2 else 'q'}" for i in range(1, 11)]
    rows += [",1,p", ",2,q"]  # two missing cells in a column of integers 1..10: median 5.5
    path = tmp_path / "ints.csv"
    path.write_text("\n".join(rows) + "\n")
    table = load_table(path, missing="impute")
    assert {c.name: c for c in table.columns}["a"].integer
    assert table.frame["a"].dtype == np.int64


def test_missing_error_names_column_and_row(missing_table):
    message = raises_data_error(missing_table, missing="error")
    assert "'plas'" in message
    assert "data row 1 " in message


def test_missing_error_later_row(shared_data, tmp_path):
    def edit(frame):
        frame.loc[9, "skin"] = ""

    path = diabetes_csv(shared_data, tmp_path, edit)
    message = raises_data_error(path, missing="error")
    assert "'skin'" in message and "data row 10 " in message
    assert load_table(path, missing="drop").dropped_rows == 1


def test_no_missing_values_no_notes(shared_data, tmp_path):
    for policy in ("drop", "impute", "error"):
        table = load_table(diabetes(shared_data), missing=policy)
        assert table.dropped_rows == 0 and table.notes == ()
        assert len(table.frame) == 768


def test_too_few_rows_left_after_drop(tmp_path):
    rows = ["a,b,y"] + [f"{i},{'' if i % 2 else i},{'p' if i % 3 else 'q'}" for i in range(12)]
    path = tmp_path / "sparse.csv"
    path.write_text("\n".join(rows) + "\n")
    message = raises_data_error(path, missing="drop")
    assert "rows left" in message


def test_shared_data_is_untouched(shared_data, tmp_path):
    """Reading never writes: the copy in tmp_path loads the same as the original."""
    copy = tmp_path / "copy.arff"
    shutil.copy(diabetes(shared_data), copy)
    assert_exact(load_table(copy).frame, load_table(diabetes(shared_data)).frame)
