"""UCR-layout table loader: formats, missing values, clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from pimc_core.errors import InputError
from pimc_core.io.tables import load_series_table, write_series_table


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_tsv_with_missing_values(tmp_path: Path) -> None:
    p = _write(tmp_path / "a.tsv", "1\t0.1\t0.2\t0.3\n2\t0.4\t\tNaN\n1\t?\t0.5\t0.6\n")
    X, y = load_series_table(p)
    assert X.dtype == np.float32 and X.shape == (3, 3)
    assert y.dtype == np.int64 and y.tolist() == [1, 2, 1]
    assert np.isnan(X[1, 1]) and np.isnan(X[1, 2]) and np.isnan(X[2, 0])
    assert X[0, 2] == pytest.approx(0.3)


def test_csv_and_sniffed_delimiters(tmp_path: Path) -> None:
    X, y = load_series_table(_write(tmp_path / "a.csv", "3, 1.0, 2.0\n4, 3.0, \n"))
    assert X.shape == (2, 2) and y.tolist() == [3, 4] and np.isnan(X[1, 1])
    X, y = load_series_table(_write(tmp_path / "a.txt", "  1.0000000e+00  -5.18e-01  2.5\n  2.0  1  2\n"))
    assert X.shape == (2, 2) and y.tolist() == [1, 2]
    X, _ = load_series_table(_write(tmp_path / "b.dat", "1\t5\t6\n"))
    assert X.tolist() == [[5.0, 6.0]]


def test_float_and_string_labels(tmp_path: Path) -> None:
    _, y = load_series_table(_write(tmp_path / "f.tsv", "1.5\t1\t2\n2\t3\t4\n"))
    assert y.dtype == np.float64
    _, y = load_series_table(_write(tmp_path / "s.tsv", "wheat\t1\t2\nmaize\t3\t4\n"))
    assert y.tolist() == ["wheat", "maize"]


def test_round_trip(tmp_path: Path) -> None:
    X = np.array([[0.1, np.nan, 0.3], [1.0, 2.0, -3.5]], dtype=np.float32)
    write_series_table(tmp_path / "r.tsv", X, np.array([2, 7]))
    X2, y2 = load_series_table(tmp_path / "r.tsv")
    np.testing.assert_array_equal(np.isnan(X2), np.isnan(X))
    np.testing.assert_allclose(np.nan_to_num(X2), np.nan_to_num(X))
    assert y2.tolist() == [2, 7]


def test_ragged_row_names_file_and_line(tmp_path: Path) -> None:
    p = _write(tmp_path / "rag.tsv", "1\t0.1\t0.2\n\n2\t0.3\n")
    with pytest.raises(InputError, match=r"rag\.tsv, line 3: ragged row with 2 fields.*line 1 has 3"):
        load_series_table(p)


def test_non_numeric_value_names_line_and_field(tmp_path: Path) -> None:
    p = _write(tmp_path / "bad.csv", "1,0.1,0.2\n2,0.3,abc\n")
    with pytest.raises(InputError, match=r"bad\.csv, line 2, field 3: non-numeric value 'abc'"):
        load_series_table(p)


def test_empty_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"empty\.tsv is empty"):
        load_series_table(_write(tmp_path / "empty.tsv", "\n  \n"))
    with pytest.raises(InputError, match="not found"):
        load_series_table(tmp_path / "nope.tsv")
    with pytest.raises(InputError, match="label and at least one value"):
        load_series_table(_write(tmp_path / "one.tsv", "1\n2\n"))
    with pytest.raises(InputError, match="missing class label"):
        load_series_table(_write(tmp_path / "nolabel.tsv", "1\t2\t3\n\t4\t5\n"))


@pytest.mark.parametrize(
    "text, what",
    [
        ("1\t0.1\t0.2\n2\t0.3\tinf\n", "infinite value 'inf'"),
        ("1\t0.1\t0.2\n2\t-inf\t0.3\n", "infinite value '-inf'"),
        ("1\t0.1\t0.2\n2\t?\tInfinity\n", "infinite value 'Infinity'"),  # beside a missing value
        ("1\t0.1\t0.2\n2\t0.3\t1e39\n", "value beyond the float32 range '1e39'"),
    ],
)
def test_infinite_values_are_refused_naming_file_line_and_field(tmp_path: Path, text: str, what: str) -> None:
    p = _write(tmp_path / "inf.tsv", text)
    with pytest.raises(InputError) as err:
        load_series_table(p)
    msg = str(err.value)
    assert "\n" not in msg
    field = 3 if "-inf" not in text else 2
    assert re.match(rf"{re.escape(str(p))}, line 2, field {field}: {re.escape(what)}", msg), msg


def test_nan_stays_a_missing_value(tmp_path: Path) -> None:
    X, _ = load_series_table(_write(tmp_path / "nan.csv", "1,nan,-nan,NaN\n2,1e38,-3.4e38,0\n"))
    assert np.isnan(X[0]).all() and np.isfinite(X[1]).all()


def test_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    write_series_table(tmp_path / "t.csv", np.ones((2, 3)), np.array(["a", "b"]))
    assert [f.name for f in tmp_path.iterdir()] == ["t.csv"]
    assert load_series_table(tmp_path / "t.csv")[1].tolist() == ["a", "b"]
