"""Where a map's windows are computed: in this process (:class:`LocalExecutor`), or as Dask tasks
(:class:`pimc_core.maps.dask_executor.DaskExecutor`).

An executor maps a :class:`Context` (everything a window needs but the window: source, model
reference, model info, region, job, batch size) over windows and yields their
:class:`~pimc_core.maps.window.WindowResult` in window order. A remote executor sends the context
once per run; each worker process loads and prepares the model itself, once per run
(:func:`context_model`), then runs :func:`window_task` for each of its windows.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from rasterio.windows import Window

from pimc_core.io.regions import Region
from pimc_core.io.timeseries import TimeSeries
from pimc_core.maps.jobs import Job
from pimc_core.maps.protocol import ModelInfo, PixelModel, load_model, prepare_model
from pimc_core.maps.window import WindowResult, run_window

__all__ = ["Context", "LocalExecutor", "context_model", "window_task"]


@dataclass
class Context:
    """Everything a window task needs besides its window (scattered once to Dask workers)."""

    source: TimeSeries
    model_ref: Any  # a live model (in-process), or a path / factory / picklable model (workers)
    token: str
    info: ModelInfo
    region: Region
    job: Job
    batch_size: int


_WORKER_MODELS: dict[str, PixelModel] = {}
_WORKER_LOCK = threading.Lock()


def context_model(ctx: Context) -> PixelModel:
    """The model of a context, loaded (and prepared) once per process and run."""
    with _WORKER_LOCK:
        model = _WORKER_MODELS.get(ctx.token)
        if model is None:
            _WORKER_MODELS.clear()  # one run at a time per worker: free the previous model
            model = load_model(ctx.model_ref)
            prepare_model(model, ctx.source)
            _WORKER_MODELS[ctx.token] = model
        return model


def window_task(ctx: Context, win: Window) -> WindowResult:
    """A window as a Dask task."""
    model = context_model(ctx)
    res = run_window(ctx.source, model, ctx.info, ctx.region, ctx.job, ctx.batch_size, win)
    res.device = model_device(model)
    return res


def model_device(model: Any) -> str:
    """Where ``model`` runs, in words: its optional ``device_summary()``, else ``CPU``."""
    fn = getattr(model, "device_summary", None)
    return str(fn()) if callable(fn) else "CPU"


class LocalExecutor:
    """Windows one after the other in this process (cancel checked between batches)."""

    n_workers = 1
    remote = False

    def map_windows(self, ctx: Context, model: PixelModel, windows: Sequence[Window],
                    check: Callable[[], None]) -> Iterator[WindowResult]:
        """The results of ``ctx.job`` over ``windows``, in order, with the live ``model``."""
        for win in windows:
            check()
            yield run_window(ctx.source, model, ctx.info, ctx.region, ctx.job, ctx.batch_size, win, check)
