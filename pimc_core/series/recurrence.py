r"""Recurrence plots of (batches of) time series, in torch, with the semantics of pyts.

This module reimplements :class:`pyts.image.RecurrencePlot` (pyts 0.13.0) so that it runs
batched on CPU or CUDA, on numpy arrays or torch tensors, with bounded memory. pyts is only
used as the reference in the tests; it is never called here.

Maths (identical to pyts). For a series :math:`x = (x_0, \ldots, x_{T-1})`, an embedding
dimension :math:`m` and a time delay :math:`\tau`, the :math:`T' = T - (m - 1)\tau`
trajectories are

.. math::

    \vec{x}_i = (x_i, x_{i+\tau}, \ldots, x_{i+(m-1)\tau}), \qquad 0 \le i < T',

and the (unthresholded) recurrence plot is the :math:`T' \times T'` distance matrix

.. math::

    D_{ij} = \lVert \vec{x}_i - \vec{x}_j \rVert_2
           = \sqrt{\textstyle\sum_{k=0}^{m-1} (x_{i+k\tau} - x_{j+k\tau})^2}
    \quad(\text{for } m = 1:\ D_{ij} = |x_i - x_j|).

With a threshold :math:`\varepsilon` the plot is binarised with a *strict* comparison,
:math:`R_{ij} = 1` if :math:`D_{ij} < \varepsilon` else :math:`0`, where

* ``threshold=None``: no binarisation, :math:`R = D`;
* ``threshold=<number> > 0``: :math:`\varepsilon` is that number;
* ``threshold='point'``: :math:`\varepsilon` is, per series, the ``percentage``-th percentile of
  the :math:`T'^2` entries of :math:`D` (``numpy.percentile``'s default linear interpolation
  between the order statistics :math:`\lfloor v \rfloor` and :math:`\lfloor v \rfloor + 1`,
  :math:`v = (T'^2 - 1)\,p/100`);
* ``threshold='distance'``: :math:`\varepsilon = p/100 \cdot \max_{ij} D_{ij}`, per series.

A float ``dimension`` or ``time_delay`` :math:`f \in (0, 1)` means :math:`\lceil f T \rceil`.

Numerics. Computations run in float64 when the input is float64 (or an integer type) and in
float32 otherwise; the result is always float32. Each step mirrors pyts/numpy's arithmetic
(the order of the sum over the embedding dimension follows numpy's pairwise summation, the
percentile follows numpy's ``_lerp``, comparisons are made in the dtype numpy would promote
to, square roots are correctly rounded), so thresholded plots are identical to pyts's and
unthresholded ones are pyts's values rounded to float32 (checked bit for bit in the tests).

Implementation. Series are processed in chunks sized to a core's L2 cache (temporaries stay
small whatever the batch). The output is allocated once per call, or not at all: ``out=``
takes a preallocated buffer, reused across batches when plots are streamed batch by batch to
a consumer (the intended use: a raster is never turned into plots all at once). On CPU two
steps go through numpy on the same memory: ``sqrt`` (torch's AVX-512 ``sqrt`` is not
correctly rounded) and the per-series order statistics behind ``'point'`` (``numpy.partition``,
a linear-time selection), and chunks are spread over ``torch.get_num_threads()`` worker
threads running single-threaded kernels (see :mod:`pimc_core.series.rp_threads`: robust when
other processes load the CPU, where per-kernel OpenMP fork/joins collapse; no global torch
setting is ever changed). On CUDA everything is torch.

Layout. This module holds the public functions and :class:`RecurrencePlotConfig`; the parameter
rules are in :mod:`~pimc_core.series.rp_params`, input/output buffers in
:mod:`~pimc_core.series.rp_tensors`, distances in :mod:`~pimc_core.series.rp_distances`,
thresholds in :mod:`~pimc_core.series.rp_thresholds`, the compiled ``|x_i - x_j|`` loop in
:mod:`~pimc_core.series.rp_fused`, the chunking in :mod:`~pimc_core.series.rp_chunks` and the
worker threads in :mod:`~pimc_core.series.rp_threads`.

Deliberate differences from pyts (all for the safer): booleans are rejected as
``dimension``/``time_delay``/``threshold``/``percentage``; a NaN ``threshold`` is rejected
(pyts silently returns all zeros); float16/bfloat16 inputs are computed in float32 (pyts would
compute in float16); unsigned integers are not wrapped around; an empty batch (zero series)
returns an empty result instead of failing. No autograd: results never require grad.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar, Mapping

import numpy as np
import torch

from pimc_core.config import Checked, declared, param
from pimc_core.errors import ConfigError, InputError
from pimc_core.series.rp_chunks import plots_into
from pimc_core.series.rp_params import RP_CONSTRAINTS, RP_NAME, Threshold, check_rp_params, trajectory_params
from pimc_core.series.rp_tensors import ArrayLike, as_tensor, check_finite, check_out, empty_float32

__all__ = ["RecurrencePlotConfig", "recurrence_plot", "stack_recurrence_plots", "trajectory_params"]


@torch.no_grad()
def recurrence_plot(x: ArrayLike, dimension: int | float = 1, time_delay: int | float = 1,
                    threshold: Threshold = None, percentage: int | float = 10, *,
                    out: ArrayLike | None = None) -> ArrayLike:
    r"""Recurrence plots of every series in ``x`` (pyts ``RecurrencePlot`` semantics).

    Args:
        x: ``(..., T)`` numpy array or torch tensor (any number of leading batch dims,
            including none), real-valued, no NaN/inf. CUDA tensors are processed on the GPU.
        dimension: Embedding dimension :math:`m`: an integer in ``[1, T]`` or a float
            :math:`f \in (0, 1)` meaning :math:`\lceil fT \rceil`.
        time_delay: Delay :math:`\tau` between embedded samples: integer in ``[1, T]`` or a
            float in ``(0, 1)``.
        threshold: ``None`` (distances), a number ``> 0``, ``'point'`` (per-series
            ``percentage``-th percentile of the distances) or ``'distance'``
            (``percentage`` % of the per-series maximum distance). Binarisation is
            :math:`R_{ij} = [D_{ij} < \varepsilon]`.
        percentage: In ``[0, 100]``; used by ``'point'`` and ``'distance'`` (always checked).
        out: Optional preallocated result: a C-contiguous, writable float32 numpy array or
            torch tensor of shape ``(..., T', T')`` on ``x``'s device (a numpy array only for
            CPU inputs), not overlapping ``x``. Meant for streaming batches through one
            reused buffer (no allocation, no page faults, memory that stays in cache); for a
            smaller last batch pass a leading slice, ``out[:n]``. Every element is
            overwritten. Nothing is written if validation fails.

    Returns:
        ``(..., T', T')`` float32, :math:`T' = T - (m-1)\tau`: ``out`` itself when given;
        otherwise a numpy array if ``x`` is not a tensor, else a tensor on ``x``'s device.
        Work is done in chunks of series sized to the L2 cache on CPU, so temporaries stay
        small whatever the batch size.

    Raises:
        ConfigError: an invalid parameter (the message names it).
        InputError: ``x`` is not real-valued, has no time axis, or contains NaN/inf; ``out``
            has the wrong type, dtype, shape, device or layout, or overlaps ``x`` (the
            message names ``out``).
    """
    check_rp_params(dimension=dimension, time_delay=time_delay, threshold=threshold, percentage=percentage)
    t, to_numpy = as_tensor(x, "x")
    if t.ndim < 1 or t.shape[-1] < 1:
        raise InputError(f"recurrence plot: 'x' must have shape (..., T) with T >= 1, got {tuple(t.shape)}")
    m, tau, side = trajectory_params(t.shape[-1], dimension, time_delay)
    lead = tuple(t.shape[:-1])
    if out is not None:
        dst = check_out(out, (*lead, side, side), t, "x")
    check_finite(t, "x")
    flat = t.reshape(-1, t.shape[-1])
    if out is None:
        dst = empty_float32((*lead, side, side), t.device)
    plots_into(flat, dst.view(flat.shape[0], side, side), m, tau, threshold, percentage)
    if out is not None:
        return out
    return dst.numpy() if to_numpy else dst


@torch.no_grad()
def stack_recurrence_plots(series: ArrayLike, *, dimension: int | float = 1,
                           time_delay: int | float = 1, threshold: Threshold = None,
                           percentage: int | float = 10, size: int | None = None,
                           out: ArrayLike | None = None) -> ArrayLike:
    r"""Multi-channel recurrence-plot images: one plot per (sample, channel) series.

    Args:
        series: ``(N, C, T)`` numpy array or torch tensor; channel ``c`` of sample ``n`` is
            one series (e.g. one vegetation index), its plot becomes image channel ``c``.
        dimension, time_delay, threshold, percentage: as in :func:`recurrence_plot`.
        size: ``None`` keeps the native ``T' x T'`` plots; an integer resizes every plot to
            ``size x size`` with ``torch.nn.functional.interpolate(mode='bilinear',
            align_corners=False)``, anti-aliased when shrinking (``antialias=True`` iff
            ``size < T'``). Bilinear keeps a smooth distance image smooth and, with
            ``align_corners=False``, maps pixel areas onto pixel areas (no half-pixel shift);
            anti-aliasing averages over the whole footprint of an output pixel when
            shrinking instead of sampling 4 input pixels (which would alias). Resized
            thresholded plots hold fractions in ``[0, 1]`` (the share of recurrent pixels),
            not only 0/1.
        out: Optional preallocated ``(N, C, S, S)`` float32 result, reused across batches;
            same rules as in :func:`recurrence_plot` (e.g. ``out[:n]`` for a smaller batch).

    Returns:
        ``(N, C, S, S)`` float32 with ``S = size`` or ``T'``: ``out`` itself when given;
        otherwise numpy in, numpy out; tensor in, tensor (same device) out.

    Raises:
        ConfigError: an invalid parameter, including ``size``.
        InputError: ``series`` is not 3-D, not real-valued, or contains NaN/inf; a bad
            ``out`` (see :func:`recurrence_plot`).
    """
    check_rp_params(dimension=dimension, time_delay=time_delay, threshold=threshold,
                    percentage=percentage, size=size)
    t, to_numpy = as_tensor(series, "series")
    if t.ndim != 3 or t.shape[-1] < 1:
        raise InputError(
            f"recurrence plot: 'series' must have shape (N, C, T) with T >= 1, got {tuple(t.shape)}")
    n, c, length = t.shape
    m, tau, side = trajectory_params(length, dimension, time_delay)
    s = side if size is None else size
    if out is not None:
        dst = check_out(out, (n, c, s, s), t, "series")
    check_finite(t, "series")
    if out is None:
        dst = empty_float32((n, c, s, s), t.device)
    flat = t.reshape(n * c, length)
    if s == side:
        plots_into(flat, dst.view(n * c, side, side), m, tau, threshold, percentage)
    else:
        plots_into(flat, dst, m, tau, threshold, percentage, resize_to=s, channels=c)
    if out is not None:
        return out
    return dst.numpy() if to_numpy else dst


# --------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------


def _plain(v: Any) -> Any:
    """numpy scalars -> python scalars (keeping int vs float)."""
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.str_):
        return str(v)
    return v


@declared
@dataclass(frozen=True)
class RecurrencePlotConfig(Checked):
    """How series become recurrence-plot images; stored in model files.

    Attributes:
        dimension: Embedding dimension (int >= 1, or float in (0, 1): fraction of ``T``).
        time_delay: Embedding delay (int >= 1, or float in (0, 1): fraction of ``T``).
        threshold: ``None``, ``'point'``, ``'distance'`` or a number > 0.
        percentage: In ``[0, 100]``, for ``'point'``/``'distance'``.
        size: ``None`` (native ``T'``) or the side images are resized to.

    Length-independent checks run at construction (:class:`ConfigError`); the rest
    (``dimension``/``time_delay`` versus ``T``) when applied.
    """

    # what each accepts is RP_CONSTRAINTS, which also checks the functions' arguments
    dimension: int | float = param(1, *RP_CONSTRAINTS["dimension"])
    time_delay: int | float = param(1, *RP_CONSTRAINTS["time_delay"])
    threshold: Threshold = param(None, *RP_CONSTRAINTS["threshold"])
    percentage: int | float = param(10, *RP_CONSTRAINTS["percentage"])
    size: int | None = param(None, *RP_CONSTRAINTS["size"])

    _config_name: ClassVar[str] = RP_NAME

    def _convert(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _plain(getattr(self, f.name)))

    def apply(self, series: ArrayLike) -> ArrayLike:
        """``(N, C, T)`` series -> ``(N, C, S, S)`` images; see :func:`stack_recurrence_plots`."""
        return stack_recurrence_plots(series, dimension=self.dimension, time_delay=self.time_delay,
                                      threshold=self.threshold, percentage=self.percentage,
                                      size=self.size)

    def image_size(self, length: int) -> int:
        """Side ``S`` of the images made from series of ``length`` samples."""
        side = trajectory_params(length, self.dimension, self.time_delay)[2]
        return side if self.size is None else self.size

    def to_dict(self) -> dict[str, Any]:
        """Plain-python dict (JSON/YAML-safe) of every field."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecurrencePlotConfig:
        """Inverse of :meth:`to_dict`; missing keys take defaults, unknown keys are refused.

        Raises:
            ConfigError: ``data`` is not a mapping, has unknown keys (named) or bad values.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"recurrence plot config must be a mapping, got {type(data).__name__}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise ConfigError(
                f"recurrence plot config: unknown key(s) {', '.join(map(repr, unknown))}; "
                f"allowed: {', '.join(known)}")
        return cls(**dict(data))
