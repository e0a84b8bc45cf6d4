"""pimc:indices — an index GeoTIFF with one band per index and date, like ``pimc indices``."""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsProcessingException, QgsProcessingParameterRasterDestination

from .. import pipeline, source
from ..bootstrap import import_core
from .common import BLOCK, INDICES, PimcAlgorithm, block_parameter, core_errors, indices_parameter

OUTPUT = "OUTPUT"


class IndicesAlgorithm(PimcAlgorithm):
    """Vegetation indices of every date of a time series."""

    NAME, DISPLAY_NAME = "indices", "Vegetation-index stack"
    HELP = (
        "Computes vegetation indices (NDVI, EVI, SAVI, EVI2) for every date of a satellite image "
        "time series and writes one GeoTIFF with one float32 band per index and date (index-major: "
        "all dates of the first index, then the next index), named like 'NDVI 2023-01-05'. "
        "Invalid observations (clouds, no data, per the sensor preset or manifest) are NaN.\n\n"
        "The time series is a manifest (.yaml) or a folder of dated rasters or of date folders; "
        "see the PIMC documentation. Same result as the command `pimc indices`. Cancelling "
        "leaves no output file."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add_source_parameters()
        self.addParameter(indices_parameter())
        self.addParameter(block_parameter())
        self.addParameter(QgsProcessingParameterRasterDestination(OUTPUT, "Index stack"))

    def check_more(self, parameters, context, ts) -> None:
        source.check_indices(ts, source.parse_indices(self.parameterAsString(parameters, INDICES, context)))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        with core_errors():
            errors = import_core("pimc_core.errors")
            ts = self.open_series(parameters, context, feedback)
            names = source.parse_indices(self.parameterAsString(parameters, INDICES, context))
            source.check_indices(ts, names)
            block = self.parameterAsInt(parameters, BLOCK, context)
            out = self.parameterAsOutputLayer(parameters, OUTPUT, context)
            if Path(out).suffix.lower() not in (".tif", ".tiff"):
                raise errors.ConfigError(f"{out}: the index stack is written as GeoTIFF; give a .tif file name")
            n_blocks = len(list(ts.grid.windows(block)))
            feedback.pushInfo(
                f"indices {', '.join(names)} × {len(ts)} dates = {len(names) * len(ts)} bands, "
                f"{n_blocks} block(s) of ≤ {block}×{block} px"
            )
            try:
                pipeline.write_indices(
                    ts, names, out, block=block, progress=feedback.setProgress, is_canceled=feedback.isCanceled,
                )
            except errors.Cancelled:
                raise QgsProcessingException("cancelled by the user; no output was written") from None
        return {OUTPUT: out}
