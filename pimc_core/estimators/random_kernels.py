"""Random convolutional-kernel features and a ridge classifier with exact leave-one-out scores.

The idea follows MiniRocket (Dempster, Schmidt, Webb, KDD 2021) and MultiRocket (Tan, Dempster,
Bergmeir, Webb, DMKD 2022); this is our own vectorised re-implementation of what those papers
describe, not a port of their code:

* **Kernels** — all 84 kernels of length 9 whose weights take two values: ``-1`` at six
  positions and ``2`` at three (every choice of the three). The weights sum to zero, so a
  kernel's response ignores the series level and sees only its shape.
* **Dilations** — exponentially spaced from 1 to ``(T - 1) / 8`` (the widest that still fits
  the series); each dilation gets a number of features proportional to how often it comes up in
  the exponential grid. Half of the (dilation, kernel) pairs use zero padding ("same" output
  length), the other half only the positions where the kernel lies inside the series.
* **Biases** — for each (dilation, kernel) pair, quantiles of its response on one random
  training series; the quantile levels follow the low-discrepancy sequence ``frac(j * phi)``.
* **Pooling** — for every bias ``b`` and response ``c_t``: *PPV*, the proportion of positions
  where ``c_t > b``; *MPV*, the mean of ``c_t - b`` over those positions; *MIPV*, the mean
  (relative) position of those positions (−1 when there are none); *LSPV*, the longest run of
  consecutive such positions (relative to the length).
* **Representations** — the series and its first differences, each with its own kernels'
  biases (MultiRocket's second view).

Speed: PPV, MPV and MIPV come from one sort of each response (``searchsorted`` of the biases
into the sorted values, suffix sums of the sorted values and of their positions), so their cost
grows with ``T log T`` per (series, dilation, kernel) rather than with the number of biases;
only LSPV needs a pass over ``biases × T``. Multi-channel series (``C > 1``): each
(dilation, kernel) pair convolves the sum of a random, non-empty subset of the channels.

Measured against aeon 1.6.0's MiniRocket and MultiRocket (``benchmarks/bench_series_table.py``,
docs/BENCHMARKS.md: on the generated 24-class table this transform + :class:`~pimc_core.estimators.ridge.RidgeLOO`
scores 0.834 in 35 s, MiniRocket 0.838 in 43 s, MultiRocket 0.832 in 177 s). Own code because
aeon needs numpy >= 2 while the GDAL bindings PIMC runs with need numpy < 2 (aeon lives in a
separate benchmark environment), and because the series classifier plans its budget with the
measured cost of these features (:meth:`SeriesFeatureTransform.seconds_per_series`).

:class:`SeriesFeatureTransform` is the base the kernel transforms share (scikit-learn
transformer, parameter checks, series input, fitted-shape check, timing);
:class:`~pimc_core.estimators.competing_kernels.CompetingKernelTransform` is the Hydra-style one.
"""

from __future__ import annotations

import itertools
import math
import time
from numbers import Integral
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from pimc_core.config import Interval, check_params
from pimc_core.errors import ConfigError, InputError

__all__ = [
    "KLEN",
    "POOLINGS",
    "RandomKernelTransform",
    "SeriesFeatureTransform",
    "dilation_plan",
    "kernel_weights",
]

#: Pooling operators of :class:`RandomKernelTransform`.
POOLINGS = ("ppv", "mpv", "mipv", "lspv")
KLEN = 9
_N_KERNELS = 84
_PHI = (math.sqrt(5.0) - 1.0) / 2.0  # golden-ratio fraction: low-discrepancy quantile levels


def kernel_weights() -> np.ndarray:
    """The 84 two-valued kernels: ``(84, 9)`` float32, ``-1`` with ``2`` at three positions."""
    w = -np.ones((_N_KERNELS, KLEN), dtype=np.float32)
    for i, pos in enumerate(itertools.combinations(range(KLEN), 3)):
        w[i, list(pos)] = 2.0
    return w


