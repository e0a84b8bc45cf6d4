"""Gap filling and temporal resampling of per-pixel series (time on the last axis)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from pimc_core.errors import ConfigError, InputError, PimcError
from pimc_core.series.gapfill import GapFillResult, date_grid, fill_gaps, resample_to_dates

nan = np.nan
D = dt.date


def _days(dates):
    return np.array([d.toordinal() for d in dates], dtype=np.float64)


def _reference(series2d, x, u, min_valid):
    """Per-pixel oracle: np.interp (linear, nearest value beyond the ends)."""
    out = np.full((series2d.shape[0], len(u)), np.nan)
    for i, row in enumerate(series2d):
        ok = np.isfinite(row)
        if ok.sum() >= min_valid:
            out[i] = np.interp(u, x[ok], row[ok])
    return out


# --------------------------------------------------------------------------------------------
# fill_gaps: hand-computed examples
# --------------------------------------------------------------------------------------------


def test_irregular_dates_interpolate_by_date():
    # days 0, 1, 4, 10: values at day 1 and 4 lie on the line from 1 (day 0) to 11 (day 10).
    dates = [D(2021, 1, 1), D(2021, 1, 2), D(2021, 1, 5), D(2021, 1, 11)]
    res = fill_gaps(np.array([1.0, nan, nan, 11.0]), dates, min_valid=2)
    assert isinstance(res, GapFillResult)
    np.testing.assert_allclose(res.values, [1.0, 2.0, 5.0, 11.0], rtol=1e-6)
    assert res.values.dtype == np.float32
    assert res.n_valid == 2 and res.ok


def test_without_dates_interpolates_by_position():
    res = fill_gaps(np.array([1.0, nan, nan, 11.0]), min_valid=2)
    np.testing.assert_allclose(res.values, [1.0, 1 + 10 / 3, 1 + 20 / 3, 11.0], rtol=1e-6)


def test_irregular_example_with_several_gaps():
    # days 0, 2, 3, 7, 8, 16
    dates = [D(2020, 2, 27), D(2020, 2, 29), D(2020, 3, 1), D(2020, 3, 5), D(2020, 3, 6), D(2020, 3, 14)]
    series = np.array([0.2, nan, 0.5, nan, 0.3, nan], dtype=np.float32)
    res = fill_gaps(series, dates)
    # day 2 between (0, 0.2) and (3, 0.5): 0.2 + 0.3 * 2/3 = 0.4
    # day 7 between (3, 0.5) and (8, 0.3): 0.5 - 0.2 * 4/5 = 0.34
    # day 16 after the last valid: nearest = 0.3
    np.testing.assert_allclose(res.values, [0.2, 0.4, 0.5, 0.34, 0.3, 0.3], rtol=1e-6)
    assert res.n_valid == 3 and res.ok


def test_ends_are_nearest_filled():
    res = fill_gaps(np.array([nan, nan, 2.0, nan, 4.0, nan, nan]), min_valid=2)
    np.testing.assert_allclose(res.values, [2, 2, 2, 3, 4, 4, 4])


def test_valid_observations_are_kept_exactly():
    rng = np.random.default_rng(3)
    x = rng.random((50, 20)).astype(np.float32)
    x[rng.random(x.shape) < 0.4] = nan
    res = fill_gaps(x, min_valid=1)
    valid = np.isfinite(x)
    np.testing.assert_array_equal(res.values[valid], x[valid])


def test_below_min_valid_and_all_nan_are_flagged_and_left_nan():
    series = np.array(
        [
            [nan, nan, nan, nan, nan],  # all NaN
            [nan, 1.0, nan, 2.0, nan],  # 2 valid < 3
            [1.0, nan, 2.0, nan, 3.0],  # 3 valid: filled
        ]
    )
    res = fill_gaps(series)
    np.testing.assert_array_equal(res.n_valid, [0, 2, 3])
    np.testing.assert_array_equal(res.ok, [False, False, True])
    assert np.isnan(res.values[:2]).all()
    np.testing.assert_allclose(res.values[2], [1.0, 1.5, 2.0, 2.5, 3.0])
    res1 = fill_gaps(series, min_valid=1)
    np.testing.assert_array_equal(res1.ok, [False, True, True])
    np.testing.assert_allclose(res1.values[1], [1.0, 1.0, 1.5, 2.0, 2.0])
    assert np.isnan(res1.values[0]).all()


def test_short_complete_series_below_min_valid():
    res = fill_gaps(np.ones((4, 2)), min_valid=3)
    assert not res.ok.any() and np.isnan(res.values).all()


def test_infinite_values_count_as_invalid():
    res = fill_gaps(np.array([1.0, np.inf, 3.0, -np.inf, 5.0]), min_valid=2)
    np.testing.assert_allclose(res.values, [1, 2, 3, 4, 5])
    assert res.n_valid == 3


def test_shape_preserved_with_leading_dims_and_matches_oracle():
    rng = np.random.default_rng(0)
    H, W, T = 6, 5, 14
    series = rng.normal(size=(H, W, T))
    series[rng.random(series.shape) < 0.45] = nan
    series[0, 0] = nan
    dates = [D(2022, 1, 1) + dt.timedelta(days=int(d)) for d in np.cumsum(rng.integers(1, 20, T))]
    res = fill_gaps(series, dates)
    assert res.values.shape == (H, W, T) and res.values.dtype == np.float32
    assert res.n_valid.shape == (H, W) and res.ok.shape == (H, W) and res.ok.dtype == bool
    np.testing.assert_array_equal(res.n_valid, np.isfinite(series).sum(-1))
    x = _days(dates)
    expected = _reference(series.reshape(-1, T), x, x, 3).reshape(H, W, T)
    np.testing.assert_allclose(res.values, expected, rtol=1e-5, atol=1e-6)
    assert not res.ok[0, 0]


def test_one_dimensional_series_gives_scalar_shaped_outputs():
    res = fill_gaps([1.0, nan, 3.0, 4.0])
    assert res.values.shape == (4,) and res.n_valid.shape == () and res.ok.shape == ()


def test_vectorised_speed_sanity():
    # (200_000, 36) must take well under a few seconds (no per-pixel Python loop). No timing
    # assertion (shared CI machines), but this test stays fast only if the code is vectorised.
    rng = np.random.default_rng(1)
    series = rng.random((200_000, 36), dtype=np.float32)
    series[rng.random(series.shape) < 0.3] = nan
    dates = date_grid(D(2020, 1, 1), D(2020, 12, 31), 10)
    assert len(dates) == 37
    res = fill_gaps(series, dates[:36])
    assert res.values.shape == (200_000, 36)
    assert np.isfinite(res.values[res.ok]).all()
    # spot-check a few rows against the oracle
    x = _days(dates[:36])
    rows = rng.choice(200_000, 20, replace=False)
    np.testing.assert_allclose(res.values[rows], _reference(series[rows], x, x, 3), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# date_grid and resample_to_dates
# --------------------------------------------------------------------------------------------


def test_date_grid():
    assert date_grid(D(2021, 1, 1), D(2021, 1, 31), 10) == [D(2021, 1, 1), D(2021, 1, 11), D(2021, 1, 21), D(2021, 1, 31)]
    assert date_grid(D(2021, 1, 1), D(2021, 1, 30), 10) == [D(2021, 1, 1), D(2021, 1, 11), D(2021, 1, 21)]
    assert date_grid("2020-02-28", "2020-03-01", 1) == [D(2020, 2, 28), D(2020, 2, 29), D(2020, 3, 1)]
    assert date_grid(D(2021, 5, 5), D(2021, 5, 5), 16) == [D(2021, 5, 5)]
    assert all(type(d) is dt.date for d in date_grid(dt.datetime(2021, 1, 1, 12), D(2021, 2, 1), 5))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((D(2021, 2, 1), D(2021, 1, 1), 5), "before start"),
        ((D(2021, 1, 1), D(2021, 2, 1), 0), "step_days"),
        ((D(2021, 1, 1), D(2021, 2, 1), 2.5), "step_days"),
        (("2021-13-01", D(2021, 2, 1), 5), "start"),
    ],
)
def test_date_grid_errors(args, match):
    with pytest.raises(ConfigError, match=match):
        date_grid(*args)


def test_resample_reproduces_linear_function_exactly():
    rng = np.random.default_rng(5)
    dates = [D(2021, 1, 3), D(2021, 1, 9), D(2021, 1, 10), D(2021, 2, 2), D(2021, 2, 20), D(2021, 3, 1), D(2021, 4, 7)]
    x = _days(dates) - _days(dates)[0]
    a = rng.uniform(-1, 1, (4, 3, 1))
    b = rng.uniform(-0.01, 0.01, (4, 3, 1))
    series = a + b * x  # (4, 3, 7), linear in time
    series[..., 1] = nan  # interior gaps, endpoints kept valid
    series[0, 0, 3:5] = nan
    grid = date_grid(D(2021, 1, 3), D(2021, 4, 7), 8)
    u = _days(grid) - _days(dates)[0]
    res = resample_to_dates(series, dates, grid)
    assert res.values.shape == (4, 3, len(grid)) and res.values.dtype == np.float32
    assert res.ok.all()
    np.testing.assert_allclose(res.values, a + b * u, rtol=0, atol=1e-6)


def test_resample_never_extrapolates():
    dates = [D(2021, 1, 11), D(2021, 1, 21), D(2021, 1, 31)]
    series = np.array([nan, 1.0, 2.0])
    grid = [D(2021, 1, 1), D(2021, 1, 16), D(2021, 1, 26), D(2021, 2, 15)]
    res = resample_to_dates(series, dates, grid, min_valid=2)
    np.testing.assert_allclose(res.values, [1.0, 1.0, 1.5, 2.0])


def test_resample_matches_oracle_and_fill_gaps():
    rng = np.random.default_rng(7)
    T = 23
    dates = [D(2019, 12, 20) + dt.timedelta(days=int(d)) for d in np.cumsum(rng.integers(2, 25, T))]
    series = rng.normal(size=(40, T)).astype(np.float32)
    series[rng.random(series.shape) < 0.5] = nan
    grid = date_grid(D(2019, 12, 1), dates[-1] + dt.timedelta(days=30), 9)
    res = resample_to_dates(series, dates, grid, min_valid=4)
    expected = _reference(series.astype(np.float64), _days(dates), _days(grid), 4)
    np.testing.assert_allclose(res.values, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(res.ok, np.isfinite(series).sum(1) >= 4)
    # resampling onto the acquisition dates is gap filling
    same = resample_to_dates(series, dates, dates, min_valid=4)
    np.testing.assert_array_equal(same.values, fill_gaps(series, dates, min_valid=4).values)


def test_resample_flags_sparse_series():
    dates = [D(2021, 1, 1), D(2021, 1, 5), D(2021, 1, 9)]
    res = resample_to_dates(np.array([[nan, nan, 1.0], [1.0, 2.0, 3.0]]), dates, date_grid(dates[0], dates[-1], 2))
    np.testing.assert_array_equal(res.ok, [False, True])
    assert np.isnan(res.values[0]).all()
    np.testing.assert_allclose(res.values[1], [1.0, 1.5, 2.0, 2.5, 3.0])


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------


def test_unsorted_dates_rejected():
    with pytest.raises(InputError, match="unsorted"):
        fill_gaps(np.zeros(3), [D(2021, 1, 2), D(2021, 1, 1), D(2021, 1, 3)])
    with pytest.raises(InputError, match="target_dates.*unsorted"):
        resample_to_dates(np.zeros(2), [D(2021, 1, 1), D(2021, 1, 3)], [D(2021, 1, 2), D(2021, 1, 1)])


def test_duplicate_dates_rejected():
    with pytest.raises(InputError, match="duplicate"):
        fill_gaps(np.zeros(3), [D(2021, 1, 1), D(2021, 1, 1), D(2021, 1, 3)])
    with pytest.raises(InputError, match="duplicate"):
        resample_to_dates(np.zeros(3), [D(2021, 1, 1), D(2021, 1, 2), D(2021, 1, 2)], [D(2021, 1, 1)])


def test_length_mismatch_names_both_lengths():
    dates = [D(2021, 1, 1), D(2021, 1, 2), D(2021, 1, 3)]
    with pytest.raises(InputError, match=r"5 time steps.*3 dates"):
        fill_gaps(np.zeros((2, 5)), dates)
    with pytest.raises(InputError, match=r"4 time steps.*3 dates"):
        resample_to_dates(np.zeros((2, 4)), dates, dates)


def test_other_input_errors():
    with pytest.raises(InputError, match="datetime.date"):
        fill_gaps(np.zeros(2), ["2021-01-01", "2021-01-02"])
    with pytest.raises(InputError, match="time axis"):
        fill_gaps(np.float32(1.0))
    with pytest.raises(InputError, match="empty"):
        resample_to_dates(np.zeros(1), [D(2021, 1, 1)], [])
    with pytest.raises(ConfigError, match="min_valid"):
        fill_gaps(np.zeros(3), min_valid=0)
    with pytest.raises(PimcError):
        resample_to_dates(np.zeros(3), [D(2021, 1, 1)] * 3, [D(2021, 1, 1)])


def test_numpy_datetime64_dates_accepted():
    dates = np.array(["2021-01-01", "2021-01-02", "2021-01-05", "2021-01-11"], dtype="datetime64[D]")
    res = fill_gaps(np.array([1.0, nan, nan, 11.0]), list(dates), min_valid=2)
    np.testing.assert_allclose(res.values, [1.0, 2.0, 5.0, 11.0], rtol=1e-6)
