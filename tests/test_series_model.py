"""Pixel-series classifier: config, preparation, model pieces and an end-to-end CLI run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pimc_core.errors import ConfigError, InputError
from pimc_core.estimators import SeriesClassifier, SeriesModelConfig
from pimc_core.estimators.series_net import PixelSeriesNet, level_plots_torch, recurrence_plots_torch
from pimc_core.estimators.standardizer import SeriesStandardizer
from pimc_core.io.tables import write_series_table

TINY = {
    "series_width": 8, "series_depth": 2, "rp_width": 8, "rp_depth": 2, "embed_dim": 16,
    "proj_dim": 8, "batch_size": 32, "pretrain_batch_size": 64, "ensemble": 1,
}


def _make_table(n: int, t: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three 'crops' greening up at different dates plus a flat low class; noise and gaps."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, size=n)
    tt = np.arange(t)
    X = np.empty((n, t), dtype=np.float32)
    for i, c in enumerate(y):
        if c == 3:
            X[i] = 0.15 + 0.03 * rng.normal(size=t)
            continue
        peak = (0.25 + 0.25 * c) * t + rng.normal(0, 1.0)
        X[i] = 0.2 + 0.6 * np.exp(-0.5 * ((tt - peak) / (0.1 * t)) ** 2) + 0.05 * rng.normal(size=t)
    X[rng.random(X.shape) < 0.05] = np.nan
    return X, y + 1


def test_config_rejects_unknown_and_bad_values() -> None:
    with pytest.raises(ConfigError, match="'epocs'"):
        SeriesModelConfig.from_dict({"epocs": 3})
    with pytest.raises(ConfigError, match="branches"):
        SeriesModelConfig.from_dict({"branches": ["rp", "audio"]})
    with pytest.raises(ConfigError, match="lr"):
        SeriesModelConfig(lr=-1.0)
    cfg = SeriesModelConfig.from_dict({"branches": "rp", "epochs": 2})
    assert cfg.branches == ("rp",)
    assert SeriesModelConfig.from_dict(cfg.to_dict()) == cfg


def test_recurrence_plot_matches_pyts() -> None:
    from pyts.image import RecurrencePlot

    x = np.random.default_rng(0).normal(size=(3, 17)).astype(np.float32)
    ours = recurrence_plots_torch(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, RecurrencePlot().fit_transform(x), rtol=1e-5, atol=1e-6)
    lv = level_plots_torch(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(lv[:, 2, 5], (x[:, 2] + x[:, 5]) / 2, rtol=1e-6)


def test_standardizer_fills_gaps_and_keeps_level() -> None:
    X = np.array([[0.1, np.nan, 0.3, 0.3], [0.8, 0.8, np.nan, np.nan], [np.nan] * 4], dtype=np.float32)
    st = SeriesStandardizer().fit(X[:2])
    Z = st.transform(X)
    assert Z.shape == (3, 1, 4) and np.isfinite(Z).all()
    assert Z[0, 0, 1] == pytest.approx((Z[0, 0, 0] + Z[0, 0, 2]) / 2, abs=1e-5)  # linear fill
    assert Z[1].mean() > Z[0].mean() + 1.0  # level kept (no per-series normalisation)
    np.testing.assert_array_equal(Z[2], 0.0)  # an all-missing series → the training mean
    with pytest.raises(InputError, match="time steps"):
        st.transform(np.zeros((2, 5), np.float32))
    long = SeriesStandardizer().fit(np.random.rand(4, 100).astype(np.float32), max_length=32)
    assert long.transform(np.random.rand(2, 100).astype(np.float32)).shape == (2, 1, 32)
    again = SeriesStandardizer.from_state(st.state_dict())
    np.testing.assert_allclose(again.transform(X), Z)


@pytest.mark.parametrize("t", [5, 23, 80])
def test_net_shapes_and_branch_masks(t: int) -> None:
    cfg = SeriesModelConfig.from_dict({**TINY, "rp_size": 32})
    net = PixelSeriesNet(n_channels=2, n_classes=5, cfg=cfg)
    x = torch.randn(4, 2, t)
    assert net(x).shape == (4, 5)
    assert net.rp_input(x).shape == (4, 4, min(t, 32), min(t, 32))
    net.eval()
    only_series = net.features(x, torch.tensor([[1.0, 0.0]]).expand(4, 2))
    assert torch.all(only_series[:, 16:] == 0)


def test_fit_predict_deterministic_and_rp_only() -> None:
    X, y = _make_table(96, seed=1)
    cfg = {**TINY, "epochs": 2, "pretrain_max_epochs": 1, "pretrain_share": 0.5, "budget_s": 600.0, "seed": 3}
    cfg = {**cfg, "branches": ["series", "rp"], "pretrain": True}
    p1 = SeriesClassifier.from_config(cfg).fit(X, y, X[:32]).predict_proba(X[:30])
    p2 = SeriesClassifier.from_config(cfg).fit(X, y, X[:32]).predict_proba(X[:30])
    np.testing.assert_allclose(p1, p2, atol=1e-6)
    assert p1.shape == (30, 4) and np.allclose(p1.sum(1), 1.0)
    rp_only = SeriesClassifier.from_config({**cfg, "branches": ["rp"], "pretrain": False}).fit(X, y)
    assert set(rp_only.predict(X[:10])) <= set(np.unique(y))
    with pytest.raises(InputError, match="two classes"):
        SeriesClassifier.from_config(cfg).fit(X, np.ones(len(X)))


def test_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from training.__main__ import main

    X, y = _make_table(400, seed=2)
    write_series_table(tmp_path / "train.tsv", X[:240], y[:240])
    write_series_table(tmp_path / "test.tsv", X[240:], y[240:])
    out = tmp_path / "report.json"
    rc = main([
        "series", "--train", str(tmp_path / "train.tsv"), "--test", str(tmp_path / "test.tsv"),
        "--out", str(out), "--budget", "14", "--quiet",
        "--set", "series_width=8", "--set", "rp_width=8", "--set", "embed_dim=32", "--set", "ensemble=2",
    ])
    assert rc == 0
    rep = json.loads(out.read_text())
    for key in ("accuracy", "macro_f1", "per_class_f1", "n_train", "n_test", "seconds", "config"):
        assert key in rep
    assert rep["n_train"] == 240 and rep["n_test"] == 160
    assert rep["accuracy"] > 0.7  # chance is 0.25
    assert set(rep["per_class_f1"]) == {"1", "2", "3", "4"}
    assert rep["seconds"] > 0  # wall time is reported; whether the budget holds is measured by the benchmarks
    assert "series: accuracy=" in capsys.readouterr().out


def test_cli_reports_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from training.__main__ import main

    (tmp_path / "a.tsv").write_text("1\t0.1\t0.2\n2\t0.3\n")
    rc = main(["series", "--train", str(tmp_path / "a.tsv"), "--test", str(tmp_path / "a.tsv"), "--quiet"])
    assert rc == 2  # the one error boundary: a user error is exit status 2
    assert "ragged" in capsys.readouterr().err
    X, y = _make_table(20)
    write_series_table(tmp_path / "b.tsv", X, y)
    rc = main(["series", "--train", str(tmp_path / "b.tsv"), "--test", str(tmp_path / "b.tsv"), "--quiet", "--set", "nope=1"])
    assert rc == 2  # the one error boundary: a user error is exit status 2
    assert "'nope'" in capsys.readouterr().err
    # an infinite value is refused (not taken for a gap), in one line naming the file and the line
    (tmp_path / "inf.tsv").write_text("1\t0.1\t0.2\n2\t0.3\t-inf\n")
    rc = main(["series", "--train", str(tmp_path / "inf.tsv"), "--test", str(tmp_path / "b.tsv"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and f"{tmp_path / 'inf.tsv'}, line 2, field 3: infinite value '-inf'" in err
    # an output that cannot be written fails before any work
    (tmp_path / "file").write_text("")
    rc = main(["series", "--train", str(tmp_path / "b.tsv"), "--test", str(tmp_path / "b.tsv"), "--quiet",
               "--out", str(tmp_path / "file" / "report.json")])
    assert rc == 2 and "is a file, not an output folder" in capsys.readouterr().err


def test_config_random_kernel_keys() -> None:
    with pytest.raises(ConfigError, match="random_kernels"):
        SeriesModelConfig(random_kernels="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="rk_folds"):
        SeriesModelConfig(rk_folds=1)
    with pytest.raises(ConfigError, match="rk_max_share"):
        SeriesModelConfig(rk_max_share=1.5)
    cfg = SeriesModelConfig.from_dict({"random_kernels": False, "rk_features": 2000})
    assert SeriesModelConfig.from_dict(cfg.to_dict()) == cfg


def test_random_kernel_member_mixture() -> None:
    X, y = _make_table(160, seed=4)
    cfg = {**TINY, "epochs": 2, "ensemble": 2, "rk_folds": 2, "rk_features": 2000, "random_kernels": True, "budget_s": 600.0,
           "seed": 1, "rk_hydra_groups": 16}
    clf = SeriesClassifier.from_config(cfg).fit(X[:120], y[:120])
    assert clf.rk_transform_ is not None and clf.rk_ridge_ is not None
    assert clf.rk_hydra_ is not None  # competing-kernel counts join the random-kernel features
    assert clf.history_["rk_features"] == clf.rk_transform_.n_features_out_ + clf.rk_hydra_.n_features_out_
    assert clf.rk_ridge_.coef_ is not None and clf.rk_ridge_.coef_.shape[0] == clf.history_["rk_features"]
    parts = clf.predict_proba_parts(X[120:])
    assert set(parts) == {"cnn", "rk"} and parts["rk"].shape == (40, 4)
    p = clf.predict_proba(X[120:])
    assert 0.0 <= clf.cnn_weight_ <= 1.0
    np.testing.assert_allclose(p, clf.cnn_weight_ * parts["cnn"] + (1 - clf.cnn_weight_) * parts["rk"])
    np.testing.assert_allclose(p.sum(1), 1.0)
    h = clf.history_
    assert h["mix_evidence_rows"] == 120  # two members, two folds: every series held out once
    assert h["rk_loo_accuracy"] > 0.8 and np.mean(parts["rk"].argmax(1) == y[120:] - 1) > 0.8  # chance 0.25
    assert np.mean(clf.predict(X[120:]) == y[120:]) > 0.8
    # deterministic for a seed
    again = SeriesClassifier.from_config(cfg).fit(X[:120], y[:120]).predict_proba(X[120:])
    np.testing.assert_allclose(again, p, atol=1e-6)


def test_random_kernel_member_off_or_skipped() -> None:
    X, y = _make_table(96, seed=5)
    base = {**TINY, "epochs": 2, "rk_features": 2000, "budget_s": 600.0}
    no_hydra = SeriesClassifier.from_config(base).fit(X, y)  # the default leaves the competing kernels out
    assert no_hydra.rk_hydra_ is None and no_hydra.history_["rk_hydra_features"] == 0
    assert no_hydra.history_["rk_features"] == no_hydra.rk_transform_.n_features_out_
    with pytest.raises(ConfigError, match="rk_hydra_groups"):
        SeriesModelConfig(rk_hydra_groups=3)
    off = SeriesClassifier.from_config({**base, "random_kernels": False}).fit(X, y)
    assert off.rk_ridge_ is None and off.cnn_weight_ == 1.0
    assert set(off.predict_proba_parts(X[:5])) == {"cnn"}
    skipped = SeriesClassifier.from_config({**base, "random_kernels": True, "rk_max_share": 1e-9}).fit(X, y)
    assert skipped.rk_ridge_ is None and "rk_estimated_seconds" in skipped.history_
    np.testing.assert_allclose(skipped.predict_proba(X[:5]), skipped.predict_proba_parts(X[:5])["cnn"])


def _detail_table(n: int, t: int = 96, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two classes that differ only in a period-2 oscillation: pooling by 4 erases it."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.normal(0.0, 0.3, (n, t))
    X[y == 1] += np.where(np.arange(t) % 2 == 0, 1.0, -1.0)
    return X.astype(np.float32), y + 1


def test_random_kernel_member_sees_long_series_unpooled(monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = _detail_table(160)
    base = {**TINY, "epochs": 1, "rk_features": 1000, "budget_s": 600.0, "max_length": 24, "pretrain": False}
    full = SeriesClassifier.from_config(base).fit(X[:120], y[:120])  # rk_max_length 2048 by default
    assert full.rk_length_ == 96 and full.history_["rk_length"] == 96
    assert full.standardizer_.length == 24  # the CNNs still see the pooled series
    assert np.mean(full.predict_proba_parts(X[120:])["rk"].argmax(1) == y[120:] - 1) > 0.95
    pooled = SeriesClassifier.from_config({**base, "rk_max_length": 24}).fit(X[:120], y[:120])
    assert pooled.rk_length_ == 24
    assert pooled.history_["rk_loo_accuracy"] < 0.75  # the detail is gone: near chance (0.5)
    # too slow at full length for the budget share: falls back to the CNNs' length, not skipped
    from pimc_core.estimators import RandomKernelTransform

    monkeypatch.setattr(RandomKernelTransform, "seconds_per_series", lambda self, Z, n=64: 1e-3 * Z.shape[-1])
    monkeypatch.setattr(SeriesClassifier, "_ridge_seconds_estimate", staticmethod(lambda n, p: 0.0))
    fallback = SeriesClassifier.from_config({**base, "rk_max_share": 0.01}).fit(X[:120], y[:120], predict_size=40)
    assert fallback.rk_ridge_ is not None and fallback.rk_length_ == 24  # 160 × 96 ms > 6 s ≥ 160 × 24 ms
