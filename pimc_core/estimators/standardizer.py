"""Preparation of pixel series for the networks: gap filling and one standardisation per channel.

:class:`SeriesStandardizer` is fitted on the training series: gaps (NaN, ±inf) are filled
linearly in time (:func:`pimc_core.series.gapfill.fill_gaps`), then each channel is centred and
scaled by one mean / standard deviation over *all* training values, not per series, so the level
of a series is kept (NDVI 0.8 and 0.3 stay different). :meth:`SeriesStandardizer.pool`
average-pools long series to the length a network sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from pimc_core.errors import InputError
from pimc_core.series.gapfill import fill_gaps

__all__ = ["SeriesStandardizer"]


def _fill_gaps(X: np.ndarray) -> np.ndarray:
    """``X (..., T)`` with gaps filled linearly along the last axis (float32); rows without any
    valid value stay NaN."""
    return np.asarray(fill_gaps(X, min_valid=1).values, dtype=np.float32)


@dataclass
class SeriesStandardizer:
    """Gap filling, length capping and global standardisation fitted on training series.

    One mean and one standard deviation per channel over all training values (not per series),
    so the level and amplitude of each series are kept relative to the training data.

    Attributes:
        mean: ``(C,)`` training means.
        std: ``(C,)`` training standard deviations.
        length: Time steps after length capping.
        raw_length: Time steps of the training series.
    """

    mean: np.ndarray = field(default_factory=lambda: np.zeros(1, np.float32))
    std: np.ndarray = field(default_factory=lambda: np.ones(1, np.float32))
    length: int = 0
    raw_length: int = 0

    @staticmethod
    def _as_3d(X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        if X.ndim == 2:
            X = X[:, None, :]
        if X.ndim != 3 or X.shape[-1] < 1 or X.shape[0] < 1:
            raise InputError(f"series must have shape (N, T) or (N, C, T); got {X.shape}")
        return X

    def fit(self, X: np.ndarray, max_length: int = 512) -> SeriesStandardizer:
        """Fit on training series ``(N, T)`` or ``(N, C, T)`` (NaN = missing)."""
        X = self._as_3d(X)
        filled = _fill_gaps(X)
        with np.errstate(all="ignore"):
            mean = np.nanmean(filled, axis=(0, 2))
            std = np.nanstd(filled, axis=(0, 2))
        if not np.all(np.isfinite(mean)):
            raise InputError("training series have no valid (finite) values")
        std = np.where(np.isfinite(std) & (std > 1e-8), std, 1.0)
        self.mean, self.std = mean.astype(np.float32), std.astype(np.float32)
        self.raw_length = X.shape[-1]
        self.length = min(X.shape[-1], max_length)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """``(N, T)`` / ``(N, C, T)`` raw series → ``(N, C, length)`` float32 standardised
        (:meth:`standardize`, then :meth:`pool` to :attr:`length`)."""
        return self.pool(self.standardize(X), self.length)

    def standardize(self, X: np.ndarray) -> np.ndarray:
        """``(N, T)`` / ``(N, C, T)`` raw series → ``(N, C, raw_length)`` float32, gaps filled and
        standardised, not pooled.

        Series without any valid value become all-zero (the training mean).

        Raises:
            InputError: The number of channels or time steps differs from the training series.
        """
        X = self._as_3d(X)
        if X.shape[1] != self.mean.shape[0]:
            raise InputError(f"series have {X.shape[1]} channel(s) but the model was trained on {self.mean.shape[0]}")
        if X.shape[-1] != self.raw_length:
            raise InputError(f"series have {X.shape[-1]} time steps but the model was trained on {self.raw_length}")
        filled = _fill_gaps(X)
        Z = (filled - self.mean[None, :, None]) / self.std[None, :, None]
        return np.nan_to_num(Z, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)

    @staticmethod
    def pool(Z: np.ndarray, length: int) -> np.ndarray:
        """``(N, C, T)`` → ``(N, C, min(length, T))`` float32, average-pooled when shorter."""
        if length < Z.shape[-1]:
            Z = F.adaptive_avg_pool1d(torch.from_numpy(Z), int(length)).numpy()
        return np.ascontiguousarray(Z, dtype=np.float32)

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "length": self.length, "raw_length": self.raw_length}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SeriesStandardizer:
        return cls(np.asarray(state["mean"], np.float32), np.asarray(state["std"], np.float32),
                   int(state["length"]), int(state["raw_length"]))
