"""Spatial cross-validation at fit time: folds of whole labelled regions, pooled out-of-fold
figures, the same folds choosing the classifier's inputs; stored in the model file, printed by
``pimc fit`` and ``pimc info``; said plainly when the labels do not allow it."""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest
import rasterio
from safetensors.numpy import load_file

from pimc_core.cli import main
from pimc_core.datasets.synthetic import make_synthetic
from pimc_core.errors import ConfigError
from pimc_core.fit import FitConfig, fit
from pimc_core.learn.input_selection import labelled_regions
from pimc_core.learn.spatial_cv import confusion_table, cross_validate, cv_blocker, describe, map_folds, region_folds
from pimc_core.models.model_file import read_metadata
from tests.test_fit import TINY

CFG = {**TINY, "data": {**TINY["data"], "patch_size": 3}, "cv_folds": 3}


def _regions(n_classes=3, per_class=4, size=10, seed=0):
    """(region, labels): ``per_class`` regions of ``size`` samples for each class, shuffled."""
    region = np.repeat(np.arange(n_classes * per_class), size)
    labels = region // per_class + 1
    p = np.random.default_rng(seed).permutation(region.size)
    return region[p], labels[p]


def test_folds_never_split_a_region():
    region, labels = _regions(n_classes=3, per_class=5)
    for seed in (0, 1, 2):
        fold = region_folds(region, labels, 4, seed)
        assert sorted(np.unique(fold)) == [0, 1, 2, 3]
        for r in np.unique(region):
            assert np.unique(fold[region == r]).size == 1  # a region lies in one fold
        for f in range(4):  # every fold's training keeps every class (each has 5 regions)
            assert set(np.unique(labels[fold != f])) == {1, 2, 3}
    assert (region_folds(region, labels, 4, 7) == region_folds(region, labels, 4, 7)).all()
    two = np.repeat([0, 1], 10)
    assert np.unique(region_folds(two, two + 1, 5, 0)).size == 2  # k: at most the regions
    with pytest.raises(ConfigError, match="cv_folds"):
        region_folds(region, labels, 1, 0)


def test_cv_blocker_names_the_class_with_one_field():
    region, labels = _regions(n_classes=2, per_class=2)
    assert cv_blocker(region, labels) is None
    labels = labels.copy()
    region = np.where(labels == 2, 99, region)  # class 2: one region
    msg = cv_blocker(region, labels, {2: "maize"})
    assert msg.startswith("spatial CV not possible: class maize has 1 field (")
    assert cv_blocker(np.zeros(4), np.array([1, 1, 2, 2])).startswith(
        "spatial CV not possible: classes 1, 2 have 1 field each")


def test_out_of_fold_predictions_never_see_their_region():
    """A classifier that recognises *regions* (1-NN on a region signature) is perfect on random
    pixels and useless on held-out regions: the spatial estimate shows it, pixel folds do not."""
    region, labels = _regions(n_classes=3, per_class=4, size=12)
    rng = np.random.default_rng(1)
    sig = rng.normal(size=(region.max() + 1, 8))
    x = sig[region] + 0.01 * rng.normal(size=(region.size, 8))  # no class signal, only the region's
    ids = [1, 2, 3]

    def fit_fold(train, test):
        assert not set(region[train]) & set(region[test]) or seen_pixels[0]
        d = ((x[test][:, None] - x[train][None]) ** 2).sum(-1)
        near = labels[train][d.argmin(1)]
        return {"temporal": np.eye(3)[near - 1]}

    seen_pixels = [False]
    res = cross_validate(fit_fold, labels, region, ids, folds=4, seed=0)["temporal"]
    assert res.folds == 4 and res.regions == 12 and res.pixels == region.size
    assert np.asarray(res.confusion).sum() == region.size  # each pixel predicted once
    assert res.accuracy < 0.6
    seen_pixels[0] = True  # random-pixel folds: every pixel its own group
    pix = cross_validate(fit_fold, labels, np.arange(region.size), ids, folds=4, seed=0)["temporal"]
    assert pix.accuracy == 1.0  # optimistic: the region is in training
    s = res.summary()
    assert set(s) >= {"accuracy", "accuracy_se", "macro_f1", "per_class_recall", "confusion", "folds", "regions"}
    assert s["accuracy_se"] == pytest.approx(np.std(s["fold_accuracy"], ddof=1) / 2, abs=1e-3)