def dilation_plan(length: int, per_kernel: int, max_dilations: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Dilations and the number of biases (features per kernel) at each.

    Args:
        length: Series length ``T``.
        per_kernel: Features per kernel over all dilations (≥ 1).
        max_dilations: Most distinct grid points.

    Returns:
        ``(dilations, counts)``: int arrays of the same length, ``counts.sum() == per_kernel``.
    """
    per_kernel = max(1, int(per_kernel))
    top = max(1.0, (length - 1) / (KLEN - 1))
    points = min(per_kernel, max_dilations)
    grid = np.floor(2.0 ** np.linspace(0.0, math.log2(top), points)).astype(np.int64)
    dilations, mult = np.unique(grid, return_counts=True)
    counts = np.floor(mult * per_kernel / points).astype(np.int64)
    rest = per_kernel - int(counts.sum())
    i = 0
    while rest > 0:  # the remainder goes to the short dilations first
        counts[i % len(counts)] += 1
        rest -= 1
        i += 1
    keep = counts > 0
    return dilations[keep], counts[keep]


class SeriesFeatureTransform(TransformerMixin, BaseEstimator):
    """Base of the kernel transforms: series ``(N, C, T)`` → features ``(N, n_features_out_)``.

    A scikit-learn transformer: parameters checked in ``fit`` against ``_parameter_constraints``
    (:func:`pimc_core.config.check_params`) and the subclass's ``_check`` rules; ``transform``
    needs a fitted transform and series of the fitted ``(C, T)``.
    """

    _parameter_constraints: dict = {}

    def _check(self) -> None:
        """Rules that tie parameters together (subclasses); raise ConfigError."""

    def _check_parameters(self) -> None:
        check_params(self)
        self._check()

    @staticmethod
    def _as_3d(X: np.ndarray | torch.Tensor) -> torch.Tensor:
        """``X`` as a float32 ``(N, C, T)`` tensor; InputError for other shapes or non-finite values."""
        x = torch.as_tensor(np.asarray(X, dtype=np.float32))
        if x.ndim == 2:
            x = x[:, None, :]
        if x.ndim != 3 or x.shape[0] < 1 or x.shape[-1] < 1:
            raise InputError(f"series must have shape (N, T) or (N, C, T); got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise InputError("random-kernel features need finite series (fill the gaps first)")
        return x

    def _fitted_input(self, X: np.ndarray | torch.Tensor) -> torch.Tensor:
        """``X`` as ``(N, C, T)``, checked against the fitted state and its ``(C, T)``."""
        check_is_fitted(self)
        x = self._as_3d(X)
        if x.shape[1] != self.n_channels_ or x.shape[2] != self.length_:
            fitted = (self.n_channels_, self.length_)
            raise InputError(f"series of shape {tuple(x.shape[1:])}; the transform was fitted on {fitted}")
        return x

    def _batch_features(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(B, n_features_out_)`` of a batch of fitted-shape series ``(B, C, T)`` (subclasses)."""
        raise NotImplementedError

    @torch.no_grad()
    def transform(self, X: np.ndarray | torch.Tensor) -> np.ndarray:
        """Features ``(N, n_features_out_)`` float32 of ``(N, T)`` / ``(N, C, T)`` finite series
        of the fitted shape, ``batch_size`` series at a time."""
        x = self._fitted_input(X)
        out = np.empty((x.shape[0], self.n_features_out_), dtype=np.float32)
        for s in range(0, x.shape[0], self.batch_size):
            out[s : s + self.batch_size] = self._batch_features(x[s : s + self.batch_size]).numpy()
        return out

    def seconds_per_series(self, X: np.ndarray | torch.Tensor, n: int = 128) -> float:
        """Measured transform seconds per series on (up to) ``n`` of ``X`` (a planning aid)."""
        x = self._as_3d(X)[:n]
        self.transform(x[: min(8, len(x))])  # warm-up
        t0 = time.perf_counter()
        self.transform(x)
        return (time.perf_counter() - t0) / len(x)

class RandomKernelTransform(SeriesFeatureTransform):
    """Series ``(N, C, T)`` → random-kernel features ``(N, n_features_out_)`` (see module doc).

    Args:
        n_features: Target number of output features (rounded down to a multiple of
            ``84 × poolings × representations``, at least one bias per kernel).
        pooling: Pooling operators, a subset of :data:`POOLINGS`.
        diff: Add the first-difference representation.
        max_dilations: Most dilation grid points per kernel.
        seed: Seed of the random choices (examples for biases, channel subsets).
        batch_size: Series per batch in :meth:`transform`.

    Attributes:
        weights_: ``(84, 1, 9)`` the kernels. plans_: per representation, its length and the
            (dilation, mask, channel mix, biases) steps. n_channels_, length_: the fitted
            ``(C, T)``. n_features_out_: number of output features.
    """

    _parameter_constraints: dict = {
        "n_features": [Interval(Integral, 1, None, closed="left")],
        "pooling": [tuple, list],  # a subset of POOLINGS: _check
        "diff": ["boolean"],
        "max_dilations": [Interval(Integral, 1, None, closed="left")],
        "seed": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        n_features: int = 20_000,
        pooling: Sequence[str] = POOLINGS,
        diff: bool = True,
        max_dilations: int = 32,
        seed: int = 0,
        batch_size: int = 256,
    ) -> None:
        self.n_features, self.pooling, self.diff = n_features, pooling, diff
        self.max_dilations, self.seed, self.batch_size = max_dilations, seed, batch_size

    def _check(self) -> None:
        pooling = tuple(self.pooling)
        if not pooling or any(p not in POOLINGS for p in pooling) or len(set(pooling)) != len(pooling):
            raise ConfigError(f"RandomKernelTransform.pooling must be a non-empty subset of {POOLINGS}; got {self.pooling!r}")

    # -- helpers ----------------------------------------------------------------------------

    def _representations(self, x: torch.Tensor) -> list[torch.Tensor]:
        reps = [x]
        if self.diff and x.shape[-1] >= 2:
            reps.append(torch.diff(x, dim=-1))
        return reps

    @staticmethod
    def _valid_mask(length: int, dilation: int, padded: np.ndarray) -> torch.Tensor:
        """``(84, T)`` bool: positions pooled for each kernel at this dilation."""
        mask = torch.ones(len(padded), length, dtype=torch.bool)
        h = (KLEN // 2) * dilation
        for k, pad in enumerate(padded):
            if not pad:
                mask[k, :h] = False
                mask[k, length - h :] = False
        return mask

    def _responses(self, x: torch.Tensor, dilation: int, mix: torch.Tensor | None) -> torch.Tensor:
        """Kernel responses ``(B, 84, T)`` of ``(B, C, T)`` series at one dilation ("same" length)."""
        pad = (KLEN // 2) * dilation
        if mix is None:  # one channel: every kernel sees it
            return F.conv1d(x, self.weights_, padding=pad, dilation=dilation)
        xm = torch.einsum("bct,kc->bkt", x, mix)  # each kernel's own channel subset, summed
        return F.conv1d(xm, self.weights_, padding=pad, dilation=dilation, groups=_N_KERNELS)

    # -- fit / transform --------------------------------------------------------------------

    def fit(self, X: np.ndarray | torch.Tensor, y: Any = None) -> RandomKernelTransform:
        """Choose dilations, paddings, channel subsets and biases from training series.

        Args:
            X: ``(N, T)`` or ``(N, C, T)`` finite training series.
            y: Ignored (scikit-learn's transformer signature).

        Raises:
            ConfigError: bad parameters. InputError: bad series.
        """
        self._check_parameters()
        x = self._as_3d(X)
        self.weights_ = torch.from_numpy(kernel_weights())[:, None, :]  # (84, 1, 9)
        n, c, t = x.shape
        rng = np.random.default_rng(self.seed)
        reps = self._representations(x)
        per_rep = self.n_features // (len(reps) * len(self.pooling))
        per_kernel = max(1, per_rep // _N_KERNELS)
        self.plans_ = []
        q_index = 0
        for rep in reps:
            length = rep.shape[-1]
            dilations, counts = dilation_plan(length, per_kernel, self.max_dilations)
            steps = []
            for di, (d, nb) in enumerate(zip(dilations.tolist(), counts.tolist())):
                padded = ((np.arange(_N_KERNELS) + di) % 2 == 0)
                if length - 2 * (KLEN // 2) * d < 1:
                    padded[:] = True  # too short to pool only the inner positions
                mix = None
                if c > 1:
                    m = np.zeros((_N_KERNELS, c), dtype=np.float32)
                    for k in range(_N_KERNELS):
                        size = int(rng.integers(1, c + 1))
                        m[k, rng.choice(c, size, replace=False)] = 1.0
                    mix = torch.from_numpy(m)
                mask = self._valid_mask(length, d, padded)
                ex = torch.from_numpy(rng.integers(0, n, _N_KERNELS))
                resp = self._responses(rep[ex], d, mix)  # (84 examples, 84 kernels, T)
                own = resp[torch.arange(_N_KERNELS), torch.arange(_N_KERNELS)]  # kernel k on example k
                levels = np.mod((np.arange(q_index, q_index + _N_KERNELS * nb) + 1) * _PHI, 1.0).reshape(_N_KERNELS, nb)
                q_index += _N_KERNELS * nb
                biases = torch.empty(_N_KERNELS, nb)
                for k in range(_N_KERNELS):
                    vals = own[k][mask[k]].double()
                    biases[k] = torch.quantile(vals, torch.from_numpy(levels[k])).float()
                steps.append({"dilation": int(d), "mask": mask, "length": mask.sum(1).float(), "mix": mix, "biases": biases})
            self.plans_.append({"length": length, "steps": steps})
        self.n_channels_, self.length_ = c, t
        self.n_features_out_ = len(self.pooling) * sum(s["biases"].numel() for p in self.plans_ for s in p["steps"])
        return self

    def _pool(self, resp: torch.Tensor, step: dict[str, Any]) -> list[torch.Tensor]:
        """Pooled features of responses ``(B, 84, T)`` for one plan step, one tensor per pooling."""
        b, k, t = resp.shape
        mask, biases = step["mask"], step["biases"]  # (84, T), (84, nb)
        nb = biases.shape[1]
        lens = step["length"][None, :, None]  # (1, 84, 1)
        vals = resp.masked_fill(~mask[None], float("-inf"))
        out: dict[str, torch.Tensor] = {}
        need_sort = any(p in self.pooling for p in ("ppv", "mpv", "mipv"))
        if need_sort:
            sv, si = torch.sort(vals, dim=-1)
            thr = biases[None].expand(b, k, nb).contiguous()
            idx = torch.searchsorted(sv, thr, right=True)  # first sorted position above the bias
            count = (t - idx).float()
            if "ppv" in self.pooling:
                out["ppv"] = count / lens
            safe = count.clamp(min=1.0)
            if "mpv" in self.pooling:
                finite = torch.where(torch.isfinite(sv), sv, torch.zeros((), dtype=sv.dtype))
                suffix = torch.flip(torch.cumsum(torch.flip(finite, [-1]), -1), [-1])
                suffix = F.pad(suffix, (0, 1))
                s = torch.gather(suffix, -1, idx)
                out["mpv"] = torch.where(count > 0, (s - count * thr) / safe, torch.zeros(()))
            if "mipv" in self.pooling:
                pos = si.float() / max(t - 1, 1)
                suffix_i = F.pad(torch.flip(torch.cumsum(torch.flip(pos, [-1]), -1), [-1]), (0, 1))
                s = torch.gather(suffix_i, -1, idx)
                out["mipv"] = torch.where(count > 0, s / safe, torch.full((), -1.0))
        if "lspv" in self.pooling:
            # one pass over time of (B, 84, nb) run lengths: a loop over T small in-place ops is far
            # faster than materialising (B, 84, nb, T) and a cumulative max over it
            rdt = torch.int16 if t < 32_000 else torch.int32
            run = torch.zeros(b, k, nb, dtype=rdt)
            best = torch.zeros(b, k, nb, dtype=rdt)
            for i in range(t):
                run.add_(1).mul_(vals[:, :, i : i + 1] > biases[None])  # masked positions are -inf: never above
                torch.maximum(best, run, out=best)
            out["lspv"] = best.float() / lens
        return [out[p].reshape(b, k * nb) for p in self.pooling]

    def _batch_features(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(B, n_features_out_)`` of a batch ``(B, C, T)``."""
        cols = []
        for rep, plan in zip(self._representations(x), self.plans_):
            for step in plan["steps"]:
                cols.extend(self._pool(self._responses(rep, step["dilation"], step["mix"]), step))
        return torch.cat(cols, dim=1)
