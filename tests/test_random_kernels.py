"""Random convolutional-kernel transforms and the leave-one-out ridge classifier."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from pimc_core.errors import ConfigError, InputError
from pimc_core.estimators import CompetingKernelTransform, RandomKernelTransform, RidgeLOO, softmax_temperature
from pimc_core.estimators.random_kernels import POOLINGS, dilation_plan, kernel_weights


def _bumps(n: int, t: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three classes: a bump early, in the middle or late (same level and amplitude)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    tt = np.arange(t)
    centre = (0.25 + 0.25 * y)[:, None] * t + rng.normal(0, 1.0, (n, 1))
    X = np.exp(-0.5 * ((tt[None] - centre) / (0.07 * t)) ** 2) + 0.2 * rng.normal(size=(n, t))
    return X.astype(np.float32), y


def test_kernels_and_dilations() -> None:
    w = kernel_weights()
    assert w.shape == (84, 9)
    np.testing.assert_array_equal(w.sum(1), 0.0)  # level-free kernels
    assert len({tuple(r) for r in w.tolist()}) == 84
    for length, per_kernel in [(46, 29), (9, 3), (300, 100), (5, 1)]:
        d, c = dilation_plan(length, per_kernel)
        assert c.sum() == per_kernel and (c > 0).all()
        assert d[0] == 1 and np.all(np.diff(d) > 0)
        assert d[-1] <= max(1, (length - 1) // 8)


@pytest.mark.parametrize("shape", [(12, 46), (10, 3, 30), (6, 7)])
def test_transform_shapes_and_values(shape: tuple[int, ...]) -> None:
    X = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    tr = RandomKernelTransform(n_features=2000, seed=1, batch_size=5).fit(X)
    F = tr.transform(X)
    assert F.shape == (shape[0], tr.n_features_out_) and F.dtype == np.float32
    assert 0 < tr.n_features_out_ <= 2000 and tr.n_features_out_ % (84 * len(POOLINGS)) == 0
    assert np.isfinite(F).all()
    # column blocks per (representation, dilation): PPV and LSPV are fractions, MIPV in [-1, 1]
    col = 0
    for plan in tr.plans_:
        for step in plan["steps"]:
            m = step["biases"].numel()
            ppv, mpv, mipv, lspv = (F[:, col + i * m : col + (i + 1) * m] for i in range(4))
            assert (ppv >= 0).all() and (ppv <= 1).all() and (lspv >= 0).all() and (lspv <= ppv + 1e-6).all()
            assert (mpv >= 0).all() and (mipv >= -1).all() and (mipv <= 1).all()
            assert np.all((ppv == 0) == (mipv == -1))
            col += 4 * m
    assert col == F.shape[1]
    with pytest.raises(InputError):
        tr.transform(X[..., :-1])


def test_pooling_matches_direct_computation() -> None:
    """PPV / MPV / MIPV / LSPV of one (kernel, bias) against a plain-Python computation."""
    X = np.random.default_rng(3).normal(size=(4, 30)).astype(np.float32)
    tr = RandomKernelTransform(n_features=84 * 4, diff=False, seed=0).fit(X)
    F = tr.transform(X)
    step = tr.plans_[0]["steps"][0]
    d, k = step["dilation"], 5
    resp = tr._responses(torch.from_numpy(X)[:, None], d, None)[:, k].numpy()
    valid = step["mask"][k].numpy()
    b = float(step["biases"][k, 0])
    m = step["biases"].numel()
    for i in range(len(X)):
        c = resp[i][valid]
        pos = np.flatnonzero(valid)
        above = c > b
        runs, best = 0, 0
        for a in above:
            runs = runs + 1 if a else 0
            best = max(best, runs)
        ppv = above.mean()
        mpv = (c[above] - b).mean() if above.any() else 0.0
        mipv = (pos[above] / (30 - 1)).mean() if above.any() else -1.0
        got = F[i, [k, m + k, 2 * m + k, 3 * m + k]]
        np.testing.assert_allclose(got, [ppv, mpv, mipv, best / valid.sum()], rtol=1e-4, atol=1e-5)


def test_transform_deterministic_by_seed() -> None:
    X = np.random.default_rng(0).normal(size=(20, 2, 25)).astype(np.float32)
    a = RandomKernelTransform(n_features=3000, seed=7).fit(X).transform(X)
    b = RandomKernelTransform(n_features=3000, seed=7).fit(X).transform(X)
    c = RandomKernelTransform(n_features=3000, seed=8).fit(X).transform(X)
    np.testing.assert_array_equal(a, b)
    assert a.shape == c.shape and not np.array_equal(a, c)
    # batch size does not change the features
    d = RandomKernelTransform(n_features=3000, seed=7, batch_size=3).fit(X).transform(X)
    np.testing.assert_allclose(a, d, rtol=1e-5, atol=1e-6)


def test_config_and_input_errors() -> None:
    X = np.zeros((3, 10), np.float32)
    with pytest.raises(ConfigError):
        RandomKernelTransform(pooling=("ppv", "max")).fit(X)  # parameters are checked by fit
    with pytest.raises(ConfigError):
        RandomKernelTransform(n_features=0).fit(X)
    with pytest.raises(InputError):
        RandomKernelTransform().fit(np.array([[0.0, np.nan, 1.0]] * 3))
    with pytest.raises(NotFittedError):
        RandomKernelTransform().transform(np.zeros((2, 10)))


def _brute_force_loo(F: np.ndarray, y: np.ndarray, k: int, ridge: RidgeLOO) -> np.ndarray:
    """Refit ridge (unpenalised intercept) without each row in turn, same features and penalty."""
    Z = (F - ridge.mean_) * ridge.scale_
    Y = -np.ones((len(y), k))
    Y[np.arange(len(y)), y] = 1.0
    out = np.empty_like(Y)
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        zm, ym = Z[keep].mean(0), Y[keep].mean(0)
        Zc, Yc = Z[keep] - zm, Y[keep] - ym
        w = np.linalg.solve(Zc.T @ Zc + ridge.alpha_ * np.eye(Z.shape[1]), Zc.T @ Yc)
        out[i] = (Z[i] - zm) @ w + ym
    return out


@pytest.mark.parametrize("n,p", [(15, 40), (40, 12)])  # dual (n <= p) and primal (n > p)
def test_ridge_loo_equals_brute_force(n: int, p: int) -> None:
    rng = np.random.default_rng(n)
    F = rng.normal(size=(n, p)).astype(np.float64)
    y = np.arange(n) % 3
    F[:, 0] += y  # some signal
    ridge = RidgeLOO(alphas=[0.05, 0.5]).fit(F.astype(np.float32), y, 3)
    brute = _brute_force_loo(F.astype(np.float32).astype(np.float64), y, 3, ridge)
    np.testing.assert_allclose(ridge.loo_decision_, brute, rtol=2e-3, atol=2e-3)
    assert ridge.loo_accuracy_ == pytest.approx(np.mean(brute.argmax(1) == y))
    # the fitted weights reproduce the in-sample fit of the same ridge problem
    Z = (F - ridge.mean_) * ridge.scale_
    Y = -np.ones((n, 3))
    Y[np.arange(n), y] = 1.0
    Zc = Z - Z.mean(0)
    w = np.linalg.solve(Zc.T @ Zc + ridge.alpha_ * np.eye(p), Zc.T @ (Y - Y.mean(0)))
    np.testing.assert_allclose(ridge.decision_function(F.astype(np.float32)), Zc @ w + Y.mean(0), rtol=2e-3, atol=2e-3)


def test_ridge_float32_path_matches_float64() -> None:
    rng = np.random.default_rng(1)
    F = rng.normal(size=(60, 200)).astype(np.float32)
    y = np.arange(60) % 4
    F[:, :4] += 2.0 * np.eye(4)[y]
    a = RidgeLOO().fit(F, y, 4)
    b = RidgeLOO(double_limit=10).fit(F, y, 4)
    assert b.alpha_ >= a.alpha_ * (1 - 1e-4)  # float32 skips only the smallest (unresolvable) penalties
    if b.alpha_ == pytest.approx(a.alpha_, rel=1e-4):
        np.testing.assert_allclose(a.decision_function(F), b.decision_function(F), rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(a.loo_decision_, b.loo_decision_, rtol=1e-3, atol=1e-3)
    assert abs(a.loo_accuracy_ - b.loo_accuracy_) <= 0.05


def test_softmax_temperature_prefers_calibrated_scale() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 2000)
    d = rng.normal(size=(2000, 3))
    d[np.arange(2000), y] += 1.0  # true log-odds scale is beta = 1
    beta, loss = softmax_temperature(d, y)
    assert 0.7 < beta < 1.4
    assert loss < softmax_temperature(d, y, grid=[0.2])[1]
    assert loss < softmax_temperature(d, y, grid=[5.0])[1]


def _ridge_on_halves(transform, X: np.ndarray, y: np.ndarray) -> tuple[RidgeLOO, float]:
    """Fit ``transform`` and a ridge on the first half; the ridge and its accuracy on the second."""
    half = len(X) // 2
    tr = transform.fit(X[:half])
    ridge = RidgeLOO().fit(tr.transform(X[:half]), y[:half], 3)
    return ridge, float(np.mean(ridge.decision_function(tr.transform(X[half:])).argmax(1) == y[half:]))


def test_random_kernel_ridge_beats_chance() -> None:
    X, y = _bumps(300, seed=0)
    ridge, acc = _ridge_on_halves(RandomKernelTransform(n_features=4000, seed=0), X, y)
    assert acc > 0.85  # chance is ~1/3
    assert ridge.loo_accuracy_ > 0.8  # leave-one-out agrees with the held-out accuracy


# -- competing kernels (Hydra-style counts) ---------------------------------------------------


def _direct_counts(x: np.ndarray, w: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Soft-max and hard-min counts ``(k,)`` of one group ``w (k, 9)`` on one series ``x (T,)``,
    zero padding, dilation ``d``: plain loops."""
    t, k = len(x), len(w)
    resp = np.zeros((k, t))
    for j in range(k):
        for i in range(t):
            for m in range(9):
                pos = i + (m - 4) * d
                if 0 <= pos < t:
                    resp[j, i] += w[j, m] * x[pos]
    soft, hard = np.zeros(k), np.zeros(k)
    for i in range(t):
        soft[np.argmax(resp[:, i])] += resp[:, i].max()
        hard[np.argmin(resp[:, i])] += 1
    return soft, hard


