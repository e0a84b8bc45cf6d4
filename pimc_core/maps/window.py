"""One window of a map: read it, build the model's input, predict it in batches.

For a window of the region::

    read (T, B, h, w) reflectance  →  index_series: indices + gap filling / resampling
    →  pixels with enough valid observations (and inside the polygon), flattened (N, C, T)
    →  model.predict in batches of ``batch_size``  →  the job's per-window result

Image patches (a model with ``patch_size`` k) are cut from a composite of a window grown by
k // 2 pixels on each side (clipped to the raster, NaN beyond), so a window's pixels see the same
neighbourhood as in a whole-raster read. A job may ask for a larger window than the one it
returns (:meth:`~pimc_core.maps.jobs.Job.read_window`: the smoothing's neighbours across window
borders). Memory is one (grown) window of reflectance plus one batch.
"""

from __future__ import annotations

import functools
import inspect
import time
import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np
from rasterio.windows import Window

from pimc_core.errors import ConfigError
from pimc_core.io.regions import Region
from pimc_core.io.timeseries import Observations, TimeSeries
from pimc_core.maps.protocol import ModelInfo, PixelModel
from pimc_core.series.composites import patches_at

if TYPE_CHECKING:
    from pimc_core.maps.jobs import Job

__all__ = ["Block", "WindowResult", "check_output", "model_predict", "patches", "read_block", "reading_info", "run_window"]


@dataclass
class Block:
    """A window read and turned into model input."""

    win: Window
    rows: np.ndarray  # (N,) window rows of the pixels to predict
    cols: np.ndarray
    filled: np.ndarray  # (N, C, T) float32
    composite: np.ndarray | None  # (B, h + k - 1, w + k - 1) padded patch image, or None
    k: int


def read_block(source: TimeSeries, model: PixelModel, info: ModelInfo, region: Region, win: Window,
               times: dict[str, float]) -> Block | None:
    """Read a window and build the flattened model input; None when no pixel is to predict.

    ``times["read"]`` and ``times["indices"]`` are increased by the seconds spent.
    """
    from pimc_core.series.pixel import index_series

    h, w = int(win.height), int(win.width)
    inside = region.mask(win)
    if inside is not None and not inside.any():
        return None
    t0 = time.perf_counter()
    k = info.patch_size
    composite = None
    if k:
        before, after = k // 2, k - 1 - k // 2
        c0, r0 = int(win.col_off), int(win.row_off)
        big = Window(max(0, c0 - before), max(0, r0 - before), 0, 0)
        c1 = min(source.grid.width, c0 + w + after)
        r1 = min(source.grid.height, r0 + h + after)
        big = Window(int(big.col_off), int(big.row_off), c1 - int(big.col_off), r1 - int(big.row_off))
        obs_big = source.read(big, bands=info.bands)
        rs = slice(r0 - int(big.row_off), r0 - int(big.row_off) + h)
        cs = slice(c0 - int(big.col_off), c0 - int(big.col_off) + w)
        obs = Observations(obs_big.reflectance[:, :, rs, cs], obs_big.valid[:, rs, cs], obs_big.band_names,
                           obs_big.dates, win)
        bi = [obs_big.band_names.index(b) for b in info.patch_bands]
        image_fn = getattr(model, "patch_image", None)
        comp_fn = getattr(model, "patch_composite", None)
        refl = obs_big.reflectance[:, bi]
        if callable(image_fn):
            comp = np.asarray(image_fn(source, big), dtype=np.float32)
        elif callable(comp_fn):
            comp = np.asarray(comp_fn(refl, obs_big.valid), dtype=np.float32)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels stay NaN
                comp = np.nanmedian(refl, axis=0).astype(np.float32)
        want = (int(getattr(model, "patch_channels", 0) or len(bi)), int(big.height), int(big.width))
        if comp.shape != want:
            raise ConfigError(f"model {type(model).__name__}: patch image of shape {comp.shape}; expected {want}")
        composite = np.full((want[0], h + k - 1, w + k - 1), np.nan, np.float32)
        pr = before - (r0 - int(big.row_off))
        pc = before - (c0 - int(big.col_off))
        composite[:, pr:pr + comp.shape[1], pc:pc + comp.shape[2]] = comp
    else:
        obs = source.read(win, bands=info.bands)
    t1 = time.perf_counter()
    # a model with a radar modality maps a pixel from either source (optional ``channel_groups``)
    ser = index_series(obs, info.indices, min_valid=info.min_valid, target_dates=info.target_dates,
                       groups=getattr(model, "channel_groups", None))
    sel = ser.ok if inside is None else (ser.ok & inside)
    rows, cols = np.nonzero(sel)
    filled = np.ascontiguousarray(np.moveaxis(ser.filled[:, :, rows, cols], -1, 0), dtype=np.float32)
    del ser, obs
    t2 = time.perf_counter()
    times["read"] += t1 - t0
    times["indices"] += t2 - t1
    return Block(win, rows, cols, filled, composite, k)


