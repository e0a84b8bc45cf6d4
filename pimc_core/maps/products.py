"""Map products and their writer: what each output raster is (bands, data type, nodata, tags,
colours, style) and how a run's outputs reach the output folder whole or not at all.

:class:`MapOutputs` writes every product of a run window by window into a temporary tiled
GeoTIFF in the output folder (a :class:`pimc_core.io.atomic.Staging` name carrying this process's
id), converts each to a Cloud-Optimised GeoTIFF (tiled, deflate, internal overviews) next to it,
writes the ``.qml`` styles, and renames everything into place together at :meth:`MapOutputs.commit`.
An error, a cancel, Ctrl-C or SIGTERM removes every temporary file instead; what a process
killed outright left is removed by the next run writing into the folder. A write that fails
(disk full, quota, permission) is one :class:`~pimc_core.errors.InputError` line naming the
file; GDAL's own messages are not printed.
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
from rasterio.errors import RasterioError
from rasterio.windows import Window

from pimc_core.errors import ConfigError, InputError
from pimc_core.io.atomic import Staging, os_error_message
from pimc_core.io.grid import Grid
from pimc_core.io.timeseries import TimeSeries
from pimc_core.maps.protocol import ModelInfo
from pimc_core.maps.smoothing import SmoothConfig

__all__ = ["MapOutputs", "Product", "cluster_product", "gdal_messages_logged", "product_specs", "similarity_product"]


@dataclass(frozen=True)
class Product:
    """One output raster: file name, data type, bands, metadata and style."""

    name: str
    dtype: str
    count: int
    nodata: float
    descriptions: tuple[str, ...]
    tags: Mapping[str, str] = field(default_factory=dict)
    band_tags: Mapping[int, Mapping[str, str]] = field(default_factory=dict)
    colormap: Mapping[int, tuple[int, int, int, int]] | None = None
    qml: str | None = None
    resampling: str = "AVERAGE"

    @property
    def filename(self) -> str:
        return f"{self.name}.tif"


def product_specs(products: Sequence[str], info: ModelInfo, source: TimeSeries,
                  smooth: SmoothConfig | None = None) -> list[Product]:
    """The rasters of :func:`pimc_core.maps.engine.run_inference` products (names checked by the
    caller); with ``smooth``, those of the class probabilities carry the ``pimc_smoothing`` tag."""
    from pimc_core.maps.styling import class_colormap, class_qml, ramp_qml

    base = {"pimc_source": str(source.source), "pimc_indices": ",".join(info.indices)}
    smoothed = {**base, "pimc_smoothing": smooth.tag()} if smooth is not None else base
    out = []
    for p in products:
        common = smoothed if p in ("classes", "confidence", "uncertainty", "probabilities") else base
        if p == "classes":
            table = [dict(c) for c in info.class_table]
            out.append(Product(
                "classes", "uint8", 1, 0, ("class",),
                {**common, "pimc_product": "classes", "pimc_classes": _json(table)},
                {1: {f"class_{c['id']}": c["name"] for c in table}},
                class_colormap(table), class_qml(table), "MODE",
            ))
        elif p == "confidence":
            out.append(Product("confidence", "float32", 1, math.nan, ("confidence (probability of the class)",),
                                {**common, "pimc_product": "confidence"}, qml=ramp_qml(0.0, 1.0)))
        elif p == "uncertainty":
            out.append(Product("uncertainty", "float32", 1, math.nan,
                                ("uncertainty (entropy of the class probabilities / log K)",),
                                {**common, "pimc_product": "uncertainty", "pimc_classes_k": str(len(info.class_table))},
                                qml=ramp_qml(0.0, 1.0, labels=("0 certain", "0.25", "0.5", "0.75", "1 uncertain"))))
        elif p == "probabilities":
            out.append(Product(
                "probabilities", "float32", len(info.class_table), math.nan,
                tuple(f"P({c['name']})" for c in info.class_table),
                {**common, "pimc_product": "probabilities", "pimc_classes": _json([dict(c) for c in info.class_table])},
                {i + 1: {"class_id": str(c["id"]), "class_name": c["name"]} for i, c in enumerate(info.class_table)},
            ))
        elif p == "forecast":
            idx = info.forecast_index.upper()
            out.append(Product(
                "forecast", "float32", len(info.forecast_dates), math.nan,
                tuple(f"{idx} {d.isoformat()}" for d in info.forecast_dates),
                {**common, "pimc_product": "forecast", "pimc_forecast_index": info.forecast_index,
                 "pimc_dates": ",".join(d.isoformat() for d in info.forecast_dates)},
                {i + 1: {"date": d.isoformat()} for i, d in enumerate(info.forecast_dates)},
            ))
        elif p == "embeddings":
            out.append(Product("embeddings", "float32", info.embed_dim, math.nan,
                                tuple(f"embedding {i + 1}" for i in range(info.embed_dim)),
                                {**common, "pimc_product": "embeddings"}))
        else:  # pragma: no cover - checked by the callers
            raise ConfigError(f"unknown product {p!r}")
    return out


def cluster_product(source: TimeSeries, k: int) -> Product:
    """``clusters.tif``: uint8 cluster 1..k (0 = nodata) with a colour table and ``clusters.qml``."""
    from pimc_core.io.classes import palette_color
    from pimc_core.maps.styling import class_colormap, class_qml

    table = [{"id": i + 1, "name": f"cluster {i + 1}", "color": palette_color(i)} for i in range(int(k))]
    return Product("clusters", "uint8", 1, 0, ("cluster",),
                   {"pimc_source": str(source.source), "pimc_product": "clusters", "pimc_k": str(int(k)),
                    "pimc_classes": _json(table)},
                   {1: {f"class_{c['id']}": c["name"] for c in table}}, class_colormap(table), class_qml(table), "MODE")


def similarity_product(source: TimeSeries, query: str) -> Product:
    """``similarity.tif``: float32 cosine similarity (NaN = nodata) and ``similarity.qml``."""
    from pimc_core.maps.styling import ramp_qml

    return Product("similarity", "float32", 1, math.nan, ("cosine similarity to the query",),
                   {"pimc_source": str(source.source), "pimc_product": "similarity", "pimc_query": query},
                   qml=ramp_qml(0.0, 1.0))


def _json(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


# ---------------------------------------------------------------------------- the writer
@contextlib.contextmanager
def gdal_messages_logged() -> Iterator[None]:
    """Within the block, GDAL's messages go to Python logging (``rasterio._err``, level INFO)
    instead of being printed on stderr by GDAL's default handler.

    A write that fails (disk full) is often first reported by GDAL while it flushes a written
    dataset's blocks during some other call (a read of the next window); the failure is then
    raised by the next write to that dataset, as one line. This uses rasterio's handler
    (``rasterio._env.catch_errors``, present in rasterio 1.3 and 1.4); without it, GDAL prints.
    """
    try:
        from rasterio._env import catch_errors
    except ImportError:  # pragma: no cover - another rasterio
        catch_errors = contextlib.nullcontext
    with catch_errors():
        yield


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """GDAL and OS write errors as one InputError naming ``path``."""
    from rasterio._err import CPLE_BaseError

    try:
        yield
    except (OSError, RasterioError, CPLE_BaseError) as e:
        raise InputError(os_error_message(e, path)) from None


class MapOutputs:
    """The products of one run in the output folder, committed together or not at all.

    Args:
        out_dir: an existing, writable folder (:func:`pimc_core.io.atomic.output_folder`).
        grid: the grid of the maps (the region's window of the source grid).
        products: the rasters to write.

    Raises:
        InputError: a file cannot be written (naming it).
    """

    def __init__(self, out_dir: Path, grid: Grid, products: Sequence[Product]) -> None:
        import rasterio

        from pimc_core.io.raster_io import geotiff_profile

        self.out_dir = Path(out_dir)
        self.products = list(products)
        self.stage = Staging(self.out_dir)  # also removes what killed runs left here
        self.datasets: dict[str, Any] = {}
        self.parts: dict[str, Path] = {}
        try:
            for p in self.products:
                tmp = self.parts[p.name] = self.stage.temp(p.filename, ".part.tif")
                prof = geotiff_profile(grid, p.count, p.dtype, p.nodata)
                prof.update(ZLEVEL=1)  # temporary: favour speed; the COG is recompressed
                with _writing(self.out_dir / p.filename):
                    dst = self.datasets[p.name] = rasterio.open(tmp, "w", **prof)
                    for i, d in enumerate(p.descriptions, start=1):
                        dst.set_band_description(i, d)
                    if p.tags:
                        dst.update_tags(**p.tags)
                    for b, t in p.band_tags.items():
                        dst.update_tags(b, **t)
                    if p.colormap:
                        dst.write_colormap(1, p.colormap)
        except BaseException:
            self.abort()
            raise

    def write(self, local: Window, arrays: Mapping[str, np.ndarray]) -> None:
        """Write one window (in the maps' pixel coordinates) of every product: ``arrays[name]``
        is (h, w) or (bands, h, w)."""
        for name, dst in self.datasets.items():
            a = arrays[name]
            with _writing(self.out_dir / f"{name}.tif"):
                dst.write(a[None] if a.ndim == 2 else a, window=local)

    def commit(self) -> list[Path]:
        """Close, convert to COG (with overviews), write the styles, then rename everything."""
        import rasterio
        import rasterio.shutil

        for p in self.products:  # closing flushes GDAL's last blocks: a full disk can fail here
            with _writing(self.out_dir / p.filename):
                self.datasets.pop(p.name).close()
        for p in self.products:
            cog = self.stage.path(p.filename)
            opts = dict(BLOCKSIZE=256, COMPRESS="DEFLATE", RESAMPLING=p.resampling, BIGTIFF="IF_SAFER",
                        OVERVIEWS="AUTO")
            if np.dtype(p.dtype).kind == "f":
                opts["PREDICTOR"] = "YES"
            # GDAL's block cache defaults to 5 % of RAM; left alone it made peak memory grow
            # with the raster during this conversion (1.74x for 4096² vs 1024²; 1.14x capped)
            with _writing(self.out_dir / p.filename), rasterio.Env(GDAL_CACHEMAX=64):
                rasterio.shutil.copy(self.parts[p.name], cog, driver="COG", **opts)
            self.parts[p.name].unlink()  # halve the peak disk use: the COG is complete
            if p.qml:
                qml = self.stage.path(f"{p.name}.qml")
                with _writing(self.out_dir / f"{p.name}.qml"):
                    qml.write_text(p.qml, encoding="utf-8")
        return self.stage.commit()

    def abort(self) -> None:
        """Close and remove every temporary file (nothing at the output paths changes)."""
        for dst in self.datasets.values():
            with contextlib.suppress(Exception):
                dst.close()
        self.datasets = {}
        self.stage.abort()
