"""The plumbing every map run shares: options, model and region set-up, the output folder, the
window loop with progress, cancel and timing, and the result.

:class:`MapRun` is built once per public map function (:mod:`pimc_core.maps.engine`). Before any
window is read it checks what cannot give a meaningful map: the options, the region's grid, the
output folder (it must be creatable and writable), the model against the stack (bands, outputs,
season: :mod:`pimc_core.maps.season`). A run whose region holds no pixel with enough valid
observations (only known once read) is refused before anything is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, Mapping, Sequence

from rasterio.windows import Window

from pimc_core.config import POSITIVE_INT, Checked, HasMethods, declared, param
from pimc_core.errors import ConfigError, InputError, interrupt_behind
from pimc_core.io.atomic import output_folder
from pimc_core.io.regions import Region, whole_region
from pimc_core.io.timeseries import TimeSeries
from pimc_core.maps.cancel import CancelToken, cancel_check
from pimc_core.maps.executors import Context, LocalExecutor, model_device
from pimc_core.maps.jobs import Job
from pimc_core.maps.products import MapOutputs, Product, gdal_messages_logged
from pimc_core.maps.suitability import check_model_source
from pimc_core.maps.window import WindowResult

__all__ = ["InferenceResult", "MapRun", "RunOptions"]

STAGES = ("read", "indices", "predict", "write", "finalize")


@declared
@dataclass
class RunOptions(Checked):
    """How a map is computed (the keyword options of every map function).

    Attributes:
        batch_size: pixels per ``model.predict`` call.
        block: window side in pixels (sets memory together with ``batch_size``).
        progress: called with the fraction done, 0..1, after each window.
        cancel: a :class:`~pimc_core.maps.cancel.CancelToken` or a ``() -> bool``; checked
            between batches.
        executor: None (this process) or a :class:`pimc_core.maps.dask_executor.DaskExecutor`.
    """

    batch_size: int = param(4096, POSITIVE_INT)
    block: int = param(256, POSITIVE_INT)
    progress: Callable[[float], None] | None = param(None, callable, None)
    cancel: CancelToken | Callable[[], bool] | None = param(None, CancelToken, callable, None)
    executor: Any = param(None, None, HasMethods(["map_windows"]))

    _config_name: ClassVar[str] = "map"

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> "RunOptions":
        """The options of a keyword mapping; unknown names are a ConfigError."""
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ConfigError(f"unknown map option(s) {', '.join(unknown)} (known: {', '.join(known)})")
        return cls(**options)


@dataclass
class InferenceResult:
    """What a map run did.

    Attributes:
        pixels: pixels of the region (inside the polygon, when there is one).
        predicted: pixels the model predicted (the others had too few valid observations).
        seconds: wall-clock time.
        files: the files written (maps and styles).
        stages: seconds per stage: ``read`` (reflectance, patches), ``indices`` (indices, gap
            filling), ``predict`` (the model), ``write`` (windowed writes), ``finalize`` (overviews,
            COG layout, renames). With Dask the first three are summed over the workers.
        windows: number of windows processed.
        workers: processes that computed windows (1 in-process).
        extra: product-specific facts (clusters: k, inertia, sample size; similarity: the query).
        device: where the model ran, in words (the model's optional ``device_summary()``, e.g.
            ``CPU, 2 threads, torch map graph`` or a CUDA device's name; on Dask ``N Dask workers``
            and, in brackets, the devices their windows ran on, e.g. ``2 Dask workers (CPU, 1 thread)``).
    """

    pixels: int
    predicted: int
    seconds: float
    files: list[Path]
    stages: dict[str, float] = field(default_factory=dict)
    windows: int = 0
    workers: int = 1
    extra: dict[str, Any] = field(default_factory=dict)
    device: str = ""

    @property
    def pixels_per_second(self) -> float:
        return self.pixels / self.seconds if self.seconds > 0 else float("inf")

    def summary(self) -> str:
        """One line: pixels, seconds, pixels per second, files written."""
        folder = self.files[0].parent if self.files else ""
        names = ", ".join(p.name for p in self.files)
        return (
            f"{self.pixels} pixels ({self.predicted} predicted) in {self.seconds:.2f} s, "
            f"{self.pixels_per_second:.0f} pixels/s{f' on {self.device}' if self.device else ''}; "
            f"{len(self.files)} files written to {folder}: {names}"
        )


@contextlib.contextmanager
def interrupts_first() -> Iterator[None]:
    """Within the block, an exception raised while a Ctrl-C or SIGTERM was being handled is
    reported as that interrupt (so the command line says "terminated", exit 143).

    rasterio's environments are not re-entrant: a signal that lands inside the exit of a nested
    ``rasterio.Env`` (every ``rasterio.open`` in a read) leaves the outer exit to raise
    ``EnvError: No GDAL environment exists``, which would otherwise replace the interrupt.
    """
    try:
        yield
    except Exception as e:
        cause = interrupt_behind(e)
        if cause is None:
            raise
        raise cause from None


class MapRun:
    """One map run: the checked set-up, the window loop and the writing of its outputs.

    Raises:
        ConfigError: bad options, a region on another grid, a model that does not fit the stack
            (attributes, season). InputError / BandError: the output folder cannot be used, a
            model file is missing, a band the model needs is missing.
    """

    def __init__(self, source: TimeSeries, model: Any, region: Region | None, out_dir: str | os.PathLike,
                 options: Mapping[str, Any]) -> None:
        self.t0 = time.perf_counter()
        opts = RunOptions.of(options)
        if not isinstance(source, TimeSeries):
            raise ConfigError(f"source must be a TimeSeries (use open_series); got {type(source).__name__}")
        self.source = source
        self.block, self.batch_size = int(opts.block), int(opts.batch_size)
        self.region = region if region is not None else whole_region(source.grid)
        if self.region.grid.difference(source.grid) is not None:
            raise ConfigError(f"region is on another grid than {source.source}: {self.region.grid.difference(source.grid)}")
        self.out_dir = output_folder(out_dir)
        self.executor = opts.executor if opts.executor is not None else LocalExecutor()
        self.model_ref = model
        fit = check_model_source(model, source)  # bands, season, pixel size: before any window is read
        self.model, self.info, self.name = fit.model, fit.info, fit.name
        self.check = cancel_check(opts.cancel)
        self.progress = opts.progress
        self.token = uuid.uuid4().hex
        self.windows = list(self.region.windows(self.block))
        self.stages = {s: 0.0 for s in STAGES}
        self.predicted = 0
        self.worker_devices: set[str] = set()  # what Dask workers' windows ran on

    def require(self, output: str, what: str) -> None:
        """A ConfigError unless the model gives ``output`` (``what`` says what needs it)."""
        outs = self.info.outputs
        if output not in outs:
            why = " (it was trained without labels)" if output in ("classes", "probabilities") else ""
            raise ConfigError(
                f"this model cannot give {what}{why}; it gives: {', '.join(sorted(outs)) or 'nothing'}"
            )

    def require_pixels(self) -> None:
        """An InputError when the windows processed so far held no pixel to predict."""
        if self.predicted == 0:
            raise InputError(
                f"no pixel of the region ({self.region.description or 'window'}) has enough valid observations in "
                f"{self.source.source} (min_valid {self.info.min_valid} of {len(self.source.dates)} dates); "
                f"nothing was written"
            )

    def map(self, job: Job, windows: Sequence[Window] | None = None, region: Region | None = None,
            span: tuple[float, float] = (0.0, 1.0)) -> Iterator[WindowResult]:
        """Results of ``job`` over windows, in window order, with progress over ``span``."""
        region = region or self.region
        windows = self.windows if windows is None else list(windows)
        remote = getattr(self.executor, "remote", False)
        ctx = Context(self.source, self.model_ref if remote else None, self.token, self.info, region, job,
                      self.batch_size)
        total = sum(int(w.width) * int(w.height) for w in windows) or 1
        done = 0
        self._report(span[0])
        with interrupts_first():
            for res in self.executor.map_windows(ctx, self.model, windows, self.check):
                for k, v in res.times.items():
                    self.stages[k] += v
                self.predicted += res.predicted
                if res.device:
                    self.worker_devices.add(res.device)
                done += int(res.win.width) * int(res.win.height)
                yield res
                self.check()
                self._report(span[0] + (span[1] - span[0]) * done / total)

    def _report(self, fraction: float) -> None:
        if self.progress is not None:
            self.progress(min(1.0, max(0.0, fraction)))

    def result(self, files: list[Path], **extra: Any) -> InferenceResult:
        """The :class:`InferenceResult` of the run so far."""
        return InferenceResult(
            pixels=self.region.n_pixels, predicted=self.predicted, seconds=time.perf_counter() - self.t0,
            files=files, stages=dict(self.stages), windows=len(self.windows),
            workers=getattr(self.executor, "n_workers", 1), extra=extra, device=self.device_summary(),
        )

    def device_summary(self) -> str:
        """Where the model ran, in words (see :attr:`InferenceResult.device`)."""
        if getattr(self.executor, "remote", False):
            n = getattr(self.executor, "n_workers", 1)
            used = f" ({'; '.join(sorted(self.worker_devices))})" if self.worker_devices else ""
            return f"{n} Dask worker{'s' if n != 1 else ''}{used}"
        return model_device(self.model)

    def write_all(self, products: Sequence[Product], job: Job, span: tuple[float, float] = (0.0, 1.0)) -> list[Path]:
        """Run ``job`` over the region's windows into temporary outputs; commit on success."""
        with interrupts_first(), gdal_messages_logged():
            outputs = MapOutputs(self.out_dir, self.region.out_grid, products)
            try:
                for res in self.map(job, span=span):
                    t0 = time.perf_counter()
                    outputs.write(self.region.local(res.win), res.value)
                    self.stages["write"] += time.perf_counter() - t0
                self.check()
                self.require_pixels()
                t0 = time.perf_counter()
                files = outputs.commit()
                self.stages["finalize"] += time.perf_counter() - t0
                return files
            except BaseException:
                outputs.abort()
                raise
