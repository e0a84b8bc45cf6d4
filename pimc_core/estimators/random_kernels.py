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

Competing kernels (:class:`CompetingKernelTransform`) follow Hydra (Dempster, Schmidt, Webb,
DMKD 2024), again our own code from the paper's description: groups of ``k`` random kernels
(normal weights, centred, unit absolute sum) are applied at each dilation ``2^0 … 2^⌊log₂((T-1)/8)⌋``
and, at every time step, compete within their group: the kernel with the largest response adds
that response to its count ("soft" max count), the one with the smallest adds one ("hard" min
count). Half of the groups see the series, half its first differences. Counts are square-rooted
and standardised with zeros kept at zero (the paper's sparse scaling). The features are a
dictionary-like histogram of which shape matches where, complementary to the biased pooling of
the two-valued kernels.

Classifier: :class:`RidgeLOO` — one-vs-rest ridge regression on standardised features with the
penalty chosen by the exact leave-one-out error (closed form from one eigendecomposition), which
also yields *leave-one-out decision values* for every training series: out-of-sample scores that
calibrate a softmax temperature and weigh this member against others without any refit.
"""

from __future__ import annotations

import itertools
import math
import time
from typing import Any, Sequence

import numpy as np
import scipy.special
import torch
import torch.nn.functional as F

from pimc_core.errors import ConfigError, InputError

__all__ = [
    "POOLINGS",
    "kernel_weights",
    "dilation_plan",
    "RandomKernelTransform",
    "CompetingKernelTransform",
    "RidgeLOO",
    "softmax_temperature",
]

#: Pooling operators of :class:`RandomKernelTransform`.
POOLINGS = ("ppv", "mpv", "mipv", "lspv")
_KLEN = 9
_N_KERNELS = 84
_PHI = (math.sqrt(5.0) - 1.0) / 2.0  # golden-ratio fraction: low-discrepancy quantile levels


def kernel_weights() -> np.ndarray:
    """The 84 two-valued kernels: ``(84, 9)`` float32, ``-1`` with ``2`` at three positions."""
    w = -np.ones((_N_KERNELS, _KLEN), dtype=np.float32)
    for i, pos in enumerate(itertools.combinations(range(_KLEN), 3)):
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
    top = max(1.0, (length - 1) / (_KLEN - 1))
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


class RandomKernelTransform:
    """Series ``(N, C, T)`` → random-kernel features ``(N, n_features_out_)`` (see module doc).

    Args:
        n_features: Target number of output features (rounded down to a multiple of
            ``84 × poolings × representations``, at least one bias per kernel).
        pooling: Pooling operators, a subset of :data:`POOLINGS`.
        diff: Add the first-difference representation.
        max_dilations: Most dilation grid points per kernel.
        seed: Seed of the random choices (examples for biases, channel subsets).
        batch_size: Series per batch in :meth:`transform`.
    """

    def __init__(
        self,
        n_features: int = 20_000,
        pooling: Sequence[str] = POOLINGS,
        diff: bool = True,
        max_dilations: int = 32,
        seed: int = 0,
        batch_size: int = 256,
    ) -> None:
        pooling = tuple(pooling)
        if not pooling or any(p not in POOLINGS for p in pooling) or len(set(pooling)) != len(pooling):
            raise ConfigError(f"pooling must be a non-empty subset of {POOLINGS}; got {pooling!r}")
        if int(n_features) < 1 or int(max_dilations) < 1 or int(batch_size) < 1:
            raise ConfigError("n_features, max_dilations and batch_size must be positive")
        self.n_features = int(n_features)
        self.pooling = pooling
        self.diff = bool(diff)
        self.max_dilations = int(max_dilations)
        self.seed = int(seed)
        self.batch_size = int(batch_size)
        self.weights_ = torch.from_numpy(kernel_weights())[:, None, :]  # (84, 1, 9)
        self.plans_: list[dict[str, Any]] = []
        self.n_channels_ = 0
        self.length_ = 0
        self.n_features_out_ = 0

    # -- helpers ----------------------------------------------------------------------------

    @staticmethod
    def _as_3d(X: np.ndarray | torch.Tensor) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(X, dtype=np.float32))
        if x.ndim == 2:
            x = x[:, None, :]
        if x.ndim != 3 or x.shape[0] < 1 or x.shape[-1] < 1:
            raise InputError(f"series must have shape (N, T) or (N, C, T); got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise InputError("random-kernel features need finite series (fill the gaps first)")
        return x

    def _representations(self, x: torch.Tensor) -> list[torch.Tensor]:
        reps = [x]
        if self.diff and x.shape[-1] >= 2:
            reps.append(torch.diff(x, dim=-1))
        return reps

    @staticmethod
    def _valid_mask(length: int, dilation: int, padded: np.ndarray) -> torch.Tensor:
        """``(84, T)`` bool: positions pooled for each kernel at this dilation."""
        mask = torch.ones(len(padded), length, dtype=torch.bool)
        h = (_KLEN // 2) * dilation
        for k, pad in enumerate(padded):
            if not pad:
                mask[k, :h] = False
                mask[k, length - h :] = False
        return mask

    def _responses(self, x: torch.Tensor, dilation: int, mix: torch.Tensor | None) -> torch.Tensor:
        """Kernel responses ``(B, 84, T)`` of ``(B, C, T)`` series at one dilation ("same" length)."""
        pad = (_KLEN // 2) * dilation
        if mix is None:  # one channel: every kernel sees it
            return F.conv1d(x, self.weights_, padding=pad, dilation=dilation)
        xm = torch.einsum("bct,kc->bkt", x, mix)  # each kernel's own channel subset, summed
        return F.conv1d(xm, self.weights_, padding=pad, dilation=dilation, groups=_N_KERNELS)

    # -- fit / transform --------------------------------------------------------------------

    def fit(self, X: np.ndarray | torch.Tensor) -> RandomKernelTransform:
        """Choose dilations, paddings, channel subsets and biases from training series.

        Args:
            X: ``(N, T)`` or ``(N, C, T)`` finite training series.
        """
        x = self._as_3d(X)
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
                if length - 2 * (_KLEN // 2) * d < 1:
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

    @torch.no_grad()
    def transform(self, X: np.ndarray | torch.Tensor) -> np.ndarray:
        """Features ``(N, n_features_out_)`` float32 of ``(N, T)`` / ``(N, C, T)`` finite series."""
        if not self.plans_:
            raise RuntimeError("RandomKernelTransform is not fitted")
        x = _fitted_input(self, X)
        out = np.empty((x.shape[0], self.n_features_out_), dtype=np.float32)
        for s in range(0, x.shape[0], self.batch_size):
            reps = self._representations(x[s : s + self.batch_size])
            cols = []
            for rep, plan in zip(reps, self.plans_):
                for step in plan["steps"]:
                    cols.extend(self._pool(self._responses(rep, step["dilation"], step["mix"]), step))
            out[s : s + self.batch_size] = torch.cat(cols, dim=1).numpy()
        return out

    def seconds_per_series(self, X: np.ndarray | torch.Tensor, n: int = 128) -> float:
        """Measured transform seconds per series on (up to) ``n`` of ``X`` (a planning aid)."""
        return _seconds_per_series(self, X, n)


def _fitted_input(transform: Any, X: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``X`` as ``(N, C, T)``, checked against the ``(C, T)`` the transform was fitted on."""
    x = RandomKernelTransform._as_3d(X)
    if x.shape[1] != transform.n_channels_ or x.shape[2] != transform.length_:
        fitted = (transform.n_channels_, transform.length_)
        raise InputError(f"series of shape {tuple(x.shape[1:])}; the transform was fitted on {fitted}")
    return x


def _seconds_per_series(transform: Any, X: np.ndarray | torch.Tensor, n: int) -> float:
    """Seconds per series of ``transform.transform`` measured on (up to) ``n`` series of ``X``."""
    x = RandomKernelTransform._as_3d(X)[:n]
    transform.transform(x[: min(8, len(x))])  # warm-up
    t0 = time.perf_counter()
    transform.transform(x)
    return (time.perf_counter() - t0) / len(x)


class CompetingKernelTransform:
    """Series ``(N, C, T)`` → competing-kernel (Hydra-style) counts ``(N, n_features_out_)``.

    Features: for each dilation ``d`` of ``2^0 … 2^⌊log₂((T-1)/8)⌋`` (at most ``max_dilations``),
    each representation (the series and, with ``diff``, its first differences: ``groups / 2``
    groups each) and each group of ``kernels`` kernels of length 9, two counts per kernel over
    the ``T`` positions (zero padding, "same" length): the sum of its responses where it is the
    group's largest, and how often it is the group's smallest. So
    ``n_features_out_ = n_dilations × groups × kernels × 2``. ``transform`` returns them
    square-rooted (negative sums clipped to zero) and standardised with the training mean and
    standard deviation, zeros left at zero.

    Multi-channel series: each group convolves the sum of a random, non-empty subset of channels.

    Args:
        groups: Kernel groups per dilation (even when ``diff``).
        kernels: Kernels per group (≥ 2: they compete).
        diff: Give half of the groups the first differences.
        max_dilations: Most dilations.
        seed: Seed of the kernel weights and channel subsets.
        batch_size: Series per batch in :meth:`transform`.
    """

    def __init__(self, groups: int = 64, kernels: int = 8, diff: bool = True, max_dilations: int = 8,
                 seed: int = 0, batch_size: int = 512) -> None:
        if int(groups) < 1 or int(kernels) < 2 or int(max_dilations) < 1 or int(batch_size) < 1:
            raise ConfigError("groups >= 1, kernels >= 2, max_dilations >= 1, batch_size >= 1; "
                              f"got {groups}, {kernels}, {max_dilations}, {batch_size}")
        if diff and int(groups) % 2:
            raise ConfigError(f"groups must be even when half of them see the differences; got {groups}")
        self.groups, self.kernels, self.diff = int(groups), int(kernels), bool(diff)
        self.max_dilations, self.seed, self.batch_size = int(max_dilations), int(seed), int(batch_size)
        self.dilations_: list[int] = []
        self.weights_: list[torch.Tensor] = []  # per representation: (n_dil, g_r * k, 1, 9)
        self.mix_: list[torch.Tensor | None] = []  # per representation: (g_r, C) channel subsets or None
        self.mean_: torch.Tensor | None = None
        self.scale_: torch.Tensor | None = None
        self.n_channels_ = 0
        self.length_ = 0
        self.n_features_out_ = 0

    def _reps(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [x, torch.diff(x, dim=-1)] if self.diff and x.shape[-1] >= 2 else [x]

    def fit(self, X: np.ndarray | torch.Tensor) -> CompetingKernelTransform:
        """Draw kernels for the length and channels of ``X`` ``(N, T)`` / ``(N, C, T)`` and learn
        the scaling of its counts."""
        x = RandomKernelTransform._as_3d(X)
        n, c, t = x.shape
        gen = torch.Generator().manual_seed(self.seed)
        top = int(math.floor(math.log2(max((t - 1) / (_KLEN - 1), 1.0))))
        self.dilations_ = [2**i for i in range(min(top + 1, self.max_dilations))]
        n_reps = len(self._reps(x[:1]))
        g_r = self.groups // n_reps
        self.weights_, self.mix_ = [], []
        for _ in range(n_reps):
            w = torch.randn(len(self.dilations_), g_r * self.kernels, 1, _KLEN, generator=gen)
            w = w - w.mean(-1, keepdim=True)
            self.weights_.append(w / w.abs().sum(-1, keepdim=True).clamp(min=1e-8))
            mix = None
            if c > 1:
                mix = torch.zeros(g_r, c)
                for g in range(g_r):
                    size = int(torch.randint(1, c + 1, (1,), generator=gen))
                    mix[g, torch.randperm(c, generator=gen)[:size]] = 1.0
            self.mix_.append(mix)
        self.n_channels_, self.length_ = c, t
        self.n_features_out_ = len(self.dilations_) * g_r * n_reps * self.kernels * 2
        self.mean_, self.scale_ = None, None
        counts = self._counts_all(x)
        nz = counts != 0
        m = nz.sum(0).clamp(min=1)
        self.mean_ = counts.sum(0) / m
        var = ((counts - self.mean_) ** 2 * nz).sum(0) / m
        self.scale_ = torch.where(var > 1e-12, var.clamp(min=1e-12).rsqrt(), torch.zeros(()))
        return self

    def _counts(self, x: torch.Tensor) -> torch.Tensor:
        """Square-rooted counts ``(B, n_features_out_)`` of ``(B, C, T)`` series."""
        b = x.shape[0]
        k = self.kernels
        cols = []
        for rep, w_all, mix in zip(self._reps(x), self.weights_, self.mix_):
            g_r = w_all.shape[1] // k
            t = rep.shape[-1]
            offset = (torch.arange(g_r) * k)[None, None, :]  # (1, 1, g_r): flat index of each group's kernel 0
            for di, d in enumerate(self.dilations_):
                pad = (_KLEN // 2) * d
                w = w_all[di][:, 0, :]  # (g_r * k, 9)
                if mix is None:  # one GEMM over the dilated windows: (B, T, 9) @ (9, g_r * k)
                    win = F.pad(rep[:, 0], (pad, pad)).unfold(-1, 2 * pad + 1, 1)[..., ::d]
                    resp = (win @ w.T).view(b, t, g_r, k)
                else:  # each group's channel subset, summed: (B, g_r, T), one input channel per group
                    xin = torch.einsum("bct,gc->bgt", rep, mix)
                    resp = F.conv1d(xin, w_all[di], padding=pad, dilation=d, groups=g_r)
                    resp = resp.view(b, g_r, k, t).permute(0, 3, 1, 2)
                vmax, amax = resp.max(dim=-1)  # (B, T, g_r)
                amin = resp.argmin(dim=-1)
                soft = torch.zeros(b, g_r * k).scatter_add_(1, (amax + offset).reshape(b, -1), vmax.reshape(b, -1))
                hard = torch.zeros(b, g_r * k).scatter_add_(1, (amin + offset).reshape(b, -1), torch.ones(b, t * g_r))
                cols.append(soft)
                cols.append(hard)
        return torch.cat(cols, dim=1).clamp(min=0.0).sqrt()

    def _counts_all(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self._counts(x[s : s + self.batch_size]) for s in range(0, x.shape[0], self.batch_size)])

    @torch.no_grad()
    def transform(self, X: np.ndarray | torch.Tensor) -> np.ndarray:
        """Scaled counts ``(N, n_features_out_)`` float32 of ``(N, T)`` / ``(N, C, T)`` finite series."""
        if self.mean_ is None or self.scale_ is None:
            raise RuntimeError("CompetingKernelTransform is not fitted")
        x = _fitted_input(self, X)
        out = np.empty((x.shape[0], self.n_features_out_), dtype=np.float32)
        for s in range(0, x.shape[0], self.batch_size):
            cnt = self._counts(x[s : s + self.batch_size])
            out[s : s + cnt.shape[0]] = (((cnt - self.mean_) * (cnt != 0)) * self.scale_).numpy()
        return out

    def seconds_per_series(self, X: np.ndarray | torch.Tensor, n: int = 128) -> float:
        """Measured transform seconds per series on (up to) ``n`` of ``X`` (a planning aid)."""
        return _seconds_per_series(self, X, n)


# --------------------------------------------------------------------------------------------
# ridge classifier with leave-one-out decision values
# --------------------------------------------------------------------------------------------


class RidgeLOO:
    """One-vs-rest ridge classifier; penalty chosen by exact leave-one-out error.

    Targets are ``±1`` codes per class; features are centred and scaled by their training mean
    and standard deviation (constant features dropped to zero); an unpenalised intercept. With
    ``n`` training rows and ``p`` features the work is one ``min(n, p)``-sized symmetric
    eigendecomposition (Gram matrix ``F Fᵀ`` when ``n <= p``, covariance ``Fᵀ F`` otherwise);
    every penalty of ``alphas`` is then cheap, and so are the leave-one-out predictions
    ``ŷ₋ᵢ = yᵢ - (yᵢ - ŷᵢ) / (1 - hᵢᵢ)`` of the hat matrix ``H``.

    Args:
        alphas: Candidate penalties (relative to the mean eigenvalue, so they do not depend on
            the number of features).
        double_limit: Largest eigenproblem (``min(n, p)``) solved in float64; larger ones use
            float32 (about twice as fast: 7200 rows take ~65 s instead of ~110 s on one core),
            and penalties below float32's eigenvalue resolution (``1e-5 × largest``) are then
            skipped, since their leave-one-out values would be noise.

    Attributes:
        alpha_: Chosen penalty (absolute).
        loo_decision_: ``(n, K)`` leave-one-out decision values of the training rows.
        loo_accuracy_: Leave-one-out accuracy at ``alpha_``.
    """

    def __init__(self, alphas: Sequence[float] | None = None, double_limit: int = 4096) -> None:
        self.alphas = tuple(alphas) if alphas is not None else tuple(np.logspace(-6, 2, 17))
        self.double_limit = int(double_limit)
        self.alpha_ = 0.0
        self.loo_decision_: np.ndarray | None = None
        self.loo_accuracy_ = float("nan")
        self.coef_: np.ndarray | None = None
        self.intercept_: np.ndarray | None = None
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None

    def fit(self, F_train: np.ndarray, y_idx: np.ndarray, n_classes: int) -> RidgeLOO:
        """Fit on features ``(n, p)`` and class indices ``(n,)`` in ``[0, n_classes)``.

        Memory: about three ``(n, p)`` float32 arrays at the peak (the input, its standardised
        copy, one product) plus a ``min(n, p)``-square matrix and its eigenvectors.
        """
        Xf = np.asarray(F_train, dtype=np.float32)
        n, p = Xf.shape
        y_idx = np.asarray(y_idx, dtype=np.int64)
        if n < 2 or y_idx.shape != (n,) or n_classes < 2:
            raise InputError(f"RidgeLOO needs >= 2 rows, one label per row and >= 2 classes; got {Xf.shape}, {y_idx.shape}, {n_classes}")
        self.mean_ = Xf.mean(axis=0, dtype=np.float64).astype(np.float32)
        sd = Xf.std(axis=0, dtype=np.float64)
        self.scale_ = np.where(sd > 1e-8, 1.0 / np.maximum(sd, 1e-8), 0.0).astype(np.float32)
        Zn = np.subtract(Xf, self.mean_)  # one (n, p) copy, scaled in place
        Zn *= self.scale_
        Z = torch.from_numpy(Zn)  # centred: intercept = mean target
        Y = -np.ones((n, n_classes), dtype=np.float64)
        Y[np.arange(n), y_idx] = 1.0
        y_mean = Y.mean(axis=0)
        Yc = torch.from_numpy(Y - y_mean)
        dual = n <= p
        G = (Z @ Z.T) if dual else (Z.T @ Z)
        double = min(n, p) <= self.double_limit
        evals, evecs = torch.linalg.eigh(G.double() if double else G)
        del G
        evals, evecs = evals.double().clamp(min=0.0), evecs.double()
        a_floor = 0.0 if double else 1e-5 * float(evals.max())
        if dual:
            U, s2 = evecs, evals  # H = U diag(s2/(s2+a)) Uᵀ
        else:
            keep = evals > evals.max() * 1e-10
            s2 = evals[keep]
            U = (Z @ evecs[:, keep].float()).double() / s2.sqrt()  # left singular vectors (n, r)
        UtY = U.T @ Yc  # (r, K)
        U2 = U * U
        scale = float(s2.mean()) if s2.numel() else 1.0
        best = None
        alphas = [a for a in self.alphas if a * max(scale, 1e-12) >= a_floor] or [max(self.alphas)]
        for a_rel in alphas:
            a = max(a_rel * max(scale, 1e-12), a_floor)
            shrink = s2 / (s2 + a)
            fit = U @ (shrink[:, None] * UtY)  # centred predictions
            h = U2 @ shrink + 1.0 / n  # + intercept's leverage
            resid = (Yc - fit) / (1.0 - h).clamp(min=1e-6)[:, None]
            loo = (torch.from_numpy(Y) - resid).numpy()
            err = float((resid**2).mean())
            if best is None or err < best[0] - 1e-12:
                best = (err, a, loo, shrink)
        assert best is not None
        _, self.alpha_, self.loo_decision_, shrink = best
        self.loo_accuracy_ = float(np.mean(np.argmax(self.loo_decision_, axis=1) == y_idx))
        # weights in feature space: w = Zᵀ U diag(1/(s2+a)) Uᵀ Yc (dual) or V diag(1/(s2+a)) Vᵀ Zᵀ Yc
        inv = 1.0 / (s2 + self.alpha_)
        dual_coef = (U @ (inv[:, None] * UtY)).float()  # (n, K); in both cases w = Zᵀ U diag(1/(s2+a)) Uᵀ Yc
        coef = (Z.T @ dual_coef).double()
        self.coef_ = (coef.numpy() * self.scale_[:, None]).astype(np.float32)
        self.intercept_ = (y_mean - (self.mean_.astype(np.float64) * self.scale_) @ coef.numpy()).astype(np.float64)
        return self

    def decision_function(self, F_test: np.ndarray) -> np.ndarray:
        """Decision values ``(m, K)`` of feature rows ``(m, p)``."""
        if self.coef_ is None:
            raise RuntimeError("RidgeLOO is not fitted")
        return np.asarray(F_test, dtype=np.float32) @ self.coef_ + self.intercept_


def softmax_temperature(decision: np.ndarray, y_idx: np.ndarray, grid: Sequence[float] | None = None) -> tuple[float, float]:
    """Inverse temperature ``β`` minimising the log-loss of ``softmax(β · decision)``.

    Returns:
        ``(beta, log_loss)``.
    """
    d = np.asarray(decision, dtype=np.float64)
    y_idx = np.asarray(y_idx, dtype=np.int64)
    grid = tuple(grid) if grid is not None else tuple(np.logspace(-1, 2.5, 57))
    best = (1.0, float("inf"))
    for beta in grid:
        loss = float(-np.mean(scipy.special.log_softmax(beta * d, axis=1)[np.arange(len(d)), y_idx]))
        if loss < best[1]:
            best = (float(beta), loss)
    return best