def test_competing_kernels_match_direct_counts() -> None:
    X = np.random.default_rng(2).normal(size=(3, 40)).astype(np.float32)
    tr = CompetingKernelTransform(groups=4, kernels=5, seed=3).fit(X)
    assert tr.dilations_ == [1, 2, 4]  # 2^0 .. 2^floor(log2(39 / 8))
    assert tr.n_features_out_ == 3 * 4 * 5 * 2
    counts = tr._counts(torch.from_numpy(X[:, None, :])).numpy()
    col = 0
    for rep_i, w_all in enumerate(tr.weights_):
        w_np = w_all.numpy()[:, :, 0, :]  # (n_dil, g_r * k, 9)
        np.testing.assert_allclose(w_np.sum(-1), 0.0, atol=1e-6)  # centred kernels
        np.testing.assert_allclose(np.abs(w_np).sum(-1), 1.0, rtol=1e-5)
        for di, d in enumerate(tr.dilations_):
            soft_cols = counts[:, col : col + 10].reshape(3, 2, 5)
            hard_cols = counts[:, col + 10 : col + 20].reshape(3, 2, 5)
            for b in range(3):
                x = X[b] if rep_i == 0 else np.diff(X[b])
                for g in range(2):
                    soft, hard = _direct_counts(x, w_np[di, g * 5 : (g + 1) * 5], d)
                    np.testing.assert_allclose(soft_cols[b, g], np.sqrt(np.clip(soft, 0, None)), rtol=1e-4, atol=1e-5)
                    np.testing.assert_allclose(hard_cols[b, g], np.sqrt(hard))
                    assert hard.sum() == len(x)  # one loser per position
            col += 20
    assert col == tr.n_features_out_


