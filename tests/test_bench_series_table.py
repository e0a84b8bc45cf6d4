"""The generated table behind ``benchmarks.bench_series_table``: the real benchmark's shape,
balanced classes, reproducible, NDVI-like values, and sibling classes that differ."""

from __future__ import annotations

import numpy as np

from benchmarks.bench_series_table import crop_like_table


def test_crop_like_table_shape_balance_and_determinism():
    X_tr, y_tr, X_te, y_te = crop_like_table(3, n_train=480, n_test=960)
    assert X_tr.shape == (480, 46) and X_te.shape == (960, 46) and X_tr.dtype == np.float32
    counts = np.bincount(np.concatenate([y_tr, y_te]))[1:]
    assert counts.size == 24 and (counts == 60).all()
    assert np.isfinite(X_tr).all() and -0.2 < X_tr.min() and X_tr.max() <= 1.0
    again = crop_like_table(3, n_train=480, n_test=960)
    np.testing.assert_array_equal(again[0], X_tr)
    np.testing.assert_array_equal(again[3], y_te)
    assert not np.array_equal(crop_like_table(4, n_train=480, n_test=960)[0], X_tr)
    # the two classes of a family differ (timing / vigour), more than their members differ among themselves
    X = np.concatenate([X_tr, X_te])
    y = np.concatenate([y_tr, y_te])
    means = np.stack([X[y == c].mean(0) for c in range(1, 25)])
    for a in range(0, 24, 2):
        assert np.abs(means[a] - means[a + 1]).max() > 0.05


def test_self_training_line_reports_the_choice():
    from benchmarks.bench_series_table import _self_training_line

    assert "did not run" in _self_training_line({"accuracy": 0.8})
    line = _self_training_line({"self_train_share": 0.5, "self_train_held_out_log_loss": {"0.0": 0.61, "0.5": 0.58},
                                "self_train_held_out_series": 1440, "self_train_seconds": 92.4})
    assert "kept 0.5 of the test series" in line and "0: 0.61, 0.5: 0.58" in line and "1440" in line and "92 s" in line