def patches(block: Block, sl: slice) -> np.ndarray | None:
    """(n, P, k, k) float32 patches centred on the pixels ``sl`` of a block, or None (no patches)."""
    if block.composite is None:
        return None
    return patches_at(block.composite, block.rows[sl], block.cols[sl], block.k, dtype=None)


def reading_info(model: PixelModel, info: ModelInfo, needs: Sequence[str]) -> ModelInfo:
    """``info`` without patches (nor the bands only they read) when the model's optional
    ``needs_patches(outputs)`` says the outputs ``needs`` do not use them (e.g. a class map of a
    classifier that reads the series alone)."""
    fn = getattr(model, "needs_patches", None)
    if not info.patch_size or not callable(fn) or fn(tuple(needs)):
        return info
    from pimc_core.series.indices import required_bands

    keep = set(required_bands(info.indices))
    return replace(info, patch_size=0, patch_bands=(), bands=tuple(b for b in info.bands if b in keep))


def model_predict(model: PixelModel, needs: Sequence[str]) -> Callable[[np.ndarray, np.ndarray | None], Any]:
    """``model.predict`` asked for the outputs ``needs`` only, when it takes an ``outputs``
    keyword (a PIMC model then skips, e.g., its forecast head for a class map)."""
    try:
        takes = "outputs" in inspect.signature(model.predict).parameters
    except (TypeError, ValueError):
        takes = False
    if not takes:
        return model.predict
    return functools.partial(model.predict, outputs=tuple(needs))


def check_output(name: str, arr: Any, n: int, width: int | None, model: PixelModel) -> np.ndarray:
    """``arr`` as an array of shape (n,) or (n, width); a ConfigError naming the model otherwise."""
    a = np.asarray(arr)
    want = (n,) if width is None else (n, width)
    if a.shape != want:
        raise ConfigError(
            f"model {type(model).__name__} returned {name} of shape {a.shape}; expected {want}"
        )
    return a


@dataclass
class WindowResult:
    """A job's result for one window, with the pixels predicted and the seconds per stage;
    ``device``: where a Dask worker ran it, in words (the model's ``device_summary()``; empty in
    this process)."""

    win: Window
    value: Any
    predicted: int
    times: dict[str, float]
    device: str = ""


def run_window(source: TimeSeries, model: PixelModel, info: ModelInfo, region: Region, job: Job,
               batch_size: int, win: Window, check: Callable[[], None] = lambda: None) -> WindowResult:
    """Read, predict and post-process one window (in the client or on a worker); ``check()``
    runs before each batch (it raises to cancel). The job's :meth:`~pimc_core.maps.jobs.Job.read_window`
    is what is read and predicted; the result and its pixel count are those of ``win``."""
    times = {"read": 0.0, "indices": 0.0, "predict": 0.0}
    read = job.read_window(win, source.grid)
    state = job.start(read, info)
    block = read_block(source, model, reading_info(model, info, job.needs), region, read, times)
    predict = model_predict(model, job.needs)
    n = 0 if block is None else block.rows.size
    for s in range(0, n, batch_size):
        check()
        sl = slice(s, min(n, s + batch_size))
        t0 = time.perf_counter()
        batch_patches = patches(block, sl)
        raw = predict(block.filled[sl], batch_patches)
        m = sl.stop - sl.start
        out = {}
        for key in job.needs:
            if not isinstance(raw, Mapping) or key not in raw:
                raise ConfigError(f"model {type(model).__name__} returned no '{key}'")
            width = {"probabilities": len(info.class_table), "forecast": len(info.forecast_dates),
                     "embeddings": info.embed_dim}[key]
            out[key] = check_output(key, raw[key], m, width, model)
        t1 = time.perf_counter()
        times["predict"] += t1 - t0
        job.add(state, block, sl, out, info)
        times["predict"] += time.perf_counter() - t1
    predicted = n if read == win or block is None else _inside(block, read, win)
    return WindowResult(win, job.finish(state, win, info), predicted, times)


def _inside(block: Block, read: Window, win: Window) -> int:
    """How many of a block's pixels (read over ``read``) lie in ``win``."""
    r = block.rows + int(read.row_off) - int(win.row_off)
    c = block.cols + int(read.col_off) - int(win.col_off)
    return int(((r >= 0) & (r < int(win.height)) & (c >= 0) & (c < int(win.width))).sum())
