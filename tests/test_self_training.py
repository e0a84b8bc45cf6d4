"""Self-training of the series classifier's ridge member on pseudo-labelled unlabelled series."""

from __future__ import annotations

import numpy as np
import pytest

from pimc_core.errors import ConfigError
from pimc_core.estimators import RidgeLOO, SeriesClassifier, SeriesModelConfig
from pimc_core.estimators.self_training import pseudo_label_order, pseudo_label_ridges
from tests.test_series_model import TINY, _make_table


def test_pseudo_label_order_is_class_balanced_and_confident_first() -> None:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(3), size=300)
    proba[:200] = proba[:200] * 0.2 + np.eye(3)[0] * 0.8  # class 0 predicted twice as often
    order, labels = pseudo_label_order(proba)
    assert order.shape == labels.shape == (300,) and sorted(order.tolist()) == list(range(300))
    np.testing.assert_array_equal(labels, proba.argmax(1))
    shares = np.bincount(labels, minlength=3) / 300
    for m in (30, 90, 150):  # every prefix holds each predicted class in proportion
        np.testing.assert_allclose(np.bincount(labels[order[:m]], minlength=3) / m, shares, atol=0.03)
    for c in range(3):  # within a class, the most confident first
        conf = proba.max(1)[order][labels[order] == c]
        assert np.all(np.diff(conf) <= 1e-12)


def _codes(y: np.ndarray, k: int) -> np.ndarray:
    Y = -np.ones((len(y), k))
    Y[np.arange(len(y)), y] = 1.0
    return Y


@pytest.mark.parametrize("n,m,p", [(12, 20, 60), (30, 60, 10)])  # dual (N <= p) and primal (N > p)
def test_pseudo_label_ridges_equal_direct_refits(n: int, m: int, p: int) -> None:
    rng = np.random.default_rng(p)
    k = 3
    y = np.arange(n) % k
    F = rng.normal(size=(n, p)).astype(np.float32)
    F[:, 0] += 2 * y
    Fu = rng.normal(size=(m, p)).astype(np.float32)
    base = RidgeLOO(alphas=[0.3]).fit(F, y, k)
    proba = rng.dirichlet(np.ones(k), size=m)
    order, labels = pseudo_label_order(proba)
    got = list(pseudo_label_ridges(base, F, y, Fu, order, labels, (0.5, 1.0)))
    assert [s for s, _ in got] == [0.5, 1.0]
    for share, ridge in got:
        rows = order[: int(round(share * m))]
        Z = (np.concatenate([F, Fu[rows]]).astype(np.float64) - base.mean_) * base.scale_
        Y = np.concatenate([_codes(y, k), _codes(labels[rows], k)])
        alpha = base.alpha_ * len(Z) / n
        assert ridge.alpha_ == pytest.approx(alpha)

        def solve(keep: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            zm, ym = Z[keep].mean(0), Y[keep].mean(0)
            w = np.linalg.solve((Z[keep] - zm).T @ (Z[keep] - zm) + alpha * np.eye(p), (Z[keep] - zm).T @ (Y[keep] - ym))
            return w, zm, ym

        w, zm, ym = solve(np.ones(len(Z), bool))
        np.testing.assert_allclose(ridge.decision_function(F), (Z[:n] - zm) @ w + ym, rtol=1e-3, atol=1e-3)
        assert ridge.loo_decision_.shape == (n, k)
        for i in range(n):  # leave-one-out values of the labelled rows: refit without row i
            keep = np.ones(len(Z), bool)
            keep[i] = False
            wi, zmi, ymi = solve(keep)
            np.testing.assert_allclose(ridge.loo_decision_[i], (Z[i] - zmi) @ wi + ymi, rtol=1e-3, atol=1e-3)


def test_config_self_train_shares() -> None:
    assert SeriesModelConfig().self_train_shares == ()  # off unless asked for
    assert SeriesModelConfig.from_dict({"self_train_shares": [0.5]}).self_train_shares == (0.5,)
    for bad in ([0.5, 0.25], [0.0], [1.5], ["a"]):
        with pytest.raises(ConfigError, match="self_train_shares"):
            SeriesModelConfig.from_dict({"self_train_shares": bad})


def test_classifier_self_trains_on_the_unlabelled_series() -> None:
    """Eight labelled series of four classes, 292 unlabelled, two seeds: where the held-out check
    keeps a share of pseudo-labels, its held-out log-loss is below the one without, the predictions
    change and fewer of the unlabelled series are wrong (0.86 → 0.997 on an Intel Xeon, 0.92 → 0.99
    on an AMD EPYC); where it keeps none (it needs a gain larger than one standard error over only 8
    held-out series, and CPU rounding moves the tiny CNNs enough to decide that), the predictions are
    those without self-training. At least one of the two seeds keeps a share."""
    X, y = _make_table(300, seed=1)
    Xl, yl, Xu, yu = X[:8], y[:8], X[8:], y[8:]
    kept = 0
    for seed in (1, 2):
        cfg = {**TINY, "epochs": 1, "ensemble": 2, "rk_folds": 2, "rk_features": 1000, "budget_s": 600.0,
               "seed": seed, "pretrain": False}
        plain = SeriesClassifier.from_config({**cfg, "self_train_shares": []}).fit(Xl, yl, Xu)
        assert plain.transductive_ is None and "self_train_share" not in plain.history_
        st = SeriesClassifier.from_config({**cfg, "self_train_shares": [0.25, 0.5, 1.0]}).fit(Xl, yl, Xu)
        h = st.history_
        losses = h["self_train_held_out_log_loss"]
        assert set(losses) == {0.0, 0.25, 0.5, 1.0} and h["self_train_held_out_series"] == 8
        before, after = plain.predict(Xu), st.predict(Xu)
        if h["self_train_share"] == 0:
            np.testing.assert_array_equal(after, before)
            continue
        kept += 1
        assert losses[h["self_train_share"]] < losses[0.0]
        assert np.any(before != after)
        assert np.mean(after == yu) > np.mean(before == yu) + 0.03
    assert kept >= 1
    # the probabilities kept for the unlabelled series equal a fresh computation
    cached = st.predict_proba(Xu)
    st.transductive_ = None
    np.testing.assert_allclose(cached, st.predict_proba(Xu), atol=1e-6)
    assert st.rk_ridge_.coef_.shape == plain.rk_ridge_.coef_.shape  # (features, classes)


def test_self_training_rows_fit_the_time_given() -> None:
    from pimc_core.estimators.self_training import self_training_rows, self_training_seconds

    shares = (0.25, 0.5, 1.0)
    full = self_training_seconds(2000, 6000, 3000, shares)
    assert self_training_rows(2000, 6000, 3000, shares, full * 2) == (6000, full)
    rows, est = self_training_rows(2000, 6000, 3000, shares, full * 0.6)
    assert 600 <= rows < 6000 and est <= full * 0.6
    assert self_training_rows(2000, 6000, 3000, shares, 0.0) == (0, 0.0)
    with pytest.raises(ConfigError, match="self_train_max_share"):
        SeriesModelConfig(self_train_max_share=1.5)


def test_a_share_must_win_clearly() -> None:
    from pimc_core.estimators.self_training import _clear_winner

    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 1.0, 200)
    clear = base - 0.05 + rng.normal(0, 0.01, 200)  # lower on nearly every series
    noisy = base - 0.01 + rng.normal(0, 0.5, 200)  # lower on average, within the noise
    assert _clear_winner(np.stack([base, noisy, clear])) == 2
    assert _clear_winner(np.stack([base, noisy])) == 0
    assert _clear_winner(np.stack([base, base + 0.1])) == 0
