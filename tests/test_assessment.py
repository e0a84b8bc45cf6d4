"""Area and accuracy from a stratified sample: the Olofsson et al. 2014 estimator, ``pimc sample-design``
and ``pimc assess``."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from pimc_core.errors import InputError
from pimc_core.maps.accuracy import Z95, error_matrix, sample_size, stratified_estimate

#: Olofsson et al. 2014, section 5: deforestation, forest gain, stable forest, stable non-forest
OLOFSSON_PIXELS = [200_000, 150_000, 3_200_000, 6_450_000]
OLOFSSON_COUNTS = np.array([[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]])
HA_30M = 0.09  # one 30 m pixel in hectares


def test_the_worked_example_of_olofsson_2014():
    e = stratified_estimate(OLOFSSON_COUNTS, OLOFSSON_PIXELS)
    area_total = sum(OLOFSSON_PIXELS) * HA_30M
    area = e.area_proportion * area_total
    ci = Z95 * e.area_proportion_se * area_total
    # published (their section 5 / table 9): areas ± 95 % half-widths in ha
    published_area = [21_158, 11_686, 285_770, 581_386]
    published_ci = [6_158, 3_756, 15_510, 16_282]
    np.testing.assert_allclose(area, published_area, rtol=5e-3)
    np.testing.assert_allclose(ci, published_ci, rtol=5e-3)
    assert round(area[0]) == 21_158 and round(ci[0]) == 6_158
    # accuracies as printed (two decimals)
    np.testing.assert_allclose(e.users_accuracy, [0.88, 0.73, 0.93, 0.96], atol=5e-3)
    np.testing.assert_allclose(Z95 * e.users_accuracy_se, [0.07, 0.10, 0.04, 0.02], atol=5e-3)
    np.testing.assert_allclose(e.producers_accuracy[[0, 2, 3]], [0.75, 0.93, 0.96], atol=5e-3)
    np.testing.assert_allclose(Z95 * e.producers_accuracy_se[[0, 2, 3]], [0.21, 0.03, 0.02], atol=6e-3)
    assert e.overall_accuracy == pytest.approx(0.95, abs=5e-3)
    assert Z95 * e.overall_accuracy_se == pytest.approx(0.02, abs=5e-3)
    assert e.proportions.sum() == pytest.approx(1.0)
    # eq. 13 with their expected user's accuracies and S(Ô) = 0.01: n ≈ 641
    assert sample_size(e.weights, [0.7, 0.6, 0.9, 0.95], 0.01) == 641


def test_a_small_example_by_hand():
    # two strata: 80 / 20 pixels; 4 and 3 points
    counts = np.array([[3, 1], [1, 2]])
    e = stratified_estimate(counts, [80, 20], classes=[1, 2])
    w1, w2 = 0.8, 0.2
    p = np.array([[w1 * 3 / 4, w1 * 1 / 4], [w2 * 1 / 3, w2 * 2 / 3]])
    np.testing.assert_allclose(e.proportions, p)
    assert e.overall_accuracy == pytest.approx(p[0, 0] + p[1, 1])
    u1, u2 = 3 / 4, 2 / 3
    np.testing.assert_allclose(e.users_accuracy, [u1, u2])
    np.testing.assert_allclose(e.users_accuracy_se, [np.sqrt(u1 * (1 - u1) / 3), np.sqrt(u2 * (1 - u2) / 2)])
    assert e.overall_accuracy_se == pytest.approx(np.sqrt(w1**2 * u1 * (1 - u1) / 3 + w2**2 * u2 * (1 - u2) / 2))
    np.testing.assert_allclose(e.area_proportion, p.sum(axis=0))
    se1 = np.sqrt(w1**2 * (3 / 4) * (1 / 4) / 3 + w2**2 * (1 / 3) * (2 / 3) / 2)
    assert e.area_proportion_se[0] == pytest.approx(se1)
    pa1 = p[0, 0] / p[:, 0].sum()
    assert e.producers_accuracy[0] == pytest.approx(pa1)
    n_hat1 = 80 * 3 / 4 + 20 * 1 / 3
    v = (80**2 * (1 - pa1) ** 2 * u1 * (1 - u1) / 3 + pa1**2 * 20**2 * (1 / 3) * (2 / 3) / 2) / n_hat1**2
    assert e.producers_accuracy_se[0] == pytest.approx(np.sqrt(v))


def test_error_matrix_counts_as_scikit_learn():
    rng = np.random.default_rng(0)
    m, r = rng.integers(1, 5, 300), rng.integers(1, 5, 300)
    np.testing.assert_array_equal(error_matrix(m, r, [1, 2, 3, 4]), confusion_matrix(m, r, labels=[1, 2, 3, 4]))
    with pytest.raises(InputError, match=r"\[7\]"):
        error_matrix([1, 7], [1, 1], [1, 2])


def test_a_mapped_class_needs_two_points():
    with pytest.raises(InputError, match=r"classes \[2\].*at least 2"):
        stratified_estimate(np.array([[3, 0], [0, 1]]), [10, 10], classes=[1, 2])
    # a class without mapped pixels (a reference class only) is fine
    e = stratified_estimate(np.array([[3, 1], [0, 0]]), [10, 0], classes=[1, 2])
    assert e.area_proportion[1] == pytest.approx(0.25)
    assert np.isnan(e.users_accuracy[1])
