"""pimc:phenology — the phenology metrics map of a region, like ``pimc phenology``: start, peak and
end of season, peak value, amplitude, length and integrated index of one vegetation index per
pixel (:func:`pimc_core.maps.phenology.phenology_map`), one 7-band GeoTIFF with its style.

It is a map algorithm without a model: the source and region parameters, block and batch, the
output moved into place with its ``.qml`` are those of :class:`~.maps_alg.MapAlgorithm`; the
metrics' parameters are those of :class:`~pimc_core.series.phenology.PhenologyParams` (advanced).
"""

from __future__ import annotations

from qgis.core import QgsProcessingParameterEnum

from .. import source
from ..bootstrap import import_core
from ..mapping import MapRequest
from .common import advanced, number_parameter
from .maps_alg import OUTPUT, MapAlgorithm, MapOutput

INDEX = "INDEX"
#: PhenologyParams field → (parameter name, description, is a real number, minimum, maximum)
METRIC_PARAMETERS = {
    "step_days": ("STEP_DAYS", "Regular date grid spacing (days)", False, 1, 60),
    "window_days": ("WINDOW_DAYS", "Savitzky-Golay window (days)", False, 1, 365),
    "order": ("ORDER", "Savitzky-Golay polynomial order", False, 1, 5),
    "fraction": ("FRACTION", "Start / end threshold (fraction of the amplitude, 0..1)", True, 0.0, 1.0),
    "min_amplitude": ("MIN_AMPLITUDE", "Smaller amplitudes are no season (index units)", True, 0.0, None),
    "min_snr": ("MIN_SNR", "Amplitudes below this many noise standard deviations are no season", True, 0.0, None),
    "min_valid": ("MIN_VALID", "Pixels with fewer valid observations are nodata", False, 1, None),
}


class PhenologyAlgorithm(MapAlgorithm):
    """TIMESAT-style phenology metrics of every pixel of a region (no model)."""

    NAME = "phenology"
    DISPLAY_NAME = "Phenology metrics map (start, peak, end of season)"
    HELP = (
        "Computes TIMESAT-style phenology metrics of one vegetation index for every pixel of a region: "
        "the series is resampled onto a regular date grid, smoothed (Savitzky-Golay), and the season "
        "starts and ends where the curve crosses a fraction of its amplitude (one season over the stack). "
        "One float32 GeoTIFF with 7 bands, named in the band descriptions: 1 start of season, 2 peak of "
        "season, 3 end of season (days of year of the first date's year), 4 peak value, 5 amplitude, "
        "6 length of season (days), 7 integrated index over the season; NaN = too few valid observations "
        "or no season. Its style shows the start of season on a colour ramp. No model is needed. Same "
        "result as the command `pimc phenology`.\n\n"
        "Region: an extent (in any CRS) and/or polygons; with polygons only the pixels whose centre is "
        "inside are computed, the others are nodata; with neither, the whole series.\n\n"
        "Cancelling leaves no output file."
    )
    OUTPUTS = {"phenology": MapOutput(OUTPUT, "Phenology metrics")}
    NEEDS_MODEL = False

    def own_parameters(self) -> list:
        defaults = import_core("pimc_core.series.phenology").PhenologyParams()
        params = [QgsProcessingParameterEnum(INDEX, "Index the metrics are of", options=source.index_names(),
                                             defaultValue="ndvi", usesStaticStrings=True)]
        for field, (name, text, real, lo, hi) in METRIC_PARAMETERS.items():
            params.append(advanced(number_parameter(name, text, getattr(defaults, field), lo, hi, double=real)))
        return params

    def request(self, parameters, context, ts) -> MapRequest:
        """The index and :class:`~pimc_core.series.phenology.PhenologyParams` the parameters give.

        Raises:
            ConfigError: a parameter outside its range, an unknown index, a series too short for
                the metrics (fewer dates than the minimum, or than the filter needs).
        """
        phenology = import_core("pimc_core.series.phenology")
        maps = import_core("pimc_core.maps.phenology")
        errors = import_core("pimc_core.errors")
        values = {}
        for field, (name, _text, real, _lo, _hi) in METRIC_PARAMETERS.items():
            values[field] = (self.parameterAsDouble if real else self.parameterAsInt)(parameters, name, context)
        try:
            params = phenology.PhenologyParams(**values)
        except errors.ConfigError as e:
            raise errors.ConfigError(f"phenology: {e}") from None
        index = self.parameterAsEnumString(parameters, INDEX, context) or "ndvi"
        maps.PhenologyModel(index, params).prepare(ts)  # too few dates: said before the run
        return MapRequest(products=("phenology",), phenology_index=index, phenology_params=params)

    def check_more(self, parameters, context, ts) -> None:
        self.request(parameters, context, ts)


__all__ = ["PhenologyAlgorithm"]
