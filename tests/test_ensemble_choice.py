"""The forest weight of the classifier ensemble chosen on the spatial CV's held-out fields
(``ensemble.forest_weight: auto``): the rule, and ``pimc fit`` choosing the forest when the
network is useless and the network when the forest is."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pimc_core.errors import ConfigError
from pimc_core.fit import fit
from pimc_core.fit import pipeline as steps
from pimc_core.learn.ensemble import EnsembleConfig
from pimc_core.learn.ensemble_choice import WeightChoice, choose_forest_weight, pick_weight, weight_scores
from pimc_core.models.model_file import read_metadata
from pimc_core.models.pixel_model import load_pixel_model
from tests.test_spatial_cv import CFG, two_fields  # noqa: F401 - the module fixture

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _onehot(idx: np.ndarray, k: int, conf: float) -> np.ndarray:
    p = np.full((idx.size, k), (1 - conf) / (k - 1))
    p[np.arange(idx.size), idx] = conf
    return p


def test_weight_scores_pool_and_split_by_fold():
    y = np.array([0, 1, 0, 1])
    fold = np.array([0, 0, 1, 1])
    net = _onehot(np.array([0, 1, 1, 0]), 2, 0.9)  # right on fold 0, wrong on fold 1
    forest = _onehot(np.array([0, 0, 0, 1]), 2, 0.6)  # 3 of 4
    s = weight_scores(y, fold, net, forest, [0.0, 1.0])
    assert s[0.0] == (0.5, [1.0, 0.0]) and s[1.0] == (0.75, [0.5, 1.0])


def test_pick_weight_takes_the_best_unless_the_folds_cannot_tell():
    clear = {0.0: (0.60, [0.58, 0.60, 0.62]), 0.5: (0.80, [0.79, 0.80, 0.81]), 1.0: (0.90, [0.89, 0.90, 0.91])}
    assert pick_weight(clear, prefer=0.5, tolerance=1.0)[0] == 1.0  # 0.10 ahead, SE 0.0: separable
    noisy = {0.0: (0.86, [0.70, 0.90, 0.98]), 0.5: (0.85, [0.75, 0.85, 0.95]), 1.0: (0.80, [0.95, 0.60, 0.85])}
    w, why = pick_weight(noisy, prefer=0.5, tolerance=1.0)
    assert w == 0.5 and "within 1 SE of the best (0: 0.860)" in why  # level with the best: the preferred one
    assert pick_weight(noisy, prefer=0.5, tolerance=0.0)[0] == 0.0  # no tolerance: the best
    assert pick_weight(noisy, prefer=1.0, tolerance=1.0)[0] == 1.0  # 1.0 is within 1 SE of 0.0 too
    tie = {0.25: (0.9, [0.9, 0.9]), 0.75: (0.9, [0.9, 0.9])}
    assert pick_weight(tie, prefer=1.0, tolerance=0.0)[0] == 0.75  # equal: nearest the preferred


def test_choice_follows_the_better_member_on_arrays():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 300)
    fold = np.repeat(np.arange(5), 60)
    good = _onehot(y, 4, 0.7)
    useless = _onehot(rng.integers(0, 4, 300), 4, 0.97)  # confidently random
    to_forest = choose_forest_weight(y, fold, useless, good, WEIGHTS, prefer=0.5, tolerance=1.0)
    assert to_forest.weight >= 0.75 and to_forest.scores[1.0][0] == 1.0 and to_forest.scores[0.0][0] < 0.4
    to_net = choose_forest_weight(y, fold, good, useless, WEIGHTS, prefer=0.5, tolerance=1.0)
    assert to_net.weight <= 0.25 and to_net.scores[0.0][0] == 1.0
    back = WeightChoice.scores_from_summary(to_net.summary())
    assert back == to_net.scores


def test_the_stored_summary_makes_the_same_choice_on_a_one_fold_tie():
    """One fold of five differs by one pixel in 7: the weight is exactly 1 SE behind the best, so a
    rounded summary could flip the choice; the stored one reproduces it."""
    y = np.zeros(35, int)
    fold = np.repeat(np.arange(5), 7)
    p_net = _onehot(y, 2, 0.9)
    p_for = p_net.copy()
    p_for[7] = [0.0, 1.0]  # the forest misses one pixel of fold 1
    c = choose_forest_weight(y, fold, p_net, p_for, (0.0, 0.5, 1.0), prefer=0.5, tolerance=1.0)
    assert c.weight == 0.5  # within 1 SE of the network alone: the preferred weight
    stored = json.loads(json.dumps(c.summary()))  # as the model file holds it
    assert pick_weight(WeightChoice.scores_from_summary(stored), 0.5, 1.0)[0] == c.weight


def test_auto_and_candidates_are_checked():
    assert EnsembleConfig(forest_weight="auto").enabled and EnsembleConfig(forest_weight="auto").pseudo_mix == 0.5
    assert EnsembleConfig().enabled and not EnsembleConfig(forest_weight=0).enabled
    assert EnsembleConfig(forest_weight=0.3).pseudo_mix == 0.3
    with pytest.raises(ConfigError, match="ensemble.forest_weight"):
        EnsembleConfig(forest_weight="best")
    with pytest.raises(ConfigError, match="ensemble.candidates"):
        EnsembleConfig(candidates=[0.0, 1.5])
    with pytest.raises(ConfigError, match="ensemble.prefer"):
        EnsembleConfig(prefer=-0.1)


class _Oracle:
    """A stand-in for the network's probabilities: right (``conf`` on the true class) or, with
    ``useless``, confidently random."""

    def __init__(self, useless: bool, conf: float):
        self.useless, self.conf, self.rng = useless, conf, np.random.default_rng(0)

    def __call__(self, net, samples, *, device, modalities=None):
        k = net.cfg.n_classes
        if self.useless or samples.labels is None:
            return _onehot(self.rng.integers(0, k, len(samples)), k, 0.97)
        return _onehot(np.asarray(samples.labels) - 1, k, self.conf)


def _fit(stack, tmp_path, name, **ensemble):
    s, labels = stack
    lines: list[str] = []
    cfg = {**CFG, "ensemble": {"forest_weight": "auto", "trees": 30, **ensemble}}
    res = fit(s.manifest, labels, tmp_path / name, config=cfg, progress=False, log=lines.append)
    return res, read_metadata(res.path)["training"], lines


def test_fit_auto_picks_the_forest_when_the_network_is_useless(two_fields, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setattr(steps, "classifier_proba", _Oracle(useless=True, conf=0.97))
    res, tr, lines = _fit(two_fields, tmp_path, "forest.pimc")
    choice = tr["ensemble"]["choice"]
    assert choice["weight"] >= 0.75 and tr["ensemble"]["forest_weight"] == choice["weight"]
    assert choice["accuracy"]["1"] > choice["accuracy"]["0"] + 0.15
    assert set(choice["accuracy"]) == {"0", "0.25", "0.5", "0.75", "1"} and len(choice["fold_accuracy"]["1"]) == 3
    assert any(line.startswith(f"forest weight {choice['weight']:g} (") for line in lines)  # pimc fit prints it
    assert f"forest weight {choice['weight']:g}" in res.summary()
    assert load_pixel_model(res.path).forest_weight == choice["weight"]  # the map mixes at the chosen weight
    # the stored held-out figures are of the chosen mix (replayed on the same folds)
    assert tr["spatial_cv"]["accuracy"] == pytest.approx(choice["accuracy"][f"{choice['weight']:g}"], abs=1e-4)


def test_fit_auto_picks_the_network_when_the_forest_is_useless(two_fields, tmp_path, monkeypatch):  # noqa: F811
    from pimc_core.models.forest import ArrayForest

    rng = np.random.default_rng(1)
    monkeypatch.setattr(steps, "classifier_proba", _Oracle(useless=False, conf=0.4))
    monkeypatch.setattr(ArrayForest, "predict_proba", lambda self, x: _onehot(rng.integers(0, 4, len(x)), 4, 0.97))
    res, tr, _ = _fit(two_fields, tmp_path, "net.pimc")
    choice = tr["ensemble"]["choice"]
    assert choice["accuracy"]["0"] == 1.0 and choice["accuracy"]["1"] < 0.6 and choice["weight"] == 0
    model = load_pixel_model(res.path)
    assert model.forest_weight == choice["weight"] and (model.forest is None) == (choice["weight"] == 0)


def test_a_configured_weight_is_kept_and_the_candidates_still_scored(two_fields, tmp_path):  # noqa: F811
    res, tr, lines = _fit(two_fields, tmp_path, "fixed.pimc", forest_weight=0.5, trees=5)
    choice = tr["ensemble"]["choice"]
    assert choice["weight"] == 0.5 and choice["reason"].startswith("configured (spatial CV would take")
    assert tr["ensemble"]["forest_weight"] == 0.5 and len(choice["accuracy"]) == 5
    assert "forest weight 0.5 (configured)" in res.summary()  # not "chosen": the folds only scored it


def test_auto_without_spatial_cv_takes_the_preferred_weight(two_fields, tmp_path):  # noqa: F811
    s, labels = two_fields
    cfg = {**CFG, "cv_folds": 0, "ensemble": {"forest_weight": "auto", "trees": 5, "prefer": 0.75}}
    lines: list[str] = []
    res = fit(s.manifest, labels, tmp_path / "nocv.pimc", config=cfg, progress=False, log=lines.append)
    ens = read_metadata(res.path)["training"]["ensemble"]
    assert ens["forest_weight"] == 0.75 and ens["choice"]["accuracy"] == {}
    assert "forest weight 0.75 (no spatial CV (cv_folds: 0): the preferred weight)" in lines
    assert load_pixel_model(res.path).forest_weight == 0.75
    assert "forest weight 0.75 (no held-out fields to choose on)" in res.summary()


def test_with_a_single_field_class_the_weight_is_chosen_on_the_other_classes(two_fields, tmp_path,  # noqa: F811
                                                                              monkeypatch):
    import rasterio

    from pimc_core.fit.validation import partial_folds
    from pimc_core.learn.input_selection import labelled_regions

    s, labels = two_fields
    with rasterio.open(labels) as src:
        a, prof = src.read(1), src.profile
    reg = labelled_regions(a, 6)
    a[reg == np.unique(reg[a == 1])[0]] = 0  # class 1 keeps one field: spatial CV of every class is not possible
    one = tmp_path / "one_field.tif"
    with rasterio.open(one, "w", **prof) as dst:
        dst.write(a, 1)
    reg = labelled_regions(a, 6)
    fold = partial_folds(reg[a > 0], a[a > 0], 3, 0)
    assert (fold[a[a > 0] == 1] == -1).all() and set(fold[a[a > 0] != 1]) == {0, 1, 2}
    assert partial_folds(np.array([1, 1, 2]), np.array([1, 1, 2]), 3, 0) is None
    # one class with two fields is not enough to choose on (its pixels alone tell little)
    assert partial_folds(np.array([1, 3, 2]), np.array([1, 1, 2]), 3, 0) is None

    from pimc_core.models.forest import ArrayForest

    rng = np.random.default_rng(1)
    monkeypatch.setattr(steps, "classifier_proba", _Oracle(useless=False, conf=0.4))
    monkeypatch.setattr(ArrayForest, "predict_proba", lambda self, x: _onehot(rng.integers(0, 4, len(x)), 4, 0.97))
    lines: list[str] = []
    cfg = {**CFG, "ensemble": {"forest_weight": "auto", "trees": 30, "prefer": 1.0}}
    res = fit(s.manifest, one, tmp_path / "one.pimc", config=cfg, progress=False, log=lines.append)
    assert res.spatial_cv["reason"].startswith("spatial CV not possible: class")
    choice = read_metadata(res.path)["training"]["ensemble"]["choice"]
    assert choice["weight"] == 0 and choice["accuracy"]["0"] == 1.0  # not the preferred 1.0: the folds can tell
    assert choice["reason"].endswith("(classes with 2 fields or more)")
    assert len(choice["fold_accuracy"]["1"]) == 3 and sum(line.startswith("spatial CV: fold") for line in lines) == 3


def test_a_configured_weight_skips_the_partial_cv(two_fields, tmp_path):  # noqa: F811
    """Spatial CV blocked by a one-field class and a configured weight: no fold fine-tunings for a
    weight that is not chosen anyway; the summary says the weight is configured."""
    import rasterio

    from pimc_core.learn.input_selection import labelled_regions

    s, labels = two_fields
    with rasterio.open(labels) as src:
        a, prof = src.read(1), src.profile
    reg = labelled_regions(a, 6)
    a[reg == np.unique(reg[a == 1])[0]] = 0  # class 1 keeps one field
    one = tmp_path / "one_field.tif"
    with rasterio.open(one, "w", **prof) as dst:
        dst.write(a, 1)
    lines: list[str] = []
    cfg = {**CFG, "ensemble": {"forest_weight": 0.5, "trees": 30}}
    res = fit(s.manifest, one, tmp_path / "one.pimc", config=cfg, progress=False, log=lines.append)
    assert res.spatial_cv["reason"].startswith("spatial CV not possible: class")
    assert not any(line.startswith("spatial CV: fold") for line in lines)
    choice = read_metadata(res.path)["training"]["ensemble"]["choice"]
    assert choice["weight"] == 0.5 and choice["reason"].startswith("configured (no spatial CV: spatial CV not possible")
    assert choice["accuracy"] == {} and "forest weight 0.5 (configured)" in res.summary()
