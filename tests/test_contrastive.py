"""SymmetricInfoNCE: matches a hand computation, learns its temperature, ranks alignment."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pimc_core.models.contrastive import SymmetricInfoNCE


def _hand_loss(a: np.ndarray, b: np.ndarray, tau: float) -> float:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    s = a @ b.T / tau
    n = len(a)

    def ce(m: np.ndarray) -> float:
        return float(np.mean([-(m[i, i] - math.log(np.exp(m[i]).sum())) for i in range(n)]))

    return 0.5 * (ce(s) + ce(s.T))


def test_matches_hand_computation() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    loss = SymmetricInfoNCE(init_temperature=0.5)(torch.tensor(a), torch.tensor(b))
    assert float(loss.detach()) == pytest.approx(_hand_loss(a, b, 0.5), rel=1e-5)


def test_default_temperature_and_clamp() -> None:
    loss = SymmetricInfoNCE()
    assert loss.temperature == pytest.approx(0.07, rel=1e-5)
    with torch.no_grad():
        loss.log_scale.fill_(math.log(1000.0))
    assert loss.temperature == pytest.approx(0.01, rel=1e-5)  # 1 / 100
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    assert float(loss(torch.tensor(a), torch.tensor(b)).detach()) == pytest.approx(_hand_loss(a, b, 0.01), rel=1e-4)


def test_aligned_far_below_shuffled() -> None:
    torch.manual_seed(0)
    z = torch.randn(64, 32)
    loss = SymmetricInfoNCE()
    aligned = float(loss(z, z + 0.01 * torch.randn_like(z)).detach())
    shuffled = float(loss(z, z[torch.randperm(64)]).detach())
    assert aligned < 0.1
    assert shuffled > math.log(64) * 0.5
    assert aligned < shuffled / 10


def test_symmetric_in_its_arguments() -> None:
    torch.manual_seed(0)
    a, b = torch.randn(8, 5), torch.randn(8, 5)
    loss = SymmetricInfoNCE(0.2)
    assert float(loss(a, b).detach()) == pytest.approx(float(loss(b, a).detach()), rel=1e-6)


def test_temperature_is_learnable_or_fixed() -> None:
    learn = SymmetricInfoNCE(learnable=True)
    fixed = SymmetricInfoNCE(learnable=False)
    assert [n for n, _ in learn.named_parameters()] == ["log_scale"]
    assert list(fixed.parameters()) == []
    a = torch.randn(6, 4, requires_grad=True)
    learn(a, torch.randn(6, 4)).backward()
    assert learn.log_scale.grad is not None and a.grad is not None


def test_rejects_bad_shapes_and_temperature() -> None:
    with pytest.raises(ValueError):
        SymmetricInfoNCE()(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError):
        SymmetricInfoNCE(init_temperature=0.0)


def test_sinkhorn_codes_are_balanced_even_when_scores_are_not() -> None:
    """Every row is a distribution and every prototype gets about N / K of the batch, even when
    all samples are closest to the same prototype (the equipartition that prevents collapse)."""
    from pimc_core.models.contrastive import sinkhorn_codes

    g = torch.Generator().manual_seed(0)
    scores = 0.1 * torch.randn(64, 4, generator=g)
    scores[:, 0] += 0.5  # everyone prefers prototype 0
    q = sinkhorn_codes(scores)
    assert torch.allclose(q.sum(1), torch.ones(64), atol=1e-5)
    assert torch.allclose(q.sum(0), torch.full((4,), 16.0), rtol=0.15), q.sum(0)
    assert q.requires_grad is False


def test_swapped_prototypes_cluster_the_shared_content() -> None:
    """Two noisy views of samples from 4 groups: training only 8 prototypes on the swapped
    prediction makes every prototype hold samples of one group only (homogeneity 1 on seeds
    0-7 when this was written) and all 8 in use (the balanced codes), and the loss of matched
    pairs ends far below that of shuffled pairs."""
    from sklearn.metrics import homogeneity_score

    from pimc_core.models.contrastive import SwappedPrototypes

    g = torch.Generator().manual_seed(1)
    centres = torch.randn(4, 8, generator=g) * 2.0
    groups = torch.arange(256) % 4
    z_a = centres[groups] + 0.3 * torch.randn(256, 8, generator=g)
    z_b = centres[groups] + 0.3 * torch.randn(256, 8, generator=g)
    torch.manual_seed(2)
    sw = SwappedPrototypes(8, 8)
    opt = torch.optim.Adam(sw.parameters(), lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        loss = sw(z_a, z_b)
        loss.backward()
        opt.step()
    codes = sw.scores(z_a).argmax(1)
    assert homogeneity_score(groups.numpy(), codes.numpy()) > 0.95
    assert len(set(codes.tolist())) == 8
    with torch.no_grad():
        assert float(sw(z_a, z_b)) < float(sw(z_a, z_b[torch.randperm(256, generator=g)])) - 0.3
    with pytest.raises(ValueError, match="n_prototypes"):
        SwappedPrototypes(8, 1)
