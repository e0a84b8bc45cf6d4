"""The series estimators are scikit-learn estimators: clone, get/set_params, parameter checks in
fit, fitted-state checks, Pipeline and cross_val_score; SeriesClassifier's parameters are those
SeriesModelConfig declares."""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.utils import estimator_checks

from pimc_core.errors import ConfigError, InputError
from pimc_core.estimators import (
    CompetingKernelTransform,
    RandomKernelTransform,
    RidgeLOO,
    SeriesClassifier,
    SeriesModelConfig,
)
from tests.test_random_kernels import _bumps
from tests.test_series_model import TINY, _make_table

ESTIMATORS = [SeriesClassifier(), RandomKernelTransform(), CompetingKernelTransform(), RidgeLOO()]


def test_classifier_parameters_are_the_config_fields() -> None:
    sig = inspect.signature(SeriesClassifier.__init__).parameters
    fields = dataclasses.fields(SeriesModelConfig)
    assert list(sig)[1:] == [f.name for f in fields] + ["verbose", "log"]
    for f in fields:
        assert sig[f.name].kind is inspect.Parameter.KEYWORD_ONLY
        assert sig[f.name].default == f.default, f.name
    for name, allowed in SeriesModelConfig._parameter_constraints.items():
        assert SeriesClassifier._parameter_constraints[name] is allowed
    assert set(SeriesModelConfig._parameter_constraints) == {f.name for f in fields}
    # a config and the classifier built from it hold the same values
    cfg = SeriesModelConfig.from_dict({"preset": "pimc", "epochs": 3})
    clf = SeriesClassifier.from_config(cfg, verbose=True)
    assert clf.get_config() == cfg and clf.verbose is True
    assert SeriesClassifier.from_config({"preset": "pimc", "epochs": 3}).get_params() == {**clf.get_params(), "verbose": False}


@pytest.mark.parametrize("est", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_scikit_learn_parameter_conventions(est) -> None:
    name = type(est).__name__
    estimator_checks.check_no_attributes_set_in_init(name, est)
    estimator_checks.check_parameters_default_constructible(name, est)
    estimator_checks.check_get_params_invariance(name, est)
    estimator_checks.check_set_params(name, est)
    estimator_checks.check_do_not_raise_errors_in_init_or_set_params(name, est)
    estimator_checks.check_estimator_cloneable(name, est)


def test_clone_get_params_set_params() -> None:
    clf = SeriesClassifier(branches=["series", "rp"], epochs=3, lr=0.01, log=print)
    twin = clone(clf)
    assert twin is not clf and twin.get_params() == clf.get_params()
    assert twin.branches == ["series", "rp"]  # stored unchanged
    assert twin.set_params(ensemble=2, rk_features=500) is twin
    assert (twin.ensemble, twin.rk_features, clf.ensemble) == (2, 500, 5)
    with pytest.raises(ValueError, match="ensembel"):
        twin.set_params(ensembel=2)
    pipe = Pipeline([("rk", RandomKernelTransform(n_features=500)), ("ridge", RidgeLOO(alphas=[0.1, 1.0]))])
    copy = clone(pipe).set_params(rk__n_features=800, ridge__double_limit=10)
    assert copy.get_params()["rk__n_features"] == 800 and pipe.get_params()["rk__n_features"] == 500


def test_parameters_are_checked_by_fit_not_init() -> None:
    X, y = _make_table(20)
    for params, pattern in [
        ({"lr": -1.0}, r"SeriesClassifier\.lr must be a float in the range .*; got -1\.0"),
        ({"series_kernel": 4}, r"SeriesClassifier\.series_kernel must be odd; got 4"),
        ({"branches": ["rp", "audio"]}, r"SeriesClassifier\.branches must be a non-empty subset"),
        ({"epochs": 0}, r"SeriesClassifier\.epochs must be .*None; got 0"),
        ({"random_kernels": "yes"}, r"SeriesClassifier\.random_kernels must be .*; got 'yes'"),
        ({"verbose": 2}, r"SeriesClassifier\.verbose"),
    ]:
        clf = SeriesClassifier(**params)  # accepted as given
        with pytest.raises(ConfigError, match=pattern):
            clf.fit(X, y)
    with pytest.raises(ConfigError, match=r"RandomKernelTransform\.n_features must be an int in the range \[1, inf\); got 0"):
        RandomKernelTransform(n_features=0).fit(X[:, :10])
    with pytest.raises(ConfigError, match=r"CompetingKernelTransform\.kernels .*; got 1"):
        CompetingKernelTransform(kernels=1).fit(X[:, :10])
    with pytest.raises(ConfigError, match=r"RidgeLOO\.alphas"):
        RidgeLOO(alphas=[]).fit(np.eye(4), [0, 1, 0, 1])
    with pytest.raises(ConfigError, match=r"RidgeLOO\.double_limit .*; got -1"):
        RidgeLOO(double_limit=-1).fit(np.eye(4), [0, 1, 0, 1])


def test_predict_and_transform_need_a_fit() -> None:
    X = np.zeros((3, 12), np.float32)
    for call in (SeriesClassifier().predict, SeriesClassifier().predict_proba, RandomKernelTransform().transform,
                 CompetingKernelTransform().transform, RidgeLOO().predict, RidgeLOO().decision_function):
        with pytest.raises(NotFittedError):
            call(X)


def test_ridge_takes_class_labels() -> None:
    X, y = _bumps(90, seed=3)
    F = RandomKernelTransform(n_features=1000, seed=0).fit_transform(X)
    names = np.array(["early", "middle", "late"])[y]
    by_label = RidgeLOO().fit(F, names)
    assert by_label.classes_.tolist() == ["early", "late", "middle"]  # sorted labels
    idx = np.searchsorted(by_label.classes_, names)
    by_index = RidgeLOO().fit(F, idx, 3)  # the index path: columns are arange(n_classes)
    np.testing.assert_array_equal(by_label.decision_function(F), by_index.decision_function(F))
    np.testing.assert_array_equal(by_label.loo_decision_, by_index.loo_decision_)
    assert set(by_label.predict(F)) <= set(names)
    assert by_label.score(F, names) == np.mean(by_label.predict(F) == names)
    with pytest.raises(InputError, match="indices"):
        RidgeLOO().fit(F, idx + 1, 3)
    with pytest.raises(InputError, match="2 classes"):
        RidgeLOO().fit(F, np.zeros(len(F)))


def test_pipeline_of_random_kernels_and_ridge_cross_validates() -> None:
    X, y = _bumps(150, seed=4)
    labels = np.array(["early", "middle", "late"])[y]
    for transform in (RandomKernelTransform(n_features=1000, seed=0), CompetingKernelTransform(groups=8, seed=0)):
        pipe = Pipeline([("features", transform), ("ridge", RidgeLOO())])
        scores = cross_val_score(pipe, X, labels, cv=3)
        assert scores.shape == (3,) and scores.mean() > 0.8, (type(transform).__name__, scores)  # chance ~1/3
        assert not hasattr(transform, "n_features_out_")  # cross_val_score fitted clones


def test_series_classifier_cross_validates() -> None:
    X, y = _make_table(96, seed=6)
    clf = SeriesClassifier(**TINY, epochs=3, rk_features=400, rk_folds=2, budget_s=600.0, seed=0)
    scores = cross_val_score(clf, X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.6, scores  # chance 0.25
    assert not hasattr(clf, "classes_")  # the folds fitted clones
    fitted = clone(clf).fit(X, y)
    assert fitted.history_["finetune_epochs"] == 3 and fitted.rk_ridge_ is not None
    assert fitted.score(X, y) > 0.6
