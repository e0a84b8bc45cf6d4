"""Choosing the classifier's inputs on held-out labelled regions: regions, splits, the choice,
and what a fitted model does with it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pimc_core.errors import ConfigError
from pimc_core.fit import FitConfig, fit
from pimc_core.learn.finetune import FinetuneConfig
from pimc_core.learn.input_selection import INPUT_SETS, choose_classifier_inputs, labelled_regions, region_split
from pimc_core.models.model_file import read_metadata
from pimc_core.models.pimc_config import PimcModelConfig
from pimc_core.models.pimc_net import PimcNet
from pimc_core.models.pixel_model import load_pixel_model
from tests.test_fit import TINY, stack  # noqa: F401  (module fixture)


def test_labelled_regions_are_connected_components_per_class():
    lab = np.array([
        [1, 1, 0, 0, 2],
        [0, 0, 1, 0, 2],
        [0, 0, 0, 0, 0],
        [1, 0, 0, 2, 1],
    ])
    reg = labelled_regions(lab)
    assert reg.shape == lab.shape and (reg[lab == 0] == 0).all()
    assert reg[0, 0] == reg[0, 1] == reg[1, 2]  # diagonal neighbours join (8-neighbourhood)
    assert reg[3, 0] != reg[0, 0] and reg[3, 4] != reg[0, 0]
    assert reg[0, 4] == reg[1, 4] != reg[3, 3]
    assert len(np.unique(reg[lab > 0])) == 5
    # adjacent pixels of different classes are different regions
    assert labelled_regions(np.array([[1, 2]])).tolist() in ([[1, 2]], [[2, 1]])


def test_region_split_holds_out_whole_regions():
    region = np.repeat(np.arange(1, 8), 10)  # 7 regions of 10 samples
    labels = np.repeat([1, 1, 1, 2, 2, 3, 4], 10)  # class 3 and 4: one region each
    held = region_split(region, labels, 1 / 3, seed=0)
    for r in range(1, 8):  # never a part of a region
        assert held[region == r].all() or not held[region == r].any()
    assert held[labels == 1].sum() == 10 and held[labels == 2].sum() == 10  # one of 3, one of 2
    assert not held[labels >= 3].any()  # single-region classes stay in training
    assert (region_split(region, labels, 1 / 3, seed=0) == held).all()
    assert region_split(np.ones(5, int), np.ones(5, int), 0.5, 0) is None
    with pytest.raises(ConfigError, match="share"):
        region_split(region, labels, 1.0, 0)


def _toy(n_regions=6, per_region=40, seed=0):
    """4 classes in 6 regions each. The series carry the class (with noise); the patch is a
    bright square at a class-coded position that is right in the training regions and names the
    *next* class in the regions :func:`region_split` holds out with seed 0 (the fine-tuning seed
    of the test): the extreme case of a patch that identifies the labelled fields, not the class."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, 12)
    ys = np.repeat(np.arange(1, 5), n_regions * per_region)
    rs = np.repeat(np.arange(1, 4 * n_regions + 1), per_region)
    held = region_split(rs, ys, 1 / 3, seed=0)
    xs = np.empty((ys.size, 2, 12), np.float32)
    ps = rng.normal(0, 0.05, (ys.size, 3, 5, 5)).astype(np.float32)
    for i, (c, h) in enumerate(zip(ys, held)):
        base = 0.2 + 0.5 * np.exp(-((t - 0.2 - 0.2 * (c - 1)) ** 2) / 0.01)
        xs[i] = np.stack([base, base * 0.8]) + rng.normal(0, 0.3, (2, 12))
        code = (c % 4) if h else (c - 1)  # held out: the next class's code
        ps[i, :, code, code] += 1.0
    return xs, ps, ys, rs


def _net():
    cfg = PimcModelConfig.from_dict({
        "indices": ("ndvi", "evi"), "n_dates": 12, "patch_bands": ("b", "g", "r"), "patch_size": 5, "n_classes": 4,
        "rp_encoder": {"width": 4, "depth": 1, "embed_dim": 8}, "series_encoder": {"width": 4, "depth": 1, "embed_dim": 8},
        "patch_encoder": {"width": 4, "depth": 1, "embed_dim": 8}, "proj_dim": 8})
    torch.manual_seed(0)
    return PimcNet(cfg)