def test_competing_kernels_scaling_shapes_and_channels() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 46)).astype(np.float32)
    tr = CompetingKernelTransform(groups=8, seed=1, batch_size=7).fit(X)
    F = tr.transform(X)
    assert F.shape == (30, tr.n_features_out_) and F.dtype == np.float32 and np.isfinite(F).all()
    raw = tr._counts(torch.from_numpy(X[:, None, :])).numpy()
    np.testing.assert_array_equal(F == 0, raw == 0)  # zeros stay zeros (sparse scaling)
    nz = raw[:, 0] != 0
    assert abs(F[nz, 0].mean()) < 1e-4  # standardised over the non-zero counts
    np.testing.assert_allclose(CompetingKernelTransform(groups=8, seed=1).fit(X).transform(X), F)  # seeded
    with pytest.raises(InputError):
        tr.transform(X[:, :-1])
    # several channels: each group sums a random subset of channels
    X3 = rng.normal(size=(10, 3, 30)).astype(np.float32)
    t3 = CompetingKernelTransform(groups=6, kernels=4, seed=0).fit(X3)
    F3 = t3.transform(X3)
    assert F3.shape == (10, t3.n_features_out_) and np.isfinite(F3).all()
    mix = t3.mix_[0]
    assert mix is not None and mix.shape == (3, 3) and (mix.sum(1) >= 1).all()
    # group 0 on the series equals the one-channel transform of its summed channel subset
    single = CompetingKernelTransform(groups=6, kernels=4, seed=0).fit(X3[:, 0])
    single.weights_ = [w.clone() for w in t3.weights_]
    summed = np.einsum("bct,c->bt", X3, mix[0].numpy())[:, None, :]
    a = t3._counts(torch.from_numpy(X3)).numpy()
    b = single._counts(torch.from_numpy(summed.astype(np.float32))).numpy()
    np.testing.assert_allclose(a[:, :4], b[:, :4], rtol=1e-4, atol=1e-5)  # soft counts of group 0, dilation 1
    with pytest.raises(ConfigError, match="even"):
        CompetingKernelTransform(groups=5).fit(X)
    with pytest.raises(ConfigError):
        CompetingKernelTransform(kernels=1).fit(X)
    with pytest.raises(NotFittedError):
        CompetingKernelTransform().transform(X)


def test_competing_kernel_ridge_beats_chance() -> None:
    X, y = _bumps(300, seed=1)
    _, acc = _ridge_on_halves(CompetingKernelTransform(groups=16, seed=0), X, y)
    assert acc > 0.85  # chance is ~1/3