def _which_fold(train, test):
    """A picklable fold fit: the held-out samples' indices and the worker's process id."""
    return np.flatnonzero(test), os.getpid()


def test_map_folds_runs_folds_in_worker_processes_in_fold_order():
    fold = np.array([2, 0, 1, 0, 2, -1, 1, 2])
    here = list(map_folds(_which_fold, fold, jobs=1))
    there = list(map_folds(_which_fold, fold, jobs=2))
    assert [t.tolist() for t, _ in here] == [[1, 3], [2, 6], [0, 4, 7]]  # fold order; -1 never held out
    assert [t.tolist() for t, _ in there] == [t.tolist() for t, _ in here]
    assert {pid for _, pid in here} == {os.getpid()} and os.getpid() not in {pid for _, pid in there}


def _dies_in_a_worker(parent, train, test):
    """A fold fit whose worker process dies (as one the kernel kills for memory would)."""
    if os.getpid() != parent:
        os._exit(1)
    return np.flatnonzero(test)


def test_folds_run_here_when_a_worker_process_dies():
    fold = np.array([0, 1, 2, 0, 1, 2])
    lines: list[str] = []
    got = list(map_folds(functools.partial(_dies_in_a_worker, os.getpid()), fold, jobs=2, log=lines.append))
    assert [t.tolist() for t in got] == [[0, 3], [1, 4], [2, 5]]
    assert len(lines) == 1 and lines[0].startswith("spatial CV: worker processes failed (TerminatedWorkerError")
    assert lines[0].endswith("the 3 folds left run in this process")


def test_cv_folds_is_declared_and_checked():
    assert FitConfig().cv_folds == 5
    assert FitConfig().cv_jobs == 0 and FitConfig.from_dict({"cv_jobs": 2}).cv_jobs == 2
    with pytest.raises(ConfigError, match="cv_jobs"):
        FitConfig.from_dict({"cv_jobs": -1})
    assert FitConfig.from_dict({"cv_folds": 0}).cv_folds == 0
    with pytest.raises(ConfigError, match="cv_folds"):
        FitConfig.from_dict({"cv_folds": 1})
    with pytest.raises(ConfigError, match="cv_folds"):
        FitConfig.from_dict({"cv_folds": -2})


def two_fields_per_class(tmp_path):
    """A 32 x 32 px, 4-class stack and labels of two separate 5 x 5 px patches of every class
    (two regions per class at a reach of 6 px): ``(stack, label raster path)``."""
    s = make_synthetic(tmp_path / "syn", size=32, n_dates=10, seed=4, n_classes=4)
    with rasterio.open(s.labels) as src:
        a, prof = src.read(1), src.profile
    out = np.zeros_like(a)
    for c in np.unique(a[a > 0]):
        rr, cc = np.nonzero(a == c)
        far = int(np.maximum(abs(rr - rr[0]), abs(cc - cc[0])).argmax())
        for i in (0, far):
            win = (abs(rr - rr[i]) <= 2) & (abs(cc - cc[i]) <= 2)
            out[rr[win], cc[win]] = c
    path = tmp_path / "two_fields.tif"
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(out, 1)
    reg = labelled_regions(out, 6)
    assert all(np.unique(reg[out == c]).size == 2 for c in np.unique(out[out > 0]))
    return s, path


@pytest.fixture(scope="module")
def two_fields(tmp_path_factory):
    return two_fields_per_class(tmp_path_factory.mktemp("cv"))


def test_fit_stores_the_spatial_cv_and_info_prints_it(two_fields, tmp_path, capsys):
    s, labels = two_fields
    out = tmp_path / "m.pimc"
    lines: list[str] = []
    res = fit(s.manifest, labels, out, classes=s.classes_json, config=CFG, progress=False, log=lines.append)
    cv = res.spatial_cv
    assert cv["folds"] == 3 and cv["regions"] == 8 and cv["pixels"] == res.n_labelled
    assert np.asarray(cv["confusion"]).shape == (4, 4) and np.asarray(cv["confusion"]).sum() == res.n_labelled
    assert cv["inputs"] == res.finetune["inputs"]["inputs"]  # the same folds chose the inputs
    assert "out of fold, 3 folds over 8 labelled regions" in res.finetune["inputs"]["reason"]
    assert sum(line.startswith("spatial CV: fold") for line in lines) == 3
    assert f"held-out accuracy {cv['accuracy']:.2f} ± {cv['accuracy_se']:.2f} (3 folds, 8 fields)" in res.summary()
    assert "training accuracy" in res.summary()
    stored = read_metadata(out)["training"]
    assert stored["spatial_cv"] == cv  # read back as written
    assert "spatial_cv" in stored["stages"]

    assert main(["info", str(out)]) == 0
    printed = capsys.readouterr().out
    assert describe(cv) in printed and "on the training pixels" in printed
    assert "\n".join("  " + t for t in confusion_table(cv, {str(c["id"]): c["name"] for c in res.classes})) in printed