def test_choice_drops_a_patch_that_only_identifies_regions():
    x, p, y, r = _toy()
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    cfg = FinetuneConfig(epochs=30, max_steps=150, batch_size=64, lr=3e-3, seed=0)
    choice = choose_classifier_inputs(net, x, p, y, r, [1, 2, 3, 4], cfg)
    assert set(choice.scores) == set(INPUT_SETS)
    assert choice.held_out_regions == 8 and choice.held_out_pixels == 8 * 40  # 2 of 6 regions per class
    assert choice.scores["temporal"] > choice.scores["all"] + 0.05, choice.scores
    assert choice.inputs == "temporal" and "held-out labelled regions" in choice.reason
    # the network given is not touched
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    # nothing to hold out: the default
    one = choose_classifier_inputs(net, x, p, y, np.ones_like(r), [1, 2, 3, 4], cfg, default="all")
    assert one.inputs == "all" and one.scores == {}
    assert choose_classifier_inputs(net, x, p, y, np.ones_like(r), [1, 2, 3, 4], cfg).inputs == "temporal"  # the safer
    assert choose_classifier_inputs(net, x, None, y, r, [1, 2, 3, 4], cfg).inputs == "temporal"


def test_fitted_model_reads_the_chosen_inputs(stack, tmp_path):  # noqa: F811
    cfg = {**TINY, "forecast": {"enabled": False}, "classifier_inputs": "temporal"}
    out = tmp_path / "t.pimc"
    fit(stack.manifest, stack.labels_sparse, out, config=cfg, progress=False)
    meta = read_metadata(out)
    assert meta["training"]["classify_modalities"] == ["rp", "series"]
    model = load_pixel_model(out)
    assert model.classify_modalities == ("rp", "series")
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 0.8, (6, 3, 10)).astype(np.float32)
    p = rng.uniform(0, 0.3, (6, 5, 5, 5)).astype(np.float32)
    with_patch = model.predict(x, p)
    without = model.predict(x, None)
    np.testing.assert_allclose(with_patch["probabilities"], without["probabilities"], rtol=1e-5, atol=1e-6)
    assert not np.allclose(with_patch["embeddings"], without["embeddings"])  # embeddings keep the patch

    auto = {**TINY, "forecast": {"enabled": False}}
    lines: list[str] = []
    fit(stack.manifest, stack.labels_sparse, tmp_path / "a.pimc", config=auto, progress=False, log=lines.append)
    tr = read_metadata(tmp_path / "a.pimc")["training"]
    assert any(s.startswith("classifier inputs: ") for s in lines)
    assert tr["finetune"]["inputs"]["inputs"] in INPUT_SETS
    assert tr["classify_modalities"] == list(INPUT_SETS[tr["finetune"]["inputs"]["inputs"]])
    with pytest.raises(ConfigError, match="classifier_inputs"):
        FitConfig.from_dict({"classifier_inputs": "patch"})


def test_scattered_points_of_one_field_are_one_region_and_a_tie_keeps_the_temporal_inputs():
    from pimc_core.learn.input_selection import labelled_regions, patch_margin

    lab = np.zeros((40, 40), np.int64)
    lab[2, 2] = lab[2, 7] = lab[6, 9] = 1  # points of one field, steps of 5 and 4 px
    lab[30, 30] = 1  # a field far away
    lab[2, 12] = 2  # another class next to the first field: never the same region
    reg = labelled_regions(lab, reach=5)
    assert reg[2, 2] == reg[2, 7] == reg[6, 9] != reg[30, 30]
    assert reg[2, 12] not in (0, reg[2, 2])
    assert len(np.unique(labelled_regions(lab, reach=4)[lab > 0])) == 4  # the 5-px step is too long now
    assert len(np.unique(labelled_regions(lab)[lab > 0])) == 5  # reach 1: 8-connected pixels only
    # two scores of 1.000 cannot tell the inputs apart; nor can 0.01 on a few regions
    assert patch_margin({"all": 1.0, "temporal": 1.0}, 180) == 0.02
    assert patch_margin({"all": 0.8, "temporal": 0.78}, 4) == pytest.approx(np.sqrt(0.79 * 0.21 / 4))
