"""The peers benchmark plumbing: aeon's .ts → UCR TSV, the peers script's loader, section choice."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import aeon_peers, bench_ucr_real
from benchmarks.peers import ts_to_tsv
from benchmarks.run_all import _sections, _selected, arrange, keep_previous
from pimc_core.io.tables import load_series_table

TS = """# comment line
@problemName Tiny
@timeStamps false
@univariate true
@classLabel true a b
@data
1.0,2.5,?,4.0:a
0.5,0.25,0.125:b
"""


def test_ts_to_tsv_round_trips_through_our_table_loader(tmp_path):
    src = tmp_path / "Tiny_TRAIN.ts"
    src.write_text(TS, encoding="utf-8")
    rows, length = ts_to_tsv(src, tmp_path / "out" / "Tiny_TRAIN.tsv")
    assert (rows, length) == (2, 4)
    X, y = load_series_table(tmp_path / "out" / "Tiny_TRAIN.tsv")
    assert list(y) == ["a", "b"]
    np.testing.assert_array_equal(X[0], [1.0, 2.5, np.nan, 4.0])
    np.testing.assert_array_equal(X[1], [0.5, 0.25, 0.125, np.nan])  # shorter series padded with NaN
    X2, y2 = aeon_peers.load(str(tmp_path / "out" / "Tiny_TRAIN.tsv"))  # the peers venv's own loader agrees
    np.testing.assert_array_equal(X2, X)
    assert list(y2) == ["a", "b"]


def test_ts_to_tsv_refuses_multivariate_rows(tmp_path):
    src = tmp_path / "M.ts"
    src.write_text("@data\n1,2:3,4:a\n", encoding="utf-8")
    with pytest.raises(ValueError, match="multivariate"):
        ts_to_tsv(src, tmp_path / "M.tsv")


def test_peers_fill_carries_values_over_gaps():
    X = np.array([[np.nan, 1.0, np.nan, 3.0, np.nan], [np.nan] * 5, [1, 2, 3, 4, 5]], dtype=float)
    np.testing.assert_array_equal(aeon_peers.fill(X), [[1, 1, 1, 3, 3], [0] * 5, [1, 2, 3, 4, 5]])


def test_only_selects_comma_separated_sections():
    assert _selected(None, "benchmarks.bench_recurrence")
    assert _selected("bench_series_table,bench_ucr_real", "benchmarks.bench_ucr_real")
    assert not _selected("bench_series_table,bench_ucr_real", "benchmarks.bench_recurrence")


def test_a_rerun_keeps_the_sections_no_benchmark_writes_where_they_stood():
    old = _sections("# Benchmarks\n\n## Intro\n\nhand\n\n## A\n\nold a\n\n## A notes\n\nkept\n\n"
                    "## B\n\nold b\n\n## C\n\nold c\n\n## GPU\n\nrows\n")
    written = [("A", "## A\n\nnew a"), ("B", "## B\n\nnew b")]  # C not written this time
    parts = arrange(written, old, {"A", "B", "C"})
    assert parts == ["## Intro\n\nhand", "## A\n\nnew a", "## A notes\n\nkept", "## B\n\nnew b", "## GPU\n\nrows"]
    assert arrange(written, {}, {"A", "B"}) == ["## A\n\nnew a", "## B\n\nnew b"]
    kept = keep_previous(old, {"A"}, "2026-12-07 10:00")
    parts = arrange(written, kept, {"A", "B", "C"})
    assert parts[1:4] == ["## A\n\nnew a", "## A: before the run of 2026-12-07 10:00\n\nold a", "## A notes\n\nkept"]
    assert _sections("\n\n".join(parts))["A: before the run of 2026-12-07 10:00"].endswith("old a")


def test_ucr_markdown_marks_the_best_and_averages():
    def acc(v):
        return {"accuracy": v, "macro_f1": v, "seconds": 1.0}

    res = {"seed": 0, "sets": [
        {"name": "A", "n_train": 10, "n_test": 20, "length": 30, "classes": 2, "pimc": acc(0.9), "random_forest": acc(0.8),
         "minirocket": acc(0.9), "multirocket": acc(0.7)},
        {"name": "B", "n_train": 5, "n_test": 6, "length": 7, "classes": 3, "pimc": acc(0.5), "random_forest": acc(0.6),
         "minirocket": acc(0.4), "multirocket": acc(0.3)},
    ]}
    md = bench_ucr_real.markdown(res)
    assert "| A | 10 / 20 | 30 | 2 | **0.900** | 0.800 | **0.900** | 0.700 | 1 |" in md
    assert "| mean | | | | 0.700 | 0.700 | 0.650 | 0.500 | |" in md
    assert "training series 1, RandomForest 1, MiniRocket (aeon) 1, MultiRocket (aeon) 0 of 2 sets" in md
