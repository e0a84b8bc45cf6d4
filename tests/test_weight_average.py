"""Stochastic weight averaging of the classifier fine-tuning (``finetune.weight_average``,
:class:`pimc_core.learn.loop.WeightAverage`): the network ends with the mean of its weights over the
last share of the steps, integer buffers untouched; 0 leaves the training as it was."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from pimc_core.errors import ConfigError
from pimc_core.learn.finetune import FinetuneConfig, finetune_classifier
from pimc_core.learn.loop import WeightAverage
from tests.toy_data import make_net, toy


def test_the_mean_of_the_steps_from_start_on_is_loaded_and_integer_buffers_are_left():
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    avg = WeightAverage(net, start=3)
    for step in range(1, 6):
        with torch.no_grad():
            net[0].weight.fill_(float(step))
            net[1].running_mean.fill_(10.0 * step)
            net[1].num_batches_tracked.fill_(step)
        avg(step, 0.0)
    assert avg.load() == 3
    assert torch.all(net[0].weight == 4.0)  # the mean of steps 3, 4 and 5
    assert torch.all(net[1].running_mean == 40.0)  # float buffers too
    assert int(net[1].num_batches_tracked) == 5  # the last value, not averaged
    assert WeightAverage(net, start=10).load() == 0  # nothing averaged: nothing changed
    assert torch.all(net[0].weight == 4.0)


def test_finetuning_keeps_the_mean_of_its_last_steps():
    series, patches, labels = toy(n=48, c=2, t=10, b=2, k=3)
    ids = [1, 2, 3, 4]
    cfg = FinetuneConfig(epochs=4, batch_size=16, lr=5e-3, seed=2)
    states = []

    def record(net):
        states.append({k: v.detach().clone() for k, v in net.state_dict().items()})

    plain = make_net(series, patches, n_classes=4)
    hist = finetune_classifier(plain, series, patches, labels, ids, cfg, device="cpu")
    assert "averaged_steps" not in hist

    averaged = make_net(series, patches, n_classes=4)
    hist = finetune_classifier(averaged, series, patches, labels, ids, dataclasses.replace(cfg, weight_average=0.5),
                               device="cpu")
    total = hist["steps"]
    assert total == 12 and hist["averaged_steps"] == 7  # steps 6..12

    # the same run, weights recorded after every step: the averaged network holds their mean over steps 6..12
    import pimc_core.learn.finetune as ft

    seen = make_net(series, patches, n_classes=4)
    real = ft.run_steps

    def spy(*args, after_step=None, **kw):
        def both(done, loss):
            if done >= 6:
                record(seen)
            if after_step is not None:
                after_step(done, loss)
        return real(*args, after_step=both, **kw)

    ft.run_steps = spy
    try:
        finetune_classifier(seen, series, patches, labels, ids, cfg, device="cpu")
    finally:
        ft.run_steps = real
    assert len(states) == 7
    for k, v in averaged.state_dict().items():
        if v.is_floating_point():
            np.testing.assert_allclose(v.numpy(), torch.stack([s[k] for s in states]).mean(0).numpy(),
                                       rtol=1e-5, atol=1e-6, err_msg=k)
    last = {k: v for k, v in plain.state_dict().items()}
    assert any(not torch.equal(averaged.state_dict()[k], last[k]) for k in last if last[k].is_floating_point())


def test_a_share_outside_zero_to_one_is_refused():
    with pytest.raises(ConfigError, match="weight_average"):
        FinetuneConfig(weight_average=1.0)
    with pytest.raises(ConfigError, match="weight_average"):
        FinetuneConfig(weight_average=-0.1)


def test_a_soup_is_the_mean_of_runs_from_the_same_start_with_their_own_seeds():
    series, patches, labels = toy(n=48, c=2, t=10, b=2, k=3)
    ids = [1, 2, 3, 4]
    cfg = FinetuneConfig(epochs=2, batch_size=16, lr=5e-3, seed=2)
    members = []
    for i in range(3):  # the runs a soup of 3 makes, one by one
        net = make_net(series, patches, n_classes=4)
        finetune_classifier(net, series, patches, labels, ids, dataclasses.replace(cfg, seed=2 + 7919 * i), device="cpu")
        members.append(net.state_dict())
    head = [k for k, v in members[0].items() if k.startswith("classifier") and v.is_floating_point()]
    assert any(not torch.equal(members[0][k], members[1][k]) for k in head)  # the seeds give other weights
    soup = make_net(series, patches, n_classes=4)
    hist = finetune_classifier(soup, series, patches, labels, ids, dataclasses.replace(cfg, soup=3), device="cpu")
    assert hist["soup"] == 3 and hist["steps"] == 3 * 6
    for k, v in soup.state_dict().items():
        if v.is_floating_point():
            np.testing.assert_allclose(v.numpy(), torch.stack([m[k] for m in members]).mean(0).numpy(),
                                       rtol=1e-5, atol=1e-6, err_msg=k)
    one = make_net(series, patches, n_classes=4)
    finetune_classifier(one, series, patches, labels, ids, dataclasses.replace(cfg, soup=1), device="cpu")
    for k, v in one.state_dict().items():  # soup 1 is the plain run
        assert torch.equal(v, members[0][k]), k