def test_fit_with_the_forest_member_scores_the_mix(two_fields, tmp_path):
    s, labels = two_fields
    cfg = {**CFG, "ensemble": {"forest_weight": 0.9, "trees": 10, "self_training": False}}
    res = fit(s.manifest, labels, tmp_path / "f.pimc", config=cfg, progress=False)
    cv = res.spatial_cv
    plain = fit(s.manifest, labels, tmp_path / "p.pimc", config=CFG, progress=False).spatial_cv
    assert cv["folds"] == 3 and cv["confusion"] != plain["confusion"]  # the forest's predictions, not the network's


def test_folds_in_worker_processes_give_the_same_model(two_fields, tmp_path):
    """``cv_jobs: 2`` fits two folds at a time in worker processes: the same held-out figures, the
    same forest weight choice and the same weights as one fold after another here."""
    s, labels = two_fields
    cfg = {**CFG, "ensemble": {"forest_weight": 0.5, "trees": 10, "network_rounds": 1}}
    runs, logs = {}, {}
    for jobs in (1, 2):
        logs[jobs] = []
        runs[jobs] = fit(s.manifest, labels, tmp_path / f"j{jobs}.pimc", config={**cfg, "cv_jobs": jobs},
                         progress=False, log=logs[jobs].append)
    assert runs[1].spatial_cv == runs[2].spatial_cv and runs[1].spatial_cv["folds"] == 3
    assert runs[1].ensemble == runs[2].ensemble and runs[1].ensemble["choice"]["accuracy"]
    assert "spatial CV: 2 folds at a time in worker processes" in logs[2]
    assert not any("worker processes" in line for line in logs[1])
    assert [ln for ln in logs[2] if ln.startswith("spatial CV: fold")] == \
        [ln for ln in logs[1] if ln.startswith("spatial CV: fold")]
    w1, w2 = load_file(str(tmp_path / "j1.pimc")), load_file(str(tmp_path / "j2.pimc"))
    assert w1.keys() == w2.keys() and all(np.array_equal(w1[k], w2[k]) for k in w1)

    # the default (cv_jobs 0, threads 0): one fold per core, whatever the machine's load average says
    lines: list[str] = []
    auto = fit(s.manifest, labels, tmp_path / "j0.pimc", config={**cfg, "threads": 0}, progress=False,
               log=lines.append)
    cores = min(os.cpu_count() or 1, 3)
    assert ("spatial CV: %d folds at a time in worker processes" % cores in lines) == (cores > 1)
    assert auto.spatial_cv == runs[1].spatial_cv


def test_cli_fit_prints_the_held_out_accuracy_or_why_not(two_fields, tmp_path, capsys):
    import yaml

    s, labels = two_fields
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(CFG))
    assert main(["fit", str(s.manifest), "--labels", str(labels), "--out", str(tmp_path / "a.pimc"),
                 "--config", str(cfg), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "held-out accuracy" in out and "(3 folds, 8 fields)" in out

    # the full labels: class 3 is one field at this reach, so no spatial CV, said so; no pixel fallback
    assert main(["fit", str(s.manifest), "--labels", str(s.labels), "--classes", str(s.classes_json),
                 "--out", str(tmp_path / "b.pimc"), "--config", str(cfg)]) == 0
    out, err = capsys.readouterr()
    assert "spatial CV not possible: class soybean has 1 field" in out
    assert "spatial CV not possible: class soybean has 1 field" in err  # the log line too
    stored = read_metadata(tmp_path / "b.pimc")["training"]["spatial_cv"]
    assert stored["folds"] == 0 and stored["reason"].startswith("spatial CV not possible")

    assert main(["fit", str(s.manifest), "--labels", str(labels), "--out", str(tmp_path / "c.pimc"),
                 "--config", str(cfg), "--set", "cv_folds=0", "--quiet"]) == 0
    assert "held-out accuracy: not estimated (cv_folds: 0)" in capsys.readouterr().out
    assert read_metadata(tmp_path / "c.pimc")["training"]["spatial_cv"] is None
